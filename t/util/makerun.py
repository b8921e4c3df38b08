#!/usr/bin/env python3
"""What `make run` does (t/util/run.sh, t/050-make-run.t), each case in a
folder of its own under --tmp, on free ports:

- MONGODB_URI and LISTEN: nginx serves the bus there against that
  MongoDB, no embedded store is started; a post is read back; stop
  stops it;
- LISTEN's port taken: it stops at once naming LISTEN, with nothing
  started (not the store either);
- STORE_PORT taken: it stops naming MONGODB_URI and STORE_PORT, nothing
  started;
- nginx that does not start: the store started for it is stopped again;
- the embedded store: started, the bus answers, stop stops both;
- a MongoDB that does not answer: nginx runs, and the user is told;
- a mongodb+srv:// string: looked up through RESOLVER (t/util/dns.py
  here), whose line make run adds to the configuration.
"""
import argparse
import http.client as httpclient
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from verdict import Verdict, alive, free_port  # noqa: E402

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
CLIENT = '3381af92-2b9e-11e3-b191-71861300734c'


def listening(port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=1).close()
        return True
    except OSError:
        return False


def taken():
    """a socket listening on a free port, and the port"""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('127.0.0.1', 0))
    s.listen(8)
    return s, s.getsockname()[1]


def pid_alive(path):
    try:
        with open(path) as f:
            return alive(int(f.read().strip()))
    except (OSError, ValueError):
        return False


class Runner:
    def __init__(self, args):
        self.args = args
        self.cases = []

    def run(self, case, what, **env):
        e = dict(os.environ)
        for k in ('LISTEN', 'MONGODB_URI', 'STORE_PORT', 'HTTP_PORT',
                  'RESOLVER'):
            e.pop(k, None)
        e.update({'RUN': os.path.join(self.args.tmp, case),
                  'MODULE': self.args.module,
                  'NGINX_BIN': self.args.nginx})
        e.update({k: str(v) for k, v in env.items()})
        if what == 'start' and case not in self.cases:
            self.cases.append(case)
        p = subprocess.run([os.path.join(TOP, 't/util/run.sh'), what],
                           env=e, capture_output=True, text=True,
                           timeout=180)
        print('%s %s: exit %d\n%s%s' % (case, what, p.returncode,
                                        p.stdout, p.stderr))
        return p

    def dir(self, case, *path):
        return os.path.join(self.args.tmp, case, *path)


def http(port, method, path, body=None):
    req = urllib.request.Request(
        'http://127.0.0.1:%d%s' % (port, path), method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={'Client-ID': CLIENT, 'X-Project-ID': 't050',
                 'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError as e:
        return None, str(e).encode()


def external(r, v, uri):
    port = free_port()
    p = r.run('external', 'start', MONGODB_URI=uri,
              LISTEN='127.0.0.1:%d' % port)
    v.check(p.returncode == 0, 'MONGODB_URI and LISTEN: it starts',
            p.stderr)
    v.check(not os.path.exists(r.dir('external', 'store')),
            'MONGODB_URI: no embedded store is started')
    code, _ = http(port, 'GET', '/v2/ping')
    v.check(code == 204, 'the bus answers on LISTEN, against MONGODB_URI',
            'ping: %s' % code)
    q = '/v2/queues/t050-%d/messages' % os.getpid()
    code, _ = http(port, 'POST', q, {'messages': [{'ttl': 60,
                                                   'body': 'run'}]})
    code2, body = http(port, 'GET', q + '?echo=true')
    v.check(code == 201 and code2 == 200 and b'"run"' in body,
            'a post through it is read back',
            'post %s, list %s %r' % (code, code2, body[:200]))
    # a keepalive connection the client closes: info, below make run's level
    c = httpclient.HTTPConnection('127.0.0.1', port, timeout=10)
    for _ in range(2):
        c.request('GET', '/v2/ping')
        c.getresponse().read()
    c.close()
    time.sleep(0.3)
    with open(r.dir('external', 'nginx/logs/error.log')) as f:
        log = f.read()
    v.check('[notice]' in log and 'keepalive' not in log
            and '[info]' not in log,
            'its error log is at notice: no line per closed keepalive '
            'connection', log[-500:])
    p = r.run('external', 'stop')
    v.check(p.returncode == 0 and not listening(port)
            and not pid_alive(r.dir('external', 'nginx/logs/nginx.pid')),
            'stop stops nginx', p.stderr)


def listen_taken(r, v):
    s, port = taken()
    store_port = free_port()
    p = r.run('listen', 'start', LISTEN='127.0.0.1:%d' % port,
              STORE_PORT=store_port)
    s.close()
    v.check(p.returncode != 0 and 'LISTEN=' in p.stderr
            and 'taken' in p.stderr,
            'LISTEN taken: it stops, naming LISTEN', p.stderr)
    v.check(not os.path.exists(r.dir('listen', 'store'))
            and not os.path.exists(r.dir('listen', 'nginx/logs/nginx.pid'))
            and not listening(store_port),
            'LISTEN taken: nothing is started')
    v.check(p.stderr.count('\n') == 1 and 'bind()' not in p.stderr,
            'LISTEN taken: one line, no bind() errors', repr(p.stderr))


def store_taken(r, v):
    s, port = taken()
    listen = free_port()
    p = r.run('storeport', 'start', STORE_PORT=port,
              LISTEN='127.0.0.1:%d' % listen)
    s.close()
    v.check(p.returncode != 0 and 'MONGODB_URI=' in p.stderr
            and 'STORE_PORT=' in p.stderr,
            'STORE_PORT taken: it stops, naming MONGODB_URI and STORE_PORT',
            p.stderr)
    v.check(not listening(listen)
            and not os.path.exists(r.dir('storeport', 'store')),
            'STORE_PORT taken: nothing is started')


def nginx_fails(r, v):
    port = free_port()
    p = r.run('fails', 'start', STORE_PORT=port,
              LISTEN='127.0.0.1:%d' % free_port(), NGINX_BIN='/bin/false')
    v.check(p.returncode != 0 and 'nginx did not start' in p.stderr,
            'nginx does not start: it says so', p.stderr)
    v.check(not listening(port)
            and not pid_alive(r.dir('fails', 'store/ferretdb.pid'))
            and not pid_alive(r.dir('fails', 'store/postgres.pid')),
            'nginx does not start: the store it started is stopped again')
    subprocess.run([os.path.join(TOP, 't/util/store.sh'), 'destroy',
                    r.dir('fails', 'store')], capture_output=True)


def embedded(r, v):
    port, listen = free_port(), free_port()
    p = r.run('embedded', 'start', STORE_PORT=port,
              LISTEN='127.0.0.1:%d' % listen)
    code, _ = http(listen, 'GET', '/v2/ping')
    v.check(p.returncode == 0 and listening(port) and code == 204,
            'no MONGODB_URI: the embedded store on STORE_PORT serves the bus',
            'exit %d, ping %s' % (p.returncode, code))
    p = r.run('embedded', 'stop')
    v.check(p.returncode == 0 and not listening(port)
            and not listening(listen),
            'stop stops nginx and the embedded store', p.stderr)
    subprocess.run([os.path.join(TOP, 't/util/store.sh'), 'destroy',
                    r.dir('embedded', 'store')], capture_output=True)


def unreachable(r, v):
    port = free_port()
    p = r.run('unreachable', 'start',
              MONGODB_URI='mongodb://127.0.0.1:%d/x?connectTimeoutMS=300'
                          '&serverSelectionTimeoutMS=500' % free_port(),
              LISTEN='127.0.0.1:%d' % port)
    v.check(p.returncode == 0 and 'does not answer' in p.stderr
            and 'Connection refused' in p.stderr,
            'a MongoDB that does not answer: nginx runs, and the user is '
            'told why', p.stderr)
    r.run('unreachable', 'stop')


def srv(r, v, uri):
    m = re.match(r'mongodb://(?:[^@/]*@)?([^/,?:]+)(?::(\d+))?/([^?]*)', uri)
    host, port, db = m.group(1), m.group(2) or '27017', m.group(3)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('127.0.0.1', 0))
    dns_port = s.getsockname()[1]
    s.close()
    dns = subprocess.Popen(
        [sys.executable, os.path.join(TOP, 't/util/dns.py'), str(dns_port),
         '_mongodb._tcp.cluster.test.msgbus SRV 0 5 %s db1.test.msgbus' % port,
         'db1.test.msgbus A %s' % socket.gethostbyname(host)],
        stdout=subprocess.PIPE, text=True)
    try:
        dns.stdout.readline()
        listen = free_port()
        p = r.run('srv', 'start', LISTEN='127.0.0.1:%d' % listen,
                  MONGODB_URI='mongodb+srv://cluster.test.msgbus/%s'
                              '?tls=false' % db,
                  RESOLVER='127.0.0.1:%d' % dns_port)
        code, _ = http(listen, 'GET', '/v2/ping')
        conf = open(r.dir('srv', 'nginx/conf/nginx.conf')).read()
        v.check(p.returncode == 0 and code == 204
                and 'resolver 127.0.0.1:%d;' % dns_port in conf,
                'a mongodb+srv:// string is looked up through RESOLVER',
                'exit %d, ping %s\n%s' % (p.returncode, code, p.stderr))
        r.run('srv', 'stop')
    finally:
        dns.terminate()
        dns.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--tmp', required=True)
    ap.add_argument('--mongodb', required=True)
    ap.add_argument('--module', required=True)
    ap.add_argument('--nginx', default='/usr/sbin/nginx')
    args = ap.parse_args()

    r, v = Runner(args), Verdict()
    try:
        external(r, v, args.mongodb)
        listen_taken(r, v)
        store_taken(r, v)
        nginx_fails(r, v)
        embedded(r, v)
        unreachable(r, v)
        srv(r, v, args.mongodb)
    finally:
        # whatever a case left running, even when it failed half-way
        for case in r.cases:
            r.run(case, 'stop')
    v.report()
    if v.failures():
        print('FAILED: %d' % v.failures())
        sys.exit(1)
    print('OK')


if __name__ == '__main__':
    main()
