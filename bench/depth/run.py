#!/usr/bin/python3
"""What a queue's depth costs (bench/depth/README.md); started by run.sh.

One queue is filled to each depth in turn (DEPTHS, ascending).  At each:
  get    GET /v2/queues/q/messages?limit=10&echo=true&marker=M, M the marker
         10 messages before the end: the page is the queue's last 10
  claim  POST /v2/queues/q/claims?limit=10 {"ttl": 60, "grace": 60}, then
         DELETE of that claim (a release: the messages stay, claimable again)
  post   POST /v2/queues/q/messages of one small message; what was posted
         is deleted from the store afterwards, the depth is again what it was
each a closed loop of CONNECTIONS connections (wrk, one connection per
thread) for DURATION seconds after WARMUP seconds (post: no warm-up, and it
stops early once the queue grew by POST_GROWTH of its depth), with the CPU
of the store (t/util/store.sh cpu), of nginx's workers and of wrk taken
before and after.  Before them, with SHAPES=1, msgbus's finds sent straight
to the store (pymongo, one connection, SHAPE_SECONDS each) as msgbus sends
them and reshaped (QUERIES): store CPU per query, and their plans
(FerretDB's explain; PostgreSQL's EXPLAIN ANALYZE of the SQL DocumentDB
runs, through auto_explain) in the -plans.txt file.

The queue is filled by inserting documents in msgbus's shape straight into
the store: the shape is copied from messages posted through msgbus first.
"""

import argparse
import csv
import datetime
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time

import bson
import bson.json_util
from bson.binary import Binary
from bson.int64 import Int64
from bson.son import SON
import pymongo

TOP = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "bench"))
import benchlib  # noqa: E402
STORE_SH = os.path.join(TOP, "t", "util", "store.sh")
PSQL = "/usr/lib/postgresql/15/bin/psql"
PROJECT = "bench"
QUEUE = "q"
PQ = PROJECT + "/" + QUEUE
CLIENT = "3381af92-2b9e-11e3-b191-71861300734c"
HEADERS = {"Client-ID": CLIENT, "X-Project-ID": PROJECT}
DATABASE = "depth"
BODY_SUBTYPE = 0x80             # msgbus keeps a body as JSON text in binary 0x80
HINT = SON([("p_q", 1), ("k", 1)])
OPS = ("get", "claim", "post")


def env(name, default):
    return os.environ.get(name, default)


def log(*a):
    print("bench-depth:", *a, flush=True)


def die(*a):
    print("bench-depth:", *a, file=sys.stderr, flush=True)
    sys.exit(1)


# --- HTTP -------------------------------------------------------------------------

def http(port, method, path, body=None, timeout=30):
    return benchlib.http(port, method, path, HEADERS, body, timeout)


# --- CPU ----------------------------------------------------------------------------

TCK = os.sysconf("SC_CLK_TCK")
NPROC = os.cpu_count()


def store_cpu(store_dir):
    out = subprocess.run([STORE_SH, "cpu", store_dir], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    return float(out.strip())


def proc_ticks(pid):
    """utime + stime of a process (ticks), 0 when gone"""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])
    except (OSError, IndexError):
        return 0


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                rest = f.read().rsplit(")", 1)[1].split()
            if int(rest[1]) == pid:
                out.append(int(d))
        except (OSError, IndexError):
            pass
    return out


def machine_ticks():
    """(busy, total) ticks of all CPUs"""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    total = sum(v)
    return total - v[3] - v[4], total


def busy_pct(seconds=1.0):
    """the machine's busy CPU over a second, in % of one CPU"""
    b0, t0 = machine_ticks()
    time.sleep(seconds)
    b1, t1 = machine_ticks()
    return (b1 - b0) / max(t1 - t0, 1) * NPROC * 100


# --- the store -----------------------------------------------------------------------

class Store:
    def __init__(self, a):
        self.a = a
        self.client = pymongo.MongoClient("mongodb://127.0.0.1:%d/" % a.store_port,
                                          serverSelectionTimeoutMS=10000,
                                          socketTimeoutMS=600000)
        self.queues = self.client[DATABASE + "_queues"]["queues"]
        self.db = None          # the queue's partition
        self.table = None       # its collection's PostgreSQL table

    def cpu(self):
        return store_cpu(self.a.store_dir)

    def psql(self, sql, timeout=600):
        cmd = [PSQL, "-X", "-q", "-At", "-h", "127.0.0.1", "-p", str(self.a.pg_port),
               "-U", "postgres", "-d", "postgres"]
        if os.getuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        p = subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError("psql: %s" % p.stderr.strip())
        return p.stdout, p.stderr

    def find_partition(self):
        for name in sorted(self.client.list_database_names()):
            if name.startswith(DATABASE + "_messages_p") \
                    and self.client[name]["messages"].find_one({"p_q": PQ}) is not None:
                self.db = self.client[name]
                break
        else:
            die("no partition of %s holds the queue's messages" % DATABASE)
        out, _ = self.psql("SELECT 'documentdb_data.documents_' || collection_id "
                           "FROM documentdb_api_catalog.collections "
                           "WHERE database_name = '%s' AND collection_name = 'messages'"
                           % self.db.name)
        self.table = out.strip()
        if not re.match(r"^documentdb_data\.documents_\d+$", self.table):
            die("no table for %s.messages: %r" % (self.db.name, self.table))

    @property
    def messages(self):
        return self.db["messages"]

    def depth(self):
        return self.messages.count_documents({"p_q": PQ, "tx": None})

    def counter(self):
        return int(self.queues.find_one({"p_q": PQ})["c"]["v"])

    def vacuum(self):
        """after a fill or a delete: the dead rows gone and the statistics
        fresh, so that autovacuum does not run in a measurement"""
        self.psql("VACUUM ANALYZE %s" % self.table, timeout=1800)

    def indexes(self):
        out = []
        for ix in self.messages.list_indexes():
            out.append("%s %s%s" % (ix["name"], json.dumps(dict(ix["key"])),
                                    " unique" if ix.get("unique") else ""))
        out.append(self.psql("SELECT string_agg(indexdef, E'\\n') FROM pg_indexes "
                             "WHERE schemaname || '.' || tablename = '%s'" % self.table)[0])
        return "\n".join(out)


# --- filling the queue -----------------------------------------------------------------

def template_doc(store):
    """a message msgbus wrote, to copy the shape of"""
    doc = store.messages.find_one({"p_q": PQ, "tx": None}, sort=[("k", -1)])
    want = ["_id", "p_q", "t", "e", "u", "c", "d", "b", "k", "tx"]
    if list(doc.keys()) != want or list(doc["c"].keys()) != ["id", "e", "c"]:
        die("msgbus's message has another shape than this bench copies: %r" % doc)
    if not isinstance(doc["b"], Binary) or doc["b"].subtype != BODY_SUBTYPE:
        die("msgbus's body is not a binary 0x%x: %r" % (BODY_SUBTYPE, doc["b"]))
    return doc


def make_doc(tmpl, k, now, ttl):
    return SON([
        ("_id", bson.ObjectId()), ("p_q", PQ), ("t", ttl),
        ("e", datetime.datetime.fromtimestamp(now + ttl, datetime.timezone.utc)),
        ("u", tmpl["u"]),
        ("c", SON([("id", None), ("e", now), ("c", 0)])),
        ("d", now), ("b", Binary(b'{"seq": %d}' % k, BODY_SUBTYPE)),
        ("k", k), ("tx", None)])


def fill(store, tmpl, want, jobs, ttl):
    """inserts messages with the next markers until the queue holds want"""
    have = store.depth()
    if have > want:
        # only when DEPTHS go down: the newest go
        ks = [d["k"] for d in store.messages.find({"p_q": PQ, "tx": None}, {"k": 1})
              .sort("k", -1).limit(have - want)]
        store.messages.delete_many({"p_q": PQ, "k": {"$in": ks}})
        return 0.0, 0.0
    add = want - have
    if add == 0:
        return 0.0, 0.0
    first = store.counter()
    now = int(time.time())
    batch = 500
    batches = [(k, min(k + batch, first + add)) for k in range(first, first + add, batch)]
    done = [0]
    lock = threading.Lock()
    errors = []
    t0 = time.time()
    c0 = store.cpu()

    def worker(i):
        try:
            cl = pymongo.MongoClient("mongodb://127.0.0.1:%d/" % store.a.store_port,
                                     socketTimeoutMS=600000)
            coll = cl[store.db.name]["messages"]
            for lo, hi in batches[i::jobs]:
                coll.insert_many([make_doc(tmpl, k, now, ttl) for k in range(lo, hi)],
                                 ordered=True)
                with lock:
                    done[0] += hi - lo
            cl.close()
        except Exception as e:      # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(jobs)]
    for t in threads:
        t.start()
    last = 0
    while any(t.is_alive() for t in threads):
        time.sleep(1)
        if time.time() - last >= 30:
            last = time.time()
            log("  fill: %d of %d inserted (%.0f s)" % (done[0], add, time.time() - t0))
    if errors:
        die("fill failed: %r" % errors[0])
    store.queues.update_one({"p_q": PQ}, {"$max": {"c.v": Int64(first + add)}})
    secs, cpu = time.time() - t0, store.cpu() - c0
    log("  fill: %d messages in %.0f s (store CPU %.0f s, %.0f us per message)"
        % (add, secs, cpu, cpu / add * 1e6))
    return secs, cpu


def tail(store):
    """the marker 10 messages before the end and the newest message's id"""
    docs = list(store.messages.find({"p_q": PQ, "tx": None}, {"k": 1})
                .sort("k", -1).limit(11))
    if len(docs) < 11:
        die("the queue holds %d messages: too few for a tail page" % len(docs))
    return int(docs[10]["k"]), str(docs[0]["_id"]), int(docs[0]["k"])


# --- wrk ------------------------------------------------------------------------------

LUA_COMMON = r"""
-- one connection per thread (-t = -c): request and response alternate
ok, bad, empty, released = 0, 0, 0, 0
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

local json = {}

-- the headers of every request; json: those and a JSON body's
-- (wrk.format takes headers instead of wrk.headers, not on top)
local function hdr()
    wrk.headers["Client-ID"] = "%s"
    wrk.headers["X-Project-ID"] = "%s"
    for k, v in pairs(wrk.headers) do json[k] = v end
    json["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
    local o, b, e, r = 0, 0, 0, 0
    for _, t in ipairs(threads) do
        o = o + t:get("ok"); b = b + t:get("bad")
        e = e + t:get("empty"); r = r + t:get("released")
        local p = t:get("pending")
        if p then io.write("PENDING " .. p .. "\n") end
    end
    local er = summary.errors
    io.write(string.format("RESULT requests=%%d duration_us=%%d socket_errors=%%d "
        .. "status_errors=%%d timeouts=%%d ok=%%d bad=%%d empty=%%d released=%%d "
        .. "p50_us=%%d p99_us=%%d mean_us=%%.1f\n",
        summary.requests, summary.duration, er.connect + er.read + er.write,
        er.status, er.timeout, o, b, e, r,
        latency:percentile(50), latency:percentile(99), latency.mean))
end
""" % (CLIENT, PROJECT)

LUA = {
    "get": r"""
local req, last
function init(args)
    hdr()
    req = wrk.format("GET", args[1])
    last = args[2]
end
function request() return req end
function response(status, headers, body)
    -- the page must reach the queue's newest message
    if status == 200 and string.find(body, last, 1, true) then ok = ok + 1
    else bad = bad + 1 end
end
""",
    "post": r"""
local req
function init(args)
    hdr()
    req = wrk.format("POST", args[1], json, '{"messages": [{"body": {"event": "depth"}}]}')
end
function request() return req end
function response(status, headers, body)
    if status == 201 then ok = ok + 1 else bad = bad + 1 end
end
""",
    "claim": r"""
local req, last
pending = nil
function init(args)
    hdr()
    req = wrk.format("POST", args[1], json, '{"ttl": 60, "grace": 60}')
end
function request()
    if pending then
        local p = pending
        pending = nil
        last = "release"
        return wrk.format("DELETE", p)
    end
    last = "claim"
    return req
end
function response(status, headers, body)
    if last == "claim" then
        local loc = headers["Location"] or headers["location"]
        if status == 201 and loc then ok = ok + 1; pending = loc
        elseif status == 204 then empty = empty + 1
        else bad = bad + 1 end
    elseif status == 204 then released = released + 1
    else bad = bad + 1 end
end
""",
}


def wrk(a, op, seconds, url, args, out_file):
    script = os.path.join(a.run_dir, "%s.lua" % op)
    if not os.path.exists(script):
        with open(script, "w") as f:
            f.write(LUA_COMMON + LUA[op])
    c = str(a.connections)
    cmd = ["wrk", "-t", c, "-c", c, "-d", "%ds" % seconds, "--timeout", "5s",
           "-s", script, url, "--"] + args
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out_file, "a") as f:
        f.write("$ %s\n%s%s\n" % (" ".join(cmd), p.stdout, p.stderr))
    m = re.search(r"^RESULT (.*)$", p.stdout, re.M)
    if p.returncode != 0 or not m:
        die("wrk failed (exit %d): %s" % (p.returncode, (p.stdout + p.stderr)[-2000:]))
    res = {k: float(v) for k, v in (x.split("=") for x in m.group(1).split())}
    res["pending"] = re.findall(r"^PENDING (\S+)$", p.stdout, re.M)
    res["wrk_cpu"] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    res["cmd"] = " ".join(cmd).replace(TOP + "/", "")
    return res


def wait_quiet(a):
    waited = 0
    while True:
        b = busy_pct()
        waited += 1
        if b <= a.quiet_pct or waited >= a.quiet_wait:
            if b > a.quiet_pct:
                log("  warning: the machine is busy (%.0f%% of a CPU) before the measurement" % b)
            return b


def measure(a, store, op, depth, url, args):
    """one closed-loop measurement; returns a row"""
    out_file = os.path.join(a.run_dir, "wrk-%d-%s.out" % (depth, op))
    before = wait_quiet(a)
    if op != "post" and a.warmup > 0:
        r = wrk(a, op, a.warmup, url, args, out_file)
        release(a, r["pending"])
        if op == "claim":
            release_all(a, store)
    workers = children(a.nginx_pid)
    n0 = sum(proc_ticks(w) for w in workers)
    s0 = store.cpu()
    m0 = machine_ticks()
    t0 = time.time()
    total = {}
    if op == "post":
        # in slices of a second until DURATION or the queue grew by
        # POST_GROWTH of its depth (at least POST_MIN messages)
        cap = max(a.post_growth * depth, a.post_min)
        slices = []
        while len(slices) < a.duration and sum(r["ok"] for r in slices) < cap:
            slices.append(wrk(a, op, 1, url, args, out_file))
        for k in ("requests", "duration_us", "socket_errors", "status_errors", "timeouts",
                  "ok", "bad", "empty", "released", "wrk_cpu"):
            total[k] = sum(r[k] for r in slices)
        # p50: the slices' weighted by their requests; p99: the worst slice's
        total["p50_us"] = sum(r["p50_us"] * r["requests"] for r in slices) \
            / max(total["requests"], 1)
        total["p99_us"] = max(r["p99_us"] for r in slices)
        total["cmd"] = "%s (%d slices of 1 s)" % (slices[0]["cmd"], len(slices))
        total["pending"] = []
    else:
        total = wrk(a, op, a.duration, url, args, out_file)
    t1 = time.time()
    s1 = store.cpu()
    n1 = sum(proc_ticks(w) for w in workers)
    m1 = machine_ticks()
    release(a, total["pending"])
    left = release_all(a, store) if op == "claim" else 0
    wall = t1 - t0
    nginx_cpu = (n1 - n0) / TCK
    store_s = s1 - s0
    machine = (m1[0] - m0[0]) / TCK
    others = max(machine - store_s - nginx_cpu - total["wrk_cpu"], 0)
    ops = total["ok"]
    secs = total["duration_us"] / 1e6
    errors = total["bad"] + total["empty"] + total["socket_errors"] + total["timeouts"]
    row = dict(depth=depth, op=op, requests=int(total["requests"]), ops=int(ops),
               errors=int(errors), seconds=round(secs, 2),
               ops_per_s=round(ops / secs, 1) if secs else 0,
               req_per_s=round(total["requests"] / secs, 1) if secs else 0,
               p50_ms=round(total["p50_us"] / 1000, 2), p99_ms=round(total["p99_us"] / 1000, 2),
               store_cpu_s=round(store_s, 2),
               store_us_per_op=round(store_s / ops * 1e6) if ops else "",
               nginx_us_per_op=round(nginx_cpu / ops * 1e6) if ops else "",
               wrk_cpu_s=round(total["wrk_cpu"], 2),
               others_cpu_pct=round(others / wall * 100),
               busy_before_pct=round(before),
               command=total["cmd"])
    row["depth_end"] = store.depth() if op == "post" else depth
    if op == "claim":
        row["note"] = "ops: claims of 10 (201), each released by DELETE of the claim; " \
                      "%d releases, %d empty claims (204); %d claims released after the run" \
                      % (total["released"], total["empty"], left)
    elif op == "get":
        row["note"] = "ops: pages of the last 10 messages (checked: reaches the newest)"
    else:
        row["note"] = "ops: posts of 1 message (201); depth %d -> %d" % (depth, row["depth_end"])
    return row


def release(a, pending):
    for path in pending:
        http(a.http_port, "DELETE", path)


def release_all(a, store):
    """claims made by requests still in flight when wrk stopped: released
    too, so that the next measurements find every message unclaimed"""
    now = int(time.time())
    ids = {str(d["c"]["id"]) for d in store.messages.find(
        {"p_q": PQ, "c.e": {"$gt": Int64(now)}}, {"c.id": 1}) if d["c"].get("id")}
    release(a, ["/v2/queues/%s/claims/%s" % (QUEUE, i) for i in sorted(ids)])
    return len(ids)


# --- msgbus's finds straight to the store --------------------------------------------------

def live_filter(now, unclaimed):
    """ngx_http_msgbus_filter_queue(): the queue's messages, not expired,
    not deleted; unclaimed too"""
    f = SON([("p_q", PQ),
             ("e", {"$gt": datetime.datetime.fromtimestamp(now, datetime.timezone.utc)}),
             ("tx", None)])
    if unclaimed:
        f["c.e"] = {"$lte": Int64(now)}
    return f


def not_delayed():
    now = int(time.time())
    return [{"d": {"$lte": Int64(now)}}, {"d": {"$exists": False}}]


def find_cmd(f, sort, limit, small, hint):
    """ngx_http_msgbus_find()'s command"""
    cmd = SON([("find", "messages"), ("filter", f), ("sort", SON([("k", sort)]))])
    if small:
        cmd["projection"] = SON([("k", 1), ("c", 1)])
    cmd["limit"] = limit
    cmd["singleBatch"] = True
    if hint is not None:
        cmd["hint"] = hint
    return cmd


def page_cmd(after, hint):
    """a listing's page (echo, include_claimed and include_delayed false):
    ngx_http_msgbus_list() -> ngx_http_msgbus_find(r, ctx, NULL, 1, limit, 0)"""
    now = int(time.time())
    f = live_filter(now, True)
    f["k"] = {"$gt": Int64(after)}
    f["$or"] = not_delayed()
    return find_cmd(f, 1, 10, False, hint)


def claim_cmd(hint, window=None):
    """a claim's candidates: ngx_http_msgbus_candidates(), twice the limit;
    window: (lo, hi) markers that bound the scan"""
    f = live_filter(int(time.time()), True)
    if window is not None:
        f["k"] = {"$gte": Int64(window[0]), "$lt": Int64(window[1])}
    f["$or"] = not_delayed()
    return find_cmd(f, 1, 20, False, hint)


def top_cmd(hint, at_least):
    """the highest marker, after a post lost a marker: ngx_http_msgbus_top();
    at_least: a marker known taken (the lost one) bounds the scan"""
    f = SON([("p_q", PQ)])
    if at_least is not None:
        f["k"] = {"$gte": Int64(at_least)}
    return find_cmd(f, -1, 1, True, hint)


# name, what, the command (of the tail's marker, the newest marker and the
# oldest), the markers it must give (None: 20 in order)
CLAIM_WINDOW = 200
QUERIES = [
    ("q-page", "the tail page's find, as msgbus sends it",
     lambda after, newest, oldest: page_cmd(after, None),
     lambda newest: list(range(newest - 9, newest + 1))),
    ("q-page+hint", "the same + hint {p_q: 1, k: 1}",
     lambda after, newest, oldest: page_cmd(after, HINT),
     lambda newest: list(range(newest - 9, newest + 1))),
    ("q-claim", "a claim's candidates (20 oldest unclaimed), as msgbus sends it",
     lambda after, newest, oldest: claim_cmd(None), None),
    ("q-claim+hint", "the same + hint {p_q: 1, k: 1}",
     lambda after, newest, oldest: claim_cmd(HINT), None),
    ("q-claim+window+hint", "the same + hint, and %d markers from the oldest: "
     "oldest <= k < oldest + %d" % (CLAIM_WINDOW, CLAIM_WINDOW),
     lambda after, newest, oldest: claim_cmd(HINT, (oldest, oldest + CLAIM_WINDOW)), None),
    ("q-top", "the highest marker (after a lost post), as msgbus sends it",
     lambda after, newest, oldest: top_cmd(None, None), lambda newest: [newest]),
    ("q-top+bound+hint", "the same with k >= a taken marker (newest - 10) + hint {p_q: 1, k: 1}",
     lambda after, newest, oldest: top_cmd(HINT, newest - 10), lambda newest: [newest]),
]


def plan_nodes(plan):
    """'Limit > Sort > Index Scan (claimed)' from FerretDB's explain"""
    out = []
    node = plan
    while node:
        name = node.get("Node Type", "?")
        if node.get("Index Name"):
            name += " (%s)" % node["Index Name"]
        out.append(name)
        kids = node.get("Plans") or []
        node = kids[0] if kids else None
    return " > ".join(out)


def pg_explain(store, cmd):
    """EXPLAIN ANALYZE of the SQL DocumentDB runs for the find (auto_explain
    of the statements nested in find_cursor_first_page(), FerretDB's call)"""
    spec = SON(cmd)
    spec["$db"] = store.db.name
    sql = ("LOAD 'auto_explain';\n"
           "SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on;\n"
           "SET auto_explain.log_buffers = on; SET auto_explain.log_nested_statements = on;\n"
           "SET auto_explain.log_level = notice; SET client_min_messages = notice;\n"
           "SELECT length(cursorpage::bytea) FROM documentdb_api.find_cursor_first_page("
           "'%s', '\\x%s'::bytea, 0);\n" % (store.db.name, bson.encode(spec).hex()))
    _, err = store.psql(sql)
    keep = []
    table = store.table.split(".")[1] + " "
    for block in err.split("NOTICE:  ")[1:]:
        if table not in block and "find_cursor_first_page" not in block:
            continue
        for line in block.rstrip().splitlines():
            if line.startswith("Query Text"):
                continue
            keep.append(re.sub(r"'BSONHEX[0-9a-f]+'::documentdb_core\.bson", "<bson>", line))
    return "\n".join(keep)


def queries(a, store, depth, after, newest_k, oldest_k, plans):
    """each of QUERIES in a closed loop on one connection for SHAPE_SECONDS:
    store CPU per query; its plans to the plans file"""
    rows = []
    for name, what, make, want in QUERIES:
        docs = store.db.command(make(after, newest_k, oldest_k))["cursor"]["firstBatch"]
        ks = [d["k"] for d in docs]
        if want is not None and ks != want(newest_k):
            die("%s: markers %r, not %r" % (name, ks, want(newest_k)))
        if want is None and (len(ks) != 20 or ks != sorted(ks)):
            die("%s: markers %r, not 20 in order" % (name, ks))
        ex = store.db.command(SON([("explain", make(after, newest_k, oldest_k)),
                                   ("verbosity", "executionStats")]))
        nodes = plan_nodes(ex["queryPlanner"]["Plan"])
        wait_quiet(a)
        n = 0
        c0 = store.cpu()
        t0 = time.time()
        while time.time() - t0 < a.shape_seconds or n < 3:
            store.db.command(make(after, newest_k, oldest_k))
            n += 1
        wall = time.time() - t0
        cpu = store.cpu() - c0
        cmd = make(after, newest_k, oldest_k)
        pg = pg_explain(store, cmd)
        plans.write("=== depth %d, %s: %s\n" % (depth, name, what))
        plans.write("command: %s\n" % bson.json_util.dumps(cmd))
        plans.write("FerretDB explain: %s\n" % nodes)
        plans.write("PostgreSQL, EXPLAIN ANALYZE (auto_explain) of the query "
                    "find_cursor_first_page() runs, then of the call:\n%s\n" % pg)
        plans.write("%d queries in %.1f s: %.0f us store CPU, %.2f ms wall each\n\n"
                    % (n, wall, cpu / n * 1e6, wall / n * 1000))
        plans.flush()
        m = re.search(r"(Index Scan|Bitmap Index Scan) (?:using|on) (\S+) .*?"
                      r"actual time=[\d.]+\.\.([\d.]+) rows=(\d+)", pg)
        scan = "; %s %s: %s ms, %s rows" % (m.group(1), m.group(2), m.group(3), m.group(4)) \
            if m else ""
        buf = re.search(r"Buffers: shared hit=(\d+)", pg)
        rows.append(dict(depth=depth, op=name, requests=n, ops=n, errors=0,
                         seconds=round(wall, 2), ops_per_s=round(n / wall, 1),
                         req_per_s=round(n / wall, 1), p50_ms="", p99_ms="",
                         store_cpu_s=round(cpu, 2), store_us_per_op=round(cpu / n * 1e6),
                         nginx_us_per_op="", wrk_cpu_s="", others_cpu_pct="",
                         busy_before_pct="", depth_end=depth,
                         command="pymongo, one connection: %s" % what,
                         note="plan: %s%s%s" % (nodes, scan, ", %s buffers" % buf.group(1)
                                                if buf else "")))
        log("  %-17s %7.0f us store CPU per query; %s" % (name, cpu / n * 1e6,
                                                         rows[-1]["note"]))
    return rows


# --- results ------------------------------------------------------------------------------

COLUMNS = ["run", "date_utc", "depth", "op", "depth_end", "connections", "seconds",
           "requests", "ops", "errors", "ops_per_s", "req_per_s", "p50_ms", "p99_ms",
           "store_cpu_s", "store_us_per_op", "nginx_us_per_op", "wrk_cpu_s",
           "others_cpu_pct", "busy_before_pct", "fill_s", "fill_store_cpu_s",
           "nproc", "cpu_model", "msgbus", "nginx", "ferretdb", "documentdb",
           "postgresql", "wrk", "store_set", "command", "note"]


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return ""


def ratio(rows, op):
    by = {r["depth"]: r for r in rows if r["op"] == op and r["store_us_per_op"] not in ("", 0)}
    if len(by) < 2:
        return None
    lo, hi = min(by), max(by)
    return lo, hi, by[hi]["store_us_per_op"] / by[lo]["store_us_per_op"]


def fmt(n):
    return "{:,}".format(n) if isinstance(n, int) else str(n)


def markdown(rows, a, versions, run_id):
    ops = [r for r in rows if r["op"] in OPS]
    qs = [r for r in rows if r["op"].startswith("q-")]
    lines = ["# bench/depth %s" % run_id, "",
             "One queue; each operation a closed loop of %d connections (wrk, one per "
             "thread) for %d s (post: until the queue grew by %d%% or %d messages); "
             "store CPU = FerretDB + PostgreSQL with its backends (`t/util/store.sh cpu`). "
             "get = the page of the queue's last 10 messages; claim = a claim of 10 and "
             "its release (2 requests); post = 1 message."
             % (a.connections, a.duration, a.post_growth * 100, a.post_min), "",
             "| depth | op | ops/s | store CPU us/op | nginx CPU us/op | p50 ms | p99 ms "
             "| errors | depth after | others % CPU |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in ops:
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            fmt(r["depth"]), r["op"], r["ops_per_s"], fmt(r["store_us_per_op"]),
            fmt(r["nginx_us_per_op"]), r["p50_ms"], r["p99_ms"], r["errors"],
            fmt(r["depth_end"]), r["others_cpu_pct"]))
    lines.append("")
    for op in OPS:
        rr = ratio(rows, op)
        if rr:
            lo, hi, x = rr
            extra = ""
            if op == "get":
                extra = " (target: at most 3x: %s)" % ("met" if x <= 3 else "NOT met")
            lines.append("- %s: store CPU per op at %s messages / at %s: **%.1fx**%s"
                         % (op, fmt(hi), fmt(lo), x, extra))
    if qs:
        lines += ["", "msgbus's finds sent straight to the store (pymongo, one connection, "
                  "%g s each; plans in the -plans.txt file):" % a.shape_seconds, "",
                  "| depth | query | store CPU us/query | plan (FerretDB explain; "
                  "PostgreSQL's index scan) |", "|---:|---|---:|---|"]
        for r in qs:
            lines.append("| %s | %s | %s | %s |" % (fmt(r["depth"]), r["op"],
                                                    fmt(r["store_us_per_op"]),
                                                    r["note"].replace("plan: ", "")))
        lines.append("")
        for name, what, _, _ in QUERIES:
            rr = ratio(rows, name)
            if rr:
                lines.append("- %s (%s): at %s / at %s: **%.1fx**"
                             % (name, what, fmt(rr[1]), fmt(rr[0]), rr[2]))
    lines += ["", "Versions: " + ", ".join("%s %s" % kv for kv in versions.items())
              + ("; store settings: %s" % a.store_set if a.store_set else "")
              + "; %d x %s" % (NPROC, cpu_model())]
    return "\n".join(lines) + "\n"


def plot(rows, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 5))
    label = {"get": "tail-page GET", "claim": "claim of 10 + release",
             "post": "POST of 1 message"}
    for op, st in zip(OPS, ("o-", "s-", "^-")):
        rr = [r for r in rows if r["op"] == op and r["store_us_per_op"] != ""]
        if rr:
            xs = [r["depth"] for r in rr]
            ax1.plot(xs, [r["store_us_per_op"] for r in rr], st, label=label[op])
            ax2.plot(xs, [r["ops_per_s"] for r in rr], st, label=label[op])
    for (name, _, _, _), st in zip(QUERIES, ("o-", "o--", "s-", "s--", "s:", "^-", "^--")):
        rr = [r for r in rows if r["op"] == name]
        if rr:
            ax3.plot([r["depth"] for r in rr], [r["store_us_per_op"] for r in rr], st,
                     label=name)
    for ax in (ax1, ax2, ax3):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("messages in the queue")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    ax1.set_ylabel("us")
    ax1.set_title("store CPU per operation through msgbus", fontsize=9)
    ax2.set_ylabel("operations / s")
    ax2.set_title("msgbus, closed loop", fontsize=9)
    ax3.set_ylabel("us")
    ax3.set_title("store CPU per find, straight to the store", fontsize=9)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# --- main ----------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--store-port", type=int, required=True)
    ap.add_argument("--store-dir", required=True)
    ap.add_argument("--pg-port", type=int, required=True)
    ap.add_argument("--nginx-pid", type=int, required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--version", action="append", default=[], help="name=value, recorded")
    ap.add_argument("--store-set", default="")
    ap.add_argument("--depths", default=env("DEPTHS", "100 10000 100000"))
    ap.add_argument("--duration", type=int, default=int(env("DURATION", "10")))
    ap.add_argument("--warmup", type=int, default=int(env("WARMUP", "2")))
    ap.add_argument("--connections", type=int, default=int(env("CONNECTIONS", "8")))
    ap.add_argument("--fill-jobs", type=int, default=int(env("FILL_JOBS", "2")))
    ap.add_argument("--seed-ttl", type=int, default=int(env("SEED_TTL", "43200")),
                    help="ttl of the inserted messages (s)")
    ap.add_argument("--post-growth", type=float, default=float(env("POST_GROWTH", "0.5")))
    ap.add_argument("--post-min", type=int, default=int(env("POST_MIN", "500")))
    ap.add_argument("--shapes", type=int, default=int(env("SHAPES", "1")),
                    help="msgbus's finds straight to the store, and their plans")
    ap.add_argument("--shape-seconds", type=float, default=float(env("SHAPE_SECONDS", "3")))
    ap.add_argument("--quiet-pct", type=float, default=float(env("QUIET_PCT", "15")))
    ap.add_argument("--quiet-wait", type=int, default=int(env("QUIET_WAIT", "20")))
    ap.add_argument("--results-dir", default=env("RESULTS_DIR", os.path.join(TOP, "bench", "results")))
    a = ap.parse_args()
    depths = sorted(int(x) for x in a.depths.replace(",", " ").split())
    if not depths or depths[0] < 20:
        die("DEPTHS: at least 20 messages each")
    versions = dict(v.split("=", 1) for v in a.version)

    run_id = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    os.makedirs(a.results_dir, exist_ok=True)
    base = os.path.join(a.results_dir, "depth-%s" % run_id)
    plans = open(base + "-plans.txt", "w")
    plans.write("bench/depth %s: plans of msgbus's page query at each depth\n%s\n\n"
                % (run_id, ", ".join("%s %s" % kv for kv in versions.items())
                   + ("; store settings: %s" % a.store_set if a.store_set else "")))

    # the queue, and messages posted through msgbus: the shape to copy
    st, body, _ = http(a.http_port, "PUT", "/v2/queues/%s" % QUEUE)
    if st not in (201, 204):
        die("PUT /v2/queues/%s: %d %s" % (QUEUE, st, body[:200]))
    st, body, _ = http(a.http_port, "POST", "/v2/queues/%s/messages" % QUEUE,
                       {"messages": [{"body": {"seq": i}} for i in range(10)]})
    if st != 201:
        die("POST of the first messages: %d %s" % (st, body[:300]))
    store = Store(a)
    store.find_partition()
    tmpl = template_doc(store)
    log("queue %s in %s.messages (PostgreSQL table %s); a message as msgbus writes it: %s"
        % (PQ, store.db.name, store.table, bson.json_util.dumps(tmpl)))
    plans.write("indexes of %s.messages:\n%s\n\n" % (store.db.name, store.indexes()))

    rows = []
    for depth in depths:
        log("depth %s" % "{:,}".format(depth))
        fill_s, fill_cpu = fill(store, tmpl, depth, a.fill_jobs, a.seed_ttl)
        store.vacuum()
        have = store.depth()
        if have != depth:
            die("the queue holds %d messages, not %d" % (have, depth))
        after, newest_id, newest_k = tail(store)
        page = "/v2/queues/%s/messages?limit=10&echo=true&marker=%d" % (QUEUE, after)
        st, body, _ = http(a.http_port, "GET", page)
        got = json.loads(body)["messages"] if st == 200 else []
        if len(got) != 10 or got[-1]["id"] != newest_id:
            die("GET %s: %d, %d messages, not the last 10" % (page, st, len(got)))
        url = "http://127.0.0.1:%d" % a.http_port
        depth_rows = []
        if a.shapes:
            oldest_k = store.messages.find_one({"p_q": PQ, "tx": None}, {"k": 1},
                                               sort=[("k", 1)])["k"]
            depth_rows += queries(a, store, depth, after, newest_k, oldest_k, plans)
        for op in OPS:
            if op == "get":
                r = measure(a, store, op, depth, url, [page, newest_id])
            elif op == "claim":
                r = measure(a, store, op, depth, url,
                            ["/v2/queues/%s/claims?limit=10" % QUEUE])
            else:
                k_before = store.counter()
                r = measure(a, store, op, depth, url,
                            ["/v2/queues/%s/messages" % QUEUE])
                # what was posted goes: the next depth starts from this one
                store.messages.delete_many({"p_q": PQ, "k": {"$gte": Int64(k_before)}})
            log("  %-13s %8.1f ops/s %7s us store CPU/op %6s us nginx CPU/op, %d errors%s"
                % (op, r["ops_per_s"], r["store_us_per_op"], r["nginx_us_per_op"],
                   r["errors"], ", depth %d -> %d" % (depth, r["depth_end"])
                   if r["depth_end"] != depth else ""))
            depth_rows.append(r)
        for r in depth_rows:
            r["fill_s"] = round(fill_s)
            r["fill_store_cpu_s"] = round(fill_cpu)
        rows += depth_rows

    plans.close()

    # --- the results
    date_utc = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    common = dict(run=run_id, date_utc=date_utc, connections=a.connections, nproc=NPROC,
                  cpu_model=cpu_model(), store_set=a.store_set, **versions)
    order = {op: i for i, op in enumerate(OPS + tuple(q[0] for q in QUERIES))}
    rows.sort(key=lambda r: (r["depth"], order[r["op"]]))
    with open(base + ".csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(dict(common, **r))
    md = markdown(rows, a, versions, run_id)
    with open(base + ".md", "w") as f:
        f.write(md)
    plot(rows, base + ".png", "bench/depth %s: %s" % (
        run_id, ", ".join("%s %s" % kv for kv in versions.items())))
    print()
    print(md)
    for ext in (".csv", ".md", ".png", "-plans.txt"):
        log("wrote %s" % os.path.relpath(base + ext, TOP))


if __name__ == "__main__":
    main()
