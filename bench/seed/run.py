#!/usr/bin/python3
"""The seed's benchmark, rebuilt with msgbus in it (bench/seed/README.md).

    bench/seed/run.py            the full run (make bench)
    bench/seed/run.py --quick    a sanity pass in a few minutes (make bench-quick)

For each store (--store): the real one, a private FerretDB in front of
PostgreSQL with DocumentDB (t/util/store.sh), and the stand-in, an
in-memory MongoDB-wire server standing in for a fast MongoDB on its own
hardware (bench/standin), each started fresh and primed; then, workload
by workload, each contender is started alone, checked to answer what
msgbus answers, swept with httperf at rising demanded rates (one call per
connection unless the workload says otherwise) and stopped.  Then the
limits: nginx answering msgbus's bytes from `return`, and the store's
ceiling (msgbus's own find in a tight libmongoc loop).

Writes, for a run R (UTC time):
    OUT/seed-R.csv          one row per (store, workload, contender, demanded rate)
    OUT/seed-R/*.png        per workload and store: throughput, response time,
                            errors, standard deviation of throughput (the
                            seed's four)
    OUT/seed-R/summary.md   peaks, response times, ratios
OUT is bench/results (full) or bench/results/tmp (quick); --out changes it.
"""

import argparse
import csv
import datetime
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time

TOP = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "bench"))
import benchlib  # noqa: E402
sys.path.insert(0, os.path.join(TOP, "bench", "peers"))

import bson.json_util  # noqa: E402  (Debian's python3-pymongo)

import buslib  # noqa: E402

NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
PROJECT = "bench"
CLIENT = "3381af92-2b9e-11e3-b191-71861300734c"
HEADERS = {"Client-ID": CLIENT, "X-Project-ID": PROJECT}
DATABASE = "bench"          # msgbus and the three peers
ZAQAR_DATABASE = "zaqarbench"
TTL = 43200
# Four partitions (msgbus_message_partitions, Zaqar's `partitions`); each
# queue that is read has one to itself and the posts of the post workload
# go to the fourth.  A partition is a collection, on this store a
# PostgreSQL table with its own indexes, so one workload's writes do not
# grow the table another reads.  The reads would not need it any more (a
# find is an index scan on the queue, not a read of the whole partition as
# with FerretDB 1 on SQLite); kept so that runs stay comparable.
PARTITIONS = 4
PAGE, BIG, EMPTY = "page", "big", "none"
POST_PARTITION = 2
CLAIM_PARTITION = 0     # the empty queue's: the claim workload runs last
LOAD_CPU = os.environ.get("LOAD_CPU", "1")

# workload: path, calls per connection, method
WORKLOADS = {
    "get": dict(path="/v2/queues/%s/messages?limit=7&echo=true" % PAGE, calls=1,
                what="GET of 7 messages (about 1 KB of JSON), 1 call per connection"),
    "get-10calls": dict(path="/v2/queues/%s/messages?limit=7&echo=true" % PAGE, calls=10,
                        what="the same GET, 10 calls per connection (keep-alive)"),
    "get-64k": dict(path="/v2/queues/%s/messages?limit=20&echo=true" % BIG, calls=1,
                    what="GET of 20 messages of 3 KB (about 64 KB of JSON), 1 call per connection"),
    "get-empty": dict(path="/v2/queues/%s/messages?limit=7&echo=true" % EMPTY, calls=1,
                      what="GET of an empty queue, 1 call per connection"),
    "post": dict(path="/v2/queues/{q}/messages", calls=1, method="POST",
                 what="POST of one small message, 1 call per connection"),
    "producers": dict(calls=1, closed="producers",
                      what="POST to one queue by 16 producers, closed loop (each posts one "
                           "message and sends the next when answered: bench/post), then by 1 "
                           "producer (the latency of one post); msgbus's queue read back by "
                           "marker after (bench/post/order.py); next to the store's own "
                           "single-document inserts from a libmongoc loop of 16 threads and "
                           "of 1, into msgbus's partition (its indexes) and into a collection "
                           "with only the _id index"),
    "claim": dict(calls=1, closed="claims",
                  what="claim+delete: one producer posts the messages (batches of 10), then "
                       "8 consumers claim them (limit 10) and delete each with its claim id "
                       "(t/util/claims.py bench, a closed loop, not httperf); "
                       "msgbus and Zaqar, the peers have no claims"),
}
CLAIM_CONTENDERS = ("msgbus-1w", "msgbus-2w", "zaqar")
PRODUCERS = (16, 1)         # the producers workload's sizes

CONTENDERS = ["msgbus-1w", "msgbus-2w", "gevent", "tornado", "node", "zaqar", "static"]
QUICK_CONTENDERS = ["msgbus-2w", "gevent", "zaqar", "static"]
# real: t/util/store.sh's FerretDB + PostgreSQL; standin: bench/standin,
# in memory, a stand-in for a fast MongoDB on its own hardware
STORES = ["real", "standin"]
MSGBUS = "msgbus-2w"        # the row the ratios are taken from
PEERS_DIR = os.path.join(TOP, "bench", "peers")
# each is started as PROGRAM PORT MONGODB_URI DATABASE PARTITIONS
PEER_PROGRAMS = {
    "gevent": ["/usr/bin/python3", os.path.join(PEERS_DIR, "gevent_bus.py")],
    "tornado": ["/usr/bin/python3", os.path.join(PEERS_DIR, "tornado_bus.py")],
    "node": ["node", os.path.join(PEERS_DIR, "node", "bus.js")],
}

FULL_RATES = [50, 100, 200, 300, 400, 500, 600, 700, 800, 1000, 1200, 1500,
              2000, 3000, 4000, 6000, 8000, 10000, 12000]
COARSE_RATES = [100, 200, 400, 800, 1600, 3200, 6400, 12000]
POST_RATES = [10, 25, 50, 100, 200, 400, 800, 1600, 3200, 6400, 12000]
QUICK_RATES = [100, 300, 600, 1200]
CEILING_THREADS = (1, 4, 16)
QUICK_CEILING_THREADS = (4, 16)     # beside the twin only


def queue_in(prefix, part):
    """a queue named prefix or prefix-N, in partition part"""
    name, i = prefix, 0
    while buslib.partition(PROJECT, name, PARTITIONS) != part:
        i += 1
        name = "%s-%d" % (prefix, i)
    return name


def post_queue(contender):
    """the contender's queue for posts, in the partition for posts"""
    return queue_in("post-" + contender, POST_PARTITION)


def log(*a):
    print("bench-seed:", *a, flush=True)


def die(*a):
    print("bench-seed:", *a, file=sys.stderr, flush=True)
    sys.exit(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc=None, secs=60):
    t0 = time.time()
    while time.time() - t0 < secs:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def http(port, method, path, body=None, timeout=30):
    return benchlib.http(port, method, path, HEADERS, body, timeout)


def tick_cpu(pids):
    """CPU seconds used so far by these processes and their children"""
    tck = os.sysconf("SC_CLK_TCK")
    by_parent, cpu = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        by_parent.setdefault(int(rest[1]), []).append(int(d))
        cpu[int(d)] = (int(rest[11]) + int(rest[12])) / tck
    total, todo, seen = 0.0, list(pids), set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += cpu.get(p, 0.0)
        todo.extend(by_parent.get(p, []))
    return total


def version_of(cmd, pattern=r"(.*)"):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        m = re.search(pattern, out.stdout + out.stderr)
        return m.group(1).strip() if m else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def deb_version(pkg):
    return version_of(["dpkg-query", "-W", "-f=${Version}", pkg])


class Run:

    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.id = datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%SZ")
        self.out = args.out or os.path.join(TOP, "bench", "results", "tmp" if self.quick else "")
        self.out = os.path.realpath(self.out)
        self.name = "seed-%s%s" % ("quick-" if self.quick else "", self.id)
        self.dir = os.path.join(self.out, self.name)
        self.work = os.path.join(TOP, "bench", "results", "tmp", "seed")
        self.duration = args.duration
        self.rows = []
        self.procs = []
        self.stores = args.store.split(",")
        self.store = None           # "real" or "standin": the pass under way
        self.store_dir = None
        self.store_pid = None
        self.standin = None
        self.pages = {}

    # --- processes ---------------------------------------------------------

    def spawn(self, cmd, logname, env=None):
        with open(os.path.join(self.work, logname), "ab") as logf:
            p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env,
                                 start_new_session=True)
        self.procs.append(p)
        return p

    def kill(self, p):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
        if p in self.procs:
            self.procs.remove(p)

    def cleanup(self):
        for p in list(self.procs):
            self.kill(p)
        self.stop_store()

    # --- the stores -----------------------------------------------------------

    def start_store(self):
        self.store_port = free_port()
        self.store_uri = "mongodb://127.0.0.1:%d/" % self.store_port
        if self.store == "standin":
            # fresh for each run: what was primed is all it holds
            self.standin = self.spawn([self.standin_bin, "-addr", "127.0.0.1:%d" % self.store_port],
                                      "standin.log")
            if not wait_port(self.store_port, self.standin, 10):
                die("the stand-in did not start: see %s" % os.path.join(self.work, "standin.log"))
            self.store_pid = self.standin.pid
            return
        d = os.path.join(self.work, "store")
        subprocess.run([os.path.join(TOP, "t/util/store.sh"), "stop", d], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)
        self.store_dir = d
        subprocess.run(["timeout", "120", os.path.join(TOP, "t/util/store.sh"), "start", d,
                        str(self.store_port)], check=True)
        with open(os.path.join(d, "ferretdb.pid")) as f:
            self.store_pid = int(f.read())

    def stop_store(self):
        if self.standin is not None:
            self.kill(self.standin)
            self.standin = None
        if self.store_dir is not None:
            subprocess.run([os.path.join(TOP, "t/util/store.sh"), "stop", self.store_dir],
                           capture_output=True)
            self.store_dir = None

    def store_cpu(self):
        """CPU seconds the whole store has used so far.  The real one:
        FerretDB, the postmaster and every backend, live or ended
        (t/util/store.sh cpu); PostgreSQL does the storage work, FerretDB
        alone would undercount it.  The stand-in: its one process."""
        if self.store == "standin":
            return tick_cpu([self.store_pid])
        r = subprocess.run([os.path.join(TOP, "t/util/store.sh"), "cpu", self.store_dir],
                           capture_output=True, text=True, timeout=30)
        try:
            return float(r.stdout)
        except ValueError:
            die("t/util/store.sh cpu: %s" % (r.stderr or r.stdout))

    def add_row(self, row):
        row["store"] = self.store
        self.rows.append(row)
        self.write_csv()

    # --- contenders -----------------------------------------------------------

    def nginx_conf(self, name, workers, port, extra=""):
        d = os.path.join(self.work, name)
        os.makedirs(os.path.join(d, "conf"), exist_ok=True)
        os.makedirs(os.path.join(d, "logs"), exist_ok=True)
        conf = """# rendered by bench/seed/run.py
load_module %(module)s;
worker_processes %(workers)d;
worker_rlimit_nofile %(nofile)d;
error_log %(d)s/logs/error.log warn;
pid %(d)s/logs/nginx.pid;
events {
    worker_connections 16384;
}
http {
    access_log off;
    client_body_temp_path %(d)s/client_body_temp;
    proxy_temp_path %(d)s/proxy_temp;
    fastcgi_temp_path %(d)s/fastcgi_temp;
    uwsgi_temp_path %(d)s/uwsgi_temp;
    scgi_temp_path %(d)s/scgi_temp;
    msgbus_mongodb "%(uri)s%(db)s?maxPoolSize=32&waitQueueTimeoutMS=5000";
    msgbus_message_partitions %(partitions)d;
    open_file_cache max=16;
    server {
        listen 127.0.0.1:%(port)d backlog=4096;
%(extra)s
        location / {
            msgbus;
        }
    }
}
""" % dict(module=self.module, workers=workers, d=d, uri=self.store_uri,
           db=DATABASE, port=port, extra=extra, partitions=PARTITIONS,
           nofile=resource.getrlimit(resource.RLIMIT_NOFILE)[1])
        with open(os.path.join(d, "conf", "nginx.conf"), "w") as f:
            f.write(conf)
        return d

    def start(self, name):
        """starts a contender; (process, port)"""
        port = free_port()
        uri = self.store_uri
        if name.startswith("msgbus") or name == "static":
            workers = 1 if name == "msgbus-1w" else 2
            extra = ""
            if name == "static":
                extra = self.static_locations()
            d = self.nginx_conf(name, workers, port, extra)
            cmd = [NGINX, "-p", d + "/", "-c", "conf/nginx.conf", "-g", "daemon off;"]
            p = self.spawn(cmd, name + ".log")
        elif name in PEER_PROGRAMS:
            p = self.spawn(PEER_PROGRAMS[name] + [str(port), uri, DATABASE, str(PARTITIONS)],
                           name + ".log")
        elif name == "zaqar":
            conf = os.path.join(self.work, "zaqar.conf")
            with open(conf, "w") as f:
                f.write(ZAQAR_CONF % dict(uri=uri, db=ZAQAR_DATABASE, partitions=PARTITIONS,
                                          log=os.path.join(self.work, "zaqar-app.log")))
            env = dict(os.environ, ZAQAR_CONF=conf)

            def uwsgi(processes):
                return self.spawn(["uwsgi_python3", "--http11-socket", "127.0.0.1:%d" % port,
                                   "--wsgi-file", os.path.join(PEERS_DIR, "zaqar_wsgi.py"),
                                   "--processes", str(processes), "--master",
                                   "--lazy-apps", "--die-on-term", "--disable-logging",
                                   "--listen", "1024", "--pythonpath", PEERS_DIR],
                                  name + ".log", env=env)

            # Each process loads the app (--lazy-apps), which creates Zaqar's
            # indexes; concurrent createIndexes can deadlock in PostgreSQL's
            # catalog and leave a process with no app at all (uwsgi: "unable
            # to load app 0"), answering 500 for good: one process alone
            # creates them first.
            if self.args.zaqar_processes > 1:
                p = uwsgi(1)
                if wait_port(port, p):
                    for _ in range(150):
                        try:
                            if http(port, "GET", "/v2/queues?limit=1")[0] < 500:
                                break
                        except OSError:
                            pass
                        time.sleep(0.2)
                self.kill(p)
            p = uwsgi(self.args.zaqar_processes)
        else:
            die("unknown contender", name)
        if not wait_port(port, p):
            die("%s did not start: see %s" % (name, os.path.join(self.work, name + ".log")))
        # The first request of a Python server imports and connects; each
        # of Zaqar's processes (--lazy-apps) also creates its indexes then,
        # and concurrent createIndexes can fail on this store (a deadlock
        # in PostgreSQL's catalog), which Zaqar answers with a 500: ask
        # until enough answers in a row show that every process is up.
        ok, need = 0, 2 * self.args.zaqar_processes if name == "zaqar" else 1
        for _ in range(150):
            try:
                if http(port, "GET", "/v2/queues/%s/messages?limit=1&echo=true" % PAGE)[0] < 500:
                    ok += 1
                    if ok >= need:
                        break
                    continue
            except OSError:
                pass
            ok = 0
            time.sleep(0.2)
        return p, port

    def static_locations(self):
        """msgbus's bytes from `return`; from a file where they are too long
        for nginx.conf (a token there has at most 4 KB)"""
        out = []
        for w in ("get", "get-64k", "get-empty"):
            body = self.pages[w]
            if re.search(r"['\\$]", body):
                die("the page of %s has a quote, backslash or $" % w)
            if len(body) < 4000:
                how = "return 200 '%s';" % body
            else:
                f = os.path.join(self.work, "static-%s.json" % w)
                with open(f, "w") as fh:
                    fh.write(body)
                how = "alias %s;" % f
            out.append("        location = /static/%s {\n"
                       "            default_type application/json;\n"
                       "            %s\n        }\n" % (w, how))
        out.append("        location = /static/post {\n"
                   "            default_type application/json;\n"
                   "            return 201 '%s';\n        }\n" % self.post_answer)
        return "".join(out)

    def path_of(self, contender, workload):
        w = WORKLOADS[workload]
        if contender == "static":
            return "/static/%s" % ("get" if workload == "get-10calls" else workload)
        return w["path"].format(q=post_queue(contender))

    # --- priming ----------------------------------------------------------------

    def prime_all(self, contenders):
        """the store primed through msgbus and through Zaqar; msgbus's
        pages and post answer kept (the static contender answers them)"""
        p, port = self.start("msgbus-2w")
        for c in contenders:
            if c not in ("static", "zaqar"):
                http(port, "PUT", "/v2/queues/" + post_queue(c))
        self.prime(port, "msgbus-2w")
        for w in ("get", "get-64k", "get-empty"):
            code, body, _ = http(port, "GET", WORKLOADS[w]["path"])
            self.pages[w] = body.decode()
        code, body, _ = http(port, "POST", self.path_of("msgbus-2w", "post"),
                             {"messages": [{"body": {"event": 0}}]})
        self.post_answer = body.decode()
        self.kill(p)
        if "zaqar" in contenders:
            p, port = self.start("zaqar")
            self.prime(port, "zaqar")
            self.kill(p)
        log("page sizes: " + ", ".join("%s %d bytes" % (w, len(b)) for w, b in self.pages.items()))

    def workload(self, w, contenders):
        """each contender alone, then the limits"""
        for c in contenders:
            if WORKLOADS[w].get("closed") == "producers":
                if c != "static":
                    p, port = self.start(c)
                    self.server_pid = p.pid
                    self.producers(c, port)
                    self.kill(p)
                continue
            if WORKLOADS[w].get("closed"):
                if c in CLAIM_CONTENDERS:
                    p, port = self.start(c)
                    self.server_pid = p.pid
                    self.claims(c, port)
                    self.kill(p)
                continue
            p, port = self.start(c)
            self.server_pid = p.pid
            self.check(c, port)
            self.sweep(c, port, w)
            self.kill(p)
        if w == "producers" and not self.args.no_ceiling:
            self.inserts()
        if w in ("get", "get-64k", "get-empty") and not self.args.no_ceiling:
            p, port = self.start("static")
            self.ceiling(w, port)
            self.kill(p)

    def prime(self, port, contender):
        """the queues every contender reads: page (10 small messages), big
        (20 of 3 KB), empty; and one to post to"""
        for q in (PAGE, BIG, EMPTY, post_queue(contender)):
            for _ in range(5):      # see start(): a process's first request
                code = http(port, "PUT", "/v2/queues/" + q)[0]
                if code < 500:
                    break
                time.sleep(0.5)
            if code not in (201, 204):
                die("%s: PUT /v2/queues/%s answered %d" % (contender, q, code))
        small = [{"body": {"event": i}, "ttl": TTL} for i in range(1, 11)]
        big = [{"body": {"event": i, "data": "%03d" % i + "x" * 2980}, "ttl": TTL}
               for i in range(1, 21)]
        for q, msgs in ((PAGE, small), (BIG, big[:10]), (BIG, big[10:])):
            code, body, _ = http(port, "POST", "/v2/queues/%s/messages" % q, {"messages": msgs})
            if code != 201:
                die("%s: POST to %s answered %d: %s" % (contender, q, code, body[:200]))

    def check(self, contender, port):
        """the contender answers msgbus's page (ages aside; for Zaqar, its
        own ids and links aside)"""
        for w in ("get", "get-64k", "get-empty"):
            path = self.path_of(contender, w)
            code, body, _ = http(port, "GET", path)
            if code != 200:
                die("%s: GET %s answered %d: %s" % (contender, path, code, body[:300]))
            got, want = body.decode(), self.pages[w]
            if contender == "zaqar":
                a, b = json.loads(got), json.loads(want)
                same = [(m["ttl"], m["body"]) for m in a["messages"]] == \
                       [(m["ttl"], m["body"]) for m in b["messages"]]
            else:
                norm = lambda s: re.sub(r'"age": \d+', '"age": N', s)  # noqa: E731
                same = norm(got) == norm(want)
            if not same:
                die("%s: GET %s answers something else than msgbus:\n%s\nmsgbus:\n%s"
                    % (contender, path, got[:600], want[:600]))
        if contender != "static":
            code, body, _ = http(port, "POST", self.path_of(contender, "post"),
                                 {"messages": [{"body": {"event": 0}}]})
            if code != 201:
                die("%s: POST answered %d: %s" % (contender, code, body[:300]))

    # --- httperf ----------------------------------------------------------------

    def httperf(self, contender, port, workload, rate):
        w = WORKLOADS[workload]
        path = self.path_of(contender, workload)
        conns = max(1, int(rate * self.duration))
        hdr = "Client-ID: %s\\nX-Project-ID: %s\\n" % (CLIENT, PROJECT)
        cmd = ["httperf", "--server", "127.0.0.1", "--port", str(port),
               "--rate", str(rate), "--timeout", "5"]
        if w.get("method") == "POST":
            sess = os.path.join(self.work, "post-%s.wsesslog" % contender)
            with open(sess, "w") as f:
                f.write("%s method=POST contents='%s'\n"
                        % (path, '{"messages": [{"body": {"event": 1, "source": "bench"}}]}'))
            cmd += ["--add-header", hdr + "Content-Type: application/json\\n",
                    "--wsesslog", "%d,0,%s" % (conns, sess)]
        else:
            cmd += ["--uri", path, "--num-conns", str(conns),
                    "--num-calls", str(w["calls"]), "--add-header", hdr]
        full = ["timeout", "-s", "KILL", str(int(self.duration + 40)),
                "taskset", "-c", LOAD_CPU] + cmd
        pids = [self.server_pid]
        c0, s0, t0 = tick_cpu(pids), self.store_cpu(), time.time()
        l0 = os.times()
        r = subprocess.run(full, capture_output=True, text=True)
        l1 = os.times()
        c1, s1, t1 = tick_cpu(pids), self.store_cpu(), time.time()
        out = r.stdout
        row = parse_httperf(out)
        row.update(run=self.id, workload=workload, contender=contender, rate=rate,
                   calls=w["calls"], wall_s="%.1f" % (t1 - t0),
                   server_cpu_s="%.2f" % (c1 - c0), store_cpu_s="%.2f" % (s1 - s0),
                   load_cpu_s="%.2f" % (l1.children_user + l1.children_system
                                        - l0.children_user - l0.children_system),
                   command=" ".join(cmd).replace(TOP + "/", ""), exit=r.returncode)
        ok = row.get("status_2xx", 0)
        row["server_us_per_reply"] = "%.0f" % ((c1 - c0) / ok * 1e6) if ok else ""
        row["store_us_per_reply"] = "%.0f" % ((s1 - s0) / ok * 1e6) if ok else ""
        if r.returncode != 0 or "replies" not in row:
            row["note"] = ("httperf exit %d: %s" % (r.returncode, (r.stderr or out)[-300:])) \
                .replace("\n", " ")
        return row

    def sweep(self, contender, port, workload):
        if self.args.rates:
            rates = self.args.rates
        elif self.quick:
            rates = QUICK_RATES
        else:
            rates = {"get": FULL_RATES, "post": POST_RATES}.get(workload, COARSE_RATES)
        if self.args.rates or not self.quick:
            # the same requests per second: a connection makes `calls` of them
            calls = WORKLOADS[workload]["calls"]
            rates = sorted({max(1, r // calls) for r in rates})
        saturated = 0
        for rate in rates:
            row = self.httperf(contender, port, workload, rate)
            self.add_row(row)
            log("%-7s %-10s %-12s rate %5d: %8s replies/s, %6s ms, %s errors"
                % (self.store, contender, workload, rate, row.get("achieved", "?"),
                   row.get("response_ms", "?"), row.get("errors", "?")))
            achieved = float(row.get("achieved") or 0)
            calls = WORKLOADS[workload]["calls"]
            if achieved < 0.85 * rate * calls or int(row.get("errors") or 0) > 0.1 * rate * self.duration:
                saturated += 1
                if saturated >= 2:
                    break
            else:
                saturated = 0
            time.sleep(1)

    # --- claim+delete -----------------------------------------------------------

    def claims(self, contender, port):
        n = 100 if self.quick else self.args.claim_messages
        cmd = ["/usr/bin/python3", os.path.join(TOP, "t/util/claims.py"), "--port", str(port),
               "--mongodb", self.store_uri + DATABASE, "--project", PROJECT,
               "--queue", queue_in("claim-%s-%s" % (contender, self.id.lower()),
                                   CLAIM_PARTITION),
               "--messages", str(n), "--producers", "1", "--claimers", "8", "--limit", "10",
               "--timeout", "60",
               "bench"]
        c0, s0 = tick_cpu([self.server_pid]), self.store_cpu()
        r = subprocess.run(["timeout", "-s", "KILL", "600"] + cmd, capture_output=True, text=True)
        c1, s1 = tick_cpu([self.server_pid]), self.store_cpu()
        m = re.search(r"post (\d+) messages .*? ([\d.]+) s (\d+) messages/s; claim\+delete .*?"
                      r"(\d+) claims\) ([\d.]+) s (\d+) messages/s", r.stdout)
        verdict = "OK" if r.returncode == 0 else "FAILED (%s)" % "; ".join(
            line.strip(" #") for line in r.stdout.splitlines()
            if line.startswith("  # "))[:300]
        row = dict(run=self.id, workload="claim", contender=contender, rate="", calls=8,
                   command=" ".join(cmd).replace(TOP + "/", ""), exit=r.returncode,
                   server_cpu_s="%.2f" % (c1 - c0), store_cpu_s="%.2f" % (s1 - s0))
        if m:
            row.update(replies=int(m[1]), status_2xx=int(m[1]), achieved=m[6],
                       test_s=m[5], errors=0 if r.returncode == 0 else "",
                       note="%s: claim+delete %s messages/s (%s claims); posting them "
                            "%s messages/s" % (verdict, m[6], m[4], m[3]))
        else:
            row.update(achieved=0, errors="",
                       note=("%s: %s" % (verdict, (r.stdout + r.stderr)[-400:])).replace("\n", " "))
        self.add_row(row)
        log("%-7s %-10s claim: %s" % (self.store, contender, row["note"]))

    # --- producers: posts to one queue, closed loop ------------------------------

    def producers(self, contender, port):
        """16 producers, then 1, posting to a queue of their own (created by
        an untimed post first); for msgbus, the queue read back by marker"""
        secs = min(self.duration, 10)
        for n in PRODUCERS:
            q = queue_in("producers-%d-%s-%s" % (n, contender, self.id.lower()),
                         POST_PARTITION)
            path = "/v2/queues/%s/messages" % q
            code = http(port, "POST", path, {"messages": [{"body": {"producer": -1, "seq": 0}}]})[0]
            if code != 201:
                die("%s: the first post to %s answered %d" % (contender, q, code))
            cmd = [self.poster, "-url", "http://127.0.0.1:%d%s" % (port, path), "-c", str(n),
                   "-d", str(secs), "-w", "0", "-project", PROJECT]
            c0, s0 = tick_cpu([self.server_pid]), self.store_cpu()
            r = subprocess.run(["timeout", "-s", "KILL", str(int(secs + 60)),
                                "taskset", "-c", LOAD_CPU] + cmd, capture_output=True, text=True)
            c1, s1 = tick_cpu([self.server_pid]), self.store_cpu()
            kv = dict(x.split("=", 1) for x in r.stdout.split() if "=" in x)
            if r.returncode != 0 or "posts" not in kv:
                die("%s: bench/post: %s" % (contender, r.stderr or r.stdout))
            posts = int(kv["posts"])
            note = "%d producers, closed loop: p50 %s ms, p99 %s ms, answers %s" % (
                n, kv["p50_ms"], kv["p99_ms"], kv["statuses"].strip(","))
            if contender.startswith("msgbus"):
                o = subprocess.run(["/usr/bin/python3", os.path.join(TOP, "bench/post/order.py"),
                                    str(port), PROJECT, q, kv["acked"]],
                                   capture_output=True, text=True, timeout=600)
                note += "; " + (o.stdout.strip() or o.stderr.strip()[-300:])
            row = dict(run=self.id, workload="producers", contender=contender, rate="", calls=n,
                       replies=posts + int(kv["errors"]), status_2xx=posts,
                       errors=kv["errors"], achieved=kv["posts_per_s"], response_ms=kv["p50_ms"],
                       test_s=kv["seconds"], server_cpu_s="%.2f" % (c1 - c0),
                       store_cpu_s="%.2f" % (s1 - s0),
                       server_us_per_reply="%.0f" % ((c1 - c0) / max(1, posts) * 1e6),
                       store_us_per_reply="%.0f" % ((s1 - s0) / max(1, posts) * 1e6),
                       command=" ".join(cmd).replace(TOP + "/", ""), note=note)
            self.add_row(row)
            log("%-7s %-10s producers %2d: %8s posts/s, p50 %s ms, p99 %s ms, errors %s%s"
                % (self.store, contender, n, kv["posts_per_s"], kv["p50_ms"], kv["p99_ms"],
                   kv["errors"], " (" + note.rsplit("; ", 1)[1] + ")"
                   if contender.startswith("msgbus") else ""))

    def inserts(self):
        """the store's own single-document inserts of a message like msgbus's,
        libmongoc's blocking client with 16 threads and 1: into the partition
        msgbus posted to (its indexes; each insert a marker k of its own,
        under a queue of its own), and into a collection with only the _id
        index"""
        secs = min(self.duration, 10)
        part_db = buslib.messages_db(DATABASE, PROJECT, post_queue(MSGBUS), PARTITIONS)
        for where, db, coll, key in (("partition", part_db, "messages", ["-k", "k"]),
                                     ("plain", DATABASE + "_raw", "raw", [])):
            # "e": in 2100, not expired: the TTL monitor leaves them alone
            doc = ('{"insert": "%s", "documents": [{"p_q": "%s/raw-inserts-%%d", "t": 3600, '
                   '"e": {"$date": {"$numberLong": "4102444800000"}}, "u": "%s", "c": {"id": null, "e": 0, "c": 0}, "d": 0, '
                   '"b": {"$binary": {"base64": "eyJwcm9kdWNlciI6IDAsICJzZXEiOiAwfQ==", '
                   '"subType": "80"}}, "k": 0, "tx": null}]}' % (coll, PROJECT, CLIENT))
            for threads in PRODUCERS:
                cmd = [self.mongoc, "-u", self.store_uri + "?maxPoolSize=32", "-t", str(threads),
                       "-d", str(secs), "-w", "1", "-D", db, "-c", doc % threads] + key
                s0 = self.store_cpu()
                r = subprocess.run(["timeout", "-s", "KILL", "60", "taskset", "-c", LOAD_CPU] + cmd,
                                   capture_output=True, text=True)
                s1 = self.store_cpu()
                kv = dict(x.split("=", 1) for x in r.stdout.split() if "=" in x)
                if r.returncode != 0 or "pings_per_s" not in kv:
                    die("the store's inserts: %s" % (r.stderr or r.stdout))
                n = int(kv["pings"])
                self.add_row(dict(run=self.id, workload="producers",
                                  contender="store" if where == "partition" else "store-plain",
                                  rate="", calls=threads, achieved=kv["pings_per_s"], replies=n,
                                  status_2xx=n - int(kv["errors"]), errors=kv["errors"],
                                  response_ms=kv["p50_ms"], test_s=kv["seconds"],
                                  store_cpu_s="%.2f" % (s1 - s0),
                                  store_us_per_reply="%.0f" % ((s1 - s0) / max(1, n) * 1e6),
                                  command=" ".join(cmd).replace(TOP + "/", ""),
                                  note="%d threads: single-document inserts into %s, p50 %s ms, "
                                       "p99 %s ms" % (threads, "msgbus's partition (its indexes)"
                                                      if where == "partition" else
                                                      "a collection with only the _id index",
                                                      kv["p50_ms"], kv["p99_ms"])))
                log("%-7s %-10s producers %2d: %8s inserts/s, p50 %s ms (%s)"
                    % (self.store, "store", threads, kv["pings_per_s"], kv["p50_ms"], where))

    # --- the store's ceiling -------------------------------------------------------

    def ceiling(self, workload, static_port):
        """msgbus's find for the workload's page, in a tight libmongoc loop
        on LOAD_CPU: once beside a twin of the load generator (httperf at
        a low rate to static nginx, on LOAD_CPU too: httperf spins a whole
        CPU at any rate, so the HTTP contenders had that much less), the
        ceiling the ratios use; and once alone"""
        path, query = WORKLOADS[workload]["path"].split("?")
        q = path.split("/")[3]
        flt, sort, limit, _ = buslib.page_query(PROJECT, q, CLIENT, query)
        db = buslib.messages_db(DATABASE, PROJECT, q, PARTITIONS)
        cmd_doc = bson.json_util.dumps({"find": "messages", "filter": flt, "sort": dict(sort),
                                        "limit": limit, "singleBatch": True})
        secs = min(self.duration, 10)
        for twin in (True, False) if not self.quick else (True,):
            for threads in CEILING_THREADS if not self.quick else QUICK_CEILING_THREADS:
                cmd = [self.mongoc, "-u", self.store_uri + "?maxPoolSize=16", "-t", str(threads),
                       "-d", str(secs), "-w", "1", "-D", db, "-c", cmd_doc]
                full = ["timeout", "-s", "KILL", "60", "taskset", "-c", LOAD_CPU] + cmd
                gen = None
                if twin:
                    gen = subprocess.Popen(
                        ["timeout", "-s", "KILL", str(int(secs + 30)), "taskset", "-c", LOAD_CPU,
                         "httperf", "--server", "127.0.0.1", "--port", str(static_port),
                         "--uri", "/static/get", "--rate", "100", "--timeout", "5",
                         "--num-conns", str(int(100 * (secs + 2)))],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                s0 = self.store_cpu()
                r = subprocess.run(full, capture_output=True, text=True)
                s1 = self.store_cpu()
                if gen is not None:
                    gen.wait()
                kv = dict(x.split("=", 1) for x in r.stdout.split() if "=" in x)
                if r.returncode != 0 or "pings_per_s" not in kv:
                    die("the store's ceiling: %s" % (r.stderr or r.stdout))
                per_s = float(kv["pings_per_s"])
                row = dict(run=self.id, workload=workload,
                           contender="store" if twin else "store-alone", rate="",
                           calls=threads, achieved="%.1f" % per_s,
                           replies=kv["pings"], status_2xx=int(kv["pings"]) - int(kv["errors"]),
                           errors=kv["errors"], response_ms=kv["p50_ms"],
                           test_s=kv["seconds"], store_cpu_s="%.2f" % (s1 - s0),
                           store_us_per_reply="%.0f" % ((s1 - s0) / max(1, int(kv["pings"])) * 1e6),
                           command=" ".join(cmd).replace(TOP + "/", ""),
                           note="%d threads%s" % (threads, ", beside the generator's twin"
                                                  if twin else ", alone"))
                self.add_row(row)
                log("%-7s %-10s %-12s %2d threads: %8.1f finds/s, p50 %s ms (%s)"
                    % (self.store, "store", workload, threads, per_s, kv["p50_ms"],
                       "beside httperf's twin" if twin else "alone"))

    # --- results ------------------------------------------------------------------

    COLUMNS = ["run", "store", "workload", "contender", "rate", "calls", "conns", "replies",
               "status_2xx", "status_non2xx", "errors", "err_client_timo",
               "err_connrefused", "err_connreset", "err_fd_unavail", "err_other",
               "test_s", "achieved", "rps_avg", "rps_min", "rps_max", "rps_stddev",
               "rps_samples", "response_ms", "transfer_ms", "reply_bytes", "wall_s",
               "server_cpu_s", "store_cpu_s", "load_cpu_s", "server_us_per_reply",
               "store_us_per_reply",
               "exit", "note", "command"]

    def write_csv(self):
        path = os.path.join(self.out, self.name + ".csv")
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            for k, v in self.facts.items():
                w.writerow(["#", k, v])
            w.writerow(self.COLUMNS)
            for r in self.rows:
                w.writerow([r.get(c, "") for c in self.COLUMNS])
        return path

    def collect_facts(self):
        cpu = "?"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        commit = version_of(["git", "-C", TOP, "rev-parse", "--short", "HEAD"])
        if subprocess.run(["git", "-C", TOP, "status", "--porcelain", "--",
                           "ngx_http_msgbus_module", "bench/peers", "bench/seed", "bench/standin"],
                          capture_output=True, text=True).stdout.strip():
            commit += "+dirty"
        self.facts = {
            "date_utc": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": "%d x %s, %s GiB, kernel %s" % (
                os.cpu_count(), cpu,
                round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
                os.uname().release),
            "pinning": "httperf and mongoc_ping on CPU %s (taskset); servers and the store "
                       "unpinned (both CPUs)" % LOAD_CPU,
            "msgbus": commit,
            "nginx": version_of([NGINX, "-v"], r"nginx/(\S+)"),
            "stores": ", ".join(self.stores),
            "store": version_of(["bash", "-c", 'top=$0; . "$top/bench/lib.sh"; bench_store_version', TOP]),
            "standin": "bench/standin (%s, GOMAXPROCS default, %d CPUs): in memory, a stand-in for "
                       "a fast MongoDB on its own hardware, not a store"
                       % (version_of(["go", "version"], r"go version (\S+)"), os.cpu_count()),
            "httperf": deb_version("httperf"),
            "python3": version_of(["/usr/bin/python3", "--version"], r"Python (\S+)"),
            "gevent": deb_version("python3-gevent"),
            "pymongo": deb_version("python3-pymongo"),
            "tornado": deb_version("python3-tornado"),
            "motor": deb_version("python3-motor"),
            "node": version_of(["node", "--version"]),
            "node-mongodb": json.load(open(os.path.join(
                TOP, "bench/peers/node/node_modules/mongodb/package.json")))["version"],
            "zaqar": deb_version("zaqar-server") + " under uwsgi " + deb_version("uwsgi-core")
                     + ", %d processes, mongodb.fifo" % self.args.zaqar_processes,
            "duration_s_per_rate": self.duration,
            "mode": "quick" if self.quick else "full",
        }

    # --- the whole run -----------------------------------------------------------------

    def main(self):
        a = self.args
        os.makedirs(self.work, exist_ok=True)
        os.makedirs(self.dir, exist_ok=True)
        self.module = os.path.join(self.work, "ngx_http_msgbus_module.so")
        shutil.copy(os.path.join(TOP, ".build/default/ngx_http_msgbus_module.so"), self.module)
        self.mongoc = os.path.join(TOP, ".build/bench/mongoc_ping")
        self.poster = os.path.join(TOP, ".build/bench/post")
        self.standin_bin = os.path.join(TOP, ".build/bench/msgbus-standin")
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.collect_facts()
        workloads = a.workloads.split(",")
        contenders = a.contenders.split(",")
        for st in self.stores:
            if st not in STORES:
                die("unknown store %s (%s)" % (st, ", ".join(STORES)))
        for w in workloads:
            if w not in WORKLOADS:
                die("unknown workload %s (%s)" % (w, ", ".join(WORKLOADS)))
        for c in contenders:
            if c not in CONTENDERS:
                die("unknown contender %s (%s)" % (c, ", ".join(CONTENDERS)))

        parts = [buslib.partition(PROJECT, q, PARTITIONS) for q in (PAGE, BIG, EMPTY)]
        if len(set(parts + [POST_PARTITION])) != 4:
            die("the queues share partitions: %s" % parts)
        for store in self.stores:
            self.store = store
            self.start_store()
            log("%s store %s (pid %d); results %s"
                % (store, self.store_uri, self.store_pid, self.dir.replace(TOP + "/", "")))
            self.prime_all(contenders)
            for w in workloads:
                self.workload(w, contenders)
            self.stop_store()

        csv_path = self.write_csv()
        import report
        report.write(self.rows, self.facts, self.dir, MSGBUS, self.pages, WORKLOADS)
        log("results: %s, %s/" % (csv_path.replace(TOP + "/", ""), self.dir.replace(TOP + "/", "")))
        print(open(os.path.join(self.dir, "summary.md")).read())


def parse_httperf(out):
    r = {}
    m = re.search(r"Total: connections (\d+) requests (\d+) replies (\d+) test-duration ([\d.]+) s", out)
    if m:
        r.update(conns=int(m[1]), replies=int(m[3]), test_s=float(m[4]))
    m = re.search(r"Reply rate \[replies/s\]: min ([\d.]+) avg ([\d.]+) max ([\d.]+) "
                  r"stddev ([\d.]+) \((\d+) samples\)", out)
    if m:
        r.update(rps_min=m[1], rps_avg=m[2], rps_max=m[3], rps_stddev=m[4], rps_samples=m[5])
    m = re.search(r"Reply time \[ms\]: response ([\d.]+) transfer ([\d.]+)", out)
    if m:
        r.update(response_ms="%.1f" % (float(m[1]) + float(m[2])), transfer_ms=m[2])
    m = re.search(r"Reply size \[B\]: header ([\d.]+) content ([\d.]+)", out)
    if m:
        r["reply_bytes"] = "%.0f" % (float(m[1]) + float(m[2]))
    m = re.search(r"Reply status: 1xx=(\d+) 2xx=(\d+) 3xx=(\d+) 4xx=(\d+) 5xx=(\d+)", out)
    if m:
        r.update(status_2xx=int(m[2]), status_non2xx=int(m[1]) + int(m[3]) + int(m[4]) + int(m[5]))
    m = re.search(r"Errors: total (\d+) client-timo (\d+) socket-timo (\d+) connrefused (\d+) "
                  r"connreset (\d+)", out)
    e = 0
    if m:
        e = int(m[1])
        r.update(err_client_timo=int(m[2]), err_connrefused=int(m[4]), err_connreset=int(m[5]))
    m = re.search(r"Errors: fd-unavail (\d+) addrunavail (\d+) ftab-full (\d+) other (\d+)", out)
    if m:
        r.update(err_fd_unavail=int(m[1]), err_other=int(m[2]) + int(m[3]) + int(m[4]))
    if "replies" in r:
        r["errors"] = e + r.get("status_non2xx", 0)
        r["achieved"] = "%.1f" % (r.get("status_2xx", 0) / r["test_s"] if r["test_s"] else 0)
    return r


ZAQAR_CONF = """# rendered by bench/seed/run.py
[DEFAULT]
auth_strategy =
unreliable = true
pooling = false
debug = false
log_file = %(log)s

[drivers]
transport = wsgi
message_store = mongodb.fifo
management_store = mongodb

[drivers:message_store:mongodb]
uri = %(uri)s
database = %(db)s
partitions = %(partitions)d

[drivers:management_store:mongodb]
uri = %(uri)s
database = %(db)s
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="the GET workload at 4 rates, contenders %s, on both stores"
                         % ",".join(QUICK_CONTENDERS))
    ap.add_argument("--workloads", help="comma-separated, of: " + ", ".join(WORKLOADS))
    ap.add_argument("--contenders", help="comma-separated, of: %s (all; --quick: %s)"
                    % (",".join(CONTENDERS), ",".join(QUICK_CONTENDERS)))
    ap.add_argument("--store", default=",".join(STORES),
                    help="comma-separated, run in this order: real (t/util/store.sh: FerretDB + "
                         "PostgreSQL), standin (bench/standin: in memory, a stand-in for a fast "
                         "MongoDB on its own hardware); default: both")
    ap.add_argument("--rates", type=lambda v: [int(x) for x in v.split(",")],
                    help="comma-separated demanded requests/s, for every workload instead of its "
                         "own list (divided by the calls per connection, as the full lists)")
    ap.add_argument("--duration", type=float, default=10, help="seconds per rate (10)")
    ap.add_argument("--zaqar-processes", type=int, default=4)
    ap.add_argument("--no-ceiling", action="store_true")
    ap.add_argument("--claim-messages", type=int, default=300)
    ap.add_argument("--out", help="where the CSV and the folder go")
    a = ap.parse_args()
    if a.workloads is None:
        a.workloads = "get" if a.quick else ",".join(WORKLOADS)
    if a.contenders is None:
        a.contenders = ",".join(QUICK_CONTENDERS if a.quick else CONTENDERS)
    run = Run(a)
    try:
        run.main()
    finally:
        run.cleanup()


if __name__ == "__main__":
    main()
