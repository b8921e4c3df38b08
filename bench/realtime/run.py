#!/usr/bin/python3
# Fan-out next to Nchan: for each contender, a fresh nginx (2 workers) and
# the Go client (bench/realtime/client): LONGPOLL parked long-polls and SSE
# streams on one queue (channel), RATE posts per second for DURATION;
# latency from the post's answer to each receipt, and the workers'
# anonymous memory per parked client.  msgbus keeps its messages in a
# private store (t/util/store.sh: FerretDB in front of PostgreSQL with
# DocumentDB); Nchan in its memory store.
#
# Writes bench/results/realtime-<UTC stamp>.json (every run's figures)
# and .md (the table).

import argparse
import datetime
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
NGINX = os.environ.get('NGINX', '/usr/sbin/nginx')
MODULE = os.path.join(TOP, '.build/default/ngx_http_msgbus_module.so')
NCHAN = '/usr/lib/nginx/modules/ngx_nchan_module.so'

COMMON = '''
worker_processes 2;
worker_rlimit_nofile %(nofile)d;
error_log %(dir)s/logs/error.log warn;
pid %(dir)s/logs/nginx.pid;
events { worker_connections 12000; }
http {
    access_log off;
    client_body_temp_path %(dir)s/body;
    %(extra)s
%(http)s
    server {
        listen 127.0.0.1:%(port)d backlog=8192;
        keepalive_requests 1000000;
%(server)s
    }
}
'''

CONF = {
    'msgbus': ('load_module %s;' % MODULE, '''
    msgbus_mongodb "%(uri)s";
''', '''
        location / { msgbus; msgbus_longpoll_max_wait 60s; }
        location = /msgbus_status { msgbus_status; }
'''),
    'nchan': ('load_module %s;' % NCHAN, '''
    nchan_message_buffer_length 1000;
    nchan_message_timeout 10m;
''', '''
        location = /pub { nchan_publisher; nchan_channel_id $arg_id; }
        location = /sub {
            nchan_subscriber;
            nchan_channel_id $arg_id;
            nchan_longpoll_multipart_response on;
            nchan_subscriber_timeout 60s;
        }
'''),
}


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def workers(master):
    out = subprocess.run(['pgrep', '-P', str(master)], capture_output=True,
                         text=True).stdout.split()
    return [int(p) for p in out]


def run_one(o, name, store_uri, longpoll, sse, rate, tag):
    d = os.path.join(TOP, 'bench/results/tmp/realtime', name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d + '/logs')
    os.makedirs(d + '/body')
    port = free_port()
    load, http, server = CONF[name]
    conf = load + '\n' + COMMON % {
        'dir': d, 'port': port,
        'nofile': resource.getrlimit(resource.RLIMIT_NOFILE)[1],
        'http': http % {'uri': store_uri}, 'server': server,
        'extra': o.http_extra}
    with open(d + '/nginx.conf', 'w') as f:
        f.write(conf)
    subprocess.check_call([NGINX, '-p', d + '/', '-c', d + '/nginx.conf'])
    try:
        time.sleep(0.5)
        with open(d + '/logs/nginx.pid') as f:
            master = int(f.read())
        pids = workers(master)
        queue = 'fanout-%s-%d' % (tag, int(time.time()))
        cmd = ['nice', '-n', str(o.client_nice), o.client, '-server', name,
               '-addr', '127.0.0.1:%d' % port,
               '-queue', queue, '-project', 'bench',
               '-longpoll', str(longpoll), '-sse', str(sse),
               '-rate', str(rate), '-duration', o.duration,
               '-posters', str(o.posters), '-wait', '60',
               '-deadline', o.deadline,
               '-pids', ','.join(map(str, pids))]
        if o.dump:
            os.makedirs(o.dump, exist_ok=True)
            cmd += ['-dump', os.path.join(o.dump, '%s-%d-%d-%g.csv'
                                          % (name, longpoll, sse, rate))]
        print('bench-realtime: %s' % ' '.join(cmd), flush=True)
        # its own session, so that its niceness also holds against nginx's
        # (with the kernel's autogroups, nice counts within a session)
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        try:
            with open('/proc/%d/autogroup' % p.pid, 'w') as f:
                f.write(str(o.client_nice))
            grouped = True
        except OSError as e:
            print('bench-realtime: the client\'s autogroup keeps its '
                  'niceness: %s' % e, flush=True)
            grouped = False
        try:
            out, err = p.communicate(timeout=900)
        except BaseException:
            p.kill()
            p.wait()
            raise
        if p.returncode != 0:
            raise SystemExit('client failed: %s' % err[-2000:])
        res = json.loads(out.strip().splitlines()[-1])
        res['client_autogroup_niced'] = grouped
        res['command'] = ' '.join(cmd)
        res['nginx_errors'] = sum(1 for line in open(d + '/logs/error.log')
                                  if '[error]' in line or '[alert]' in line
                                  or '[crit]' in line)
        return res
    finally:
        subprocess.call([NGINX, '-p', d + '/', '-c', d + '/nginx.conf',
                         '-s', 'quit'])
        time.sleep(1)


def table(results):
    rows = ['| contender | long-polls | streams | posts/s | posts answered '
            '| long-poll p50 / p99 ms | stream p50 / p99 ms '
            '| as read: long-poll / stream p99 ms '
            '| delivered | worker CPU µs per delivery '
            '| bytes per long-poll | bytes per stream |',
            '|---|---:|---:|---:|---|---|---|---|---:|---:|---:|---:|']
    for r in results:
        lp, ss, a = r['longpoll_latency'], r['sse_latency'], r['all_latency']
        rows.append('| %s | %d | %d | %g | %s in %.1f s | %.1f / %.1f '
                    '| %.1f / %.1f | %.1f / %.1f | %.4f | %s | %s | %s |' % (
                        r['server'], r['longpoll'], r['sse'], r['rate'],
                        ', '.join('%s× %s' % (v, k) for k, v in
                                  sorted(r['post_status'].items())),
                        r['posting_s'], lp['p50_ms'], lp['p99_ms'],
                        ss['p50_ms'], ss['p99_ms'],
                        lp.get('read_p99_ms', -1), ss.get('read_p99_ms', -1),
                        a.get('delivered', 0),
                        '%.1f' % r['cpu_us_per_delivery']
                        if 'cpu_us_per_delivery' in r else '–',
                        r.get('bytes_per_longpoll', '–'),
                        r.get('bytes_per_stream', '–')))
    return '\n'.join(rows) + '\n'


def main():
    a = argparse.ArgumentParser()
    a.add_argument('--client', required=True)
    a.add_argument('--longpoll', type=int,
                   default=int(os.environ.get('LONGPOLL', 2000)))
    a.add_argument('--sse', type=int, default=int(os.environ.get('SSE', 2000)))
    a.add_argument('--rate', type=float,
                   default=float(os.environ.get('RATE', 100)))
    a.add_argument('--duration', default=os.environ.get('DURATION', '20s'))
    a.add_argument('--deadline', default=os.environ.get('DEADLINE', '60s'),
                   help='posting stops after this, done or not')
    a.add_argument('--posters', type=int,
                   default=int(os.environ.get('POSTERS', 1)))
    a.add_argument('--contenders', default='msgbus,nchan')
    a.add_argument('--http-extra', default=os.environ.get('HTTP_EXTRA', ''),
                   help='more directives in http{}, for every contender')
    a.add_argument('--client-nice', type=int,
                   default=int(os.environ.get('CLIENT_NICE', 19)),
                   help='the client runs at this niceness: the servers '
                   'first, as if it ran on another machine')
    a.add_argument('--dump', default=os.environ.get('DUMP', ''),
                   help='a folder for every receipt, one CSV per run')
    a.add_argument('--steps', default=os.environ.get('STEPS', ''),
                   help='more "longpoll:sse:rate" runs, space-separated')
    o = a.parse_args()

    stamp = datetime.datetime.utcnow().strftime('%Y%m%dT%H%M%SZ')
    store = os.path.join(TOP, 'bench/results/tmp/realtime/store')
    subprocess.call([os.path.join(TOP, 't/util/store.sh'), 'stop', store])
    shutil.rmtree(store, ignore_errors=True)
    sport = free_port()
    subprocess.check_call([os.path.join(TOP, 't/util/store.sh'), 'start',
                           store, str(sport)])
    uri = 'mongodb://127.0.0.1:%d/bench_realtime' % sport
    results = []
    try:
        runs = [(o.longpoll, o.sse, o.rate)]
        for s in o.steps.split():
            lp, ss, rate = s.split(':')
            runs.append((int(lp), int(ss), float(rate)))
        for i, (lp, ss, rate) in enumerate(runs):
            for name in o.contenders.split(','):
                res = run_one(o, name, uri, lp, ss, rate, '%d' % i)
                print(json.dumps(res), flush=True)
                results.append(res)
    finally:
        subprocess.call([os.path.join(TOP, 't/util/store.sh'), 'stop',
                         store])

    ver = subprocess.run(['git', '-C', TOP, 'rev-parse', '--short', 'HEAD'],
                         capture_output=True, text=True).stdout.strip()
    store_ver = subprocess.run(
        ['bash', '-c', 'top=$0; . "$top/bench/lib.sh"; bench_store_version',
         TOP], capture_output=True, text=True).stdout.strip()
    base = os.path.join(TOP, 'bench/results/realtime-' + stamp)
    with open(base + '.json', 'w') as f:
        json.dump({'msgbus': ver, 'nproc': os.cpu_count(),
                   'store': store_ver,
                   'http_extra': o.http_extra,
                   'client_nice': o.client_nice,
                   'results': results}, f, indent=1)
    md = ('# Fan-out, msgbus %s next to Nchan (%s, %d CPUs)\n\n'
          % (ver, stamp, os.cpu_count())
          + 'msgbus\'s store: %s\n\n' % store_ver
          + ('In `http {}`: `%s`\n\n' % o.http_extra if o.http_extra else '')
          + table(results))
    with open(base + '.md', 'w') as f:
        f.write(md)
    sys.stdout.write(md)


if __name__ == '__main__':
    main()
