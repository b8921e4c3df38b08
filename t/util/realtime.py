#!/usr/bin/python3
# Real-time delivery against a running msgbus (t/041-realtime.t):
# long-polls, claims that wait, streams, the status, a reload.
#
#   realtime.py --port PORT --project P [--pid-file F] SCENARIO
#   realtime.py --port PORT --project P --mongodb URI --binary NGINX
#               --module SO nodes
#
# first     a stream's status, headers and first bytes: a comment, then
#           the queue's messages as events; resumed after ?last_event_id=,
#           only the later one; a resume point that is not a marker: 400.
# wake      16 long-polls spread over the workers (the status shows
#           waiters in 2 of them); one post wakes them all within a second.
#           16 more after the new marker wait without asking the store
#           each (a few store commands in all), and the next post wakes
#           them.
# abort     long-polls and streams whose clients close: the status counts
#           0 waiters right after.
# stream    a stream reads half of 40 posted messages, reconnects with
#           Last-Event-ID and reads the rest: marker order, none lost,
#           none twice, no gap; an idle stream gets a ping every
#           second (msgbus_sse_ping 1s).
# gap       a resume point whose next message was deleted gets "event:
#           gap" before the next message; one right before it does not.
# claim     2 claims wait, 1 message comes: one gets it (201) at once, the
#           other 204 at its end.
# reload    long-polls, streams and claims wait; a HUP answers them all
#           (200 [], the stream's end, 204) and the old workers exit.
# nodes     a second nginx on the same store (msgbus_poll_interval 500ms):
#           its long-poll is woken by a post on the first within 550 ms.
#
# Prints what it measured, its assertions ("ok - WHAT" or "not ok - WHAT"
# and the reasons: t/util/verdict.py), then OK or FAILED; exit status 0 or
# 1.

import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from verdict import Verdict, alive, free_port, run_scenario  # noqa: E402

VERDICT = Verdict()


def check(cond, what, reason=None):
    return VERDICT.check(cond, what, reason)


class Bus:
    def __init__(self, port, project):
        self.port = port
        self.project = project

    def headers(self, client=None, extra=None):
        h = {'Client-ID': client or str(uuid.uuid4()),
             'X-Project-ID': self.project,
             'Content-Type': 'application/json'}
        h.update(extra or {})
        return h

    def request(self, method, path, body=None, client=None, extra=None,
                timeout=30, port=None):
        c = http.client.HTTPConnection('127.0.0.1', port or self.port,
                                       timeout=timeout)
        try:
            c.request(method, path,
                      json.dumps(body) if body is not None else None,
                      self.headers(client, extra))
            r = c.getresponse()
            data = r.read()
            return r.status, (json.loads(data) if data.strip() else None)
        finally:
            c.close()

    def post(self, queue, bodies, port=None):
        status, body = self.request(
            'POST', '/v2/queues/%s/messages' % queue,
            {'messages': [{'body': b} for b in bodies]}, port=port)
        if status != 201:
            raise SystemExit('post: %s %s' % (status, body))
        return [r.rsplit('/', 1)[1] for r in body['resources']]

    def status(self):
        c = http.client.HTTPConnection('127.0.0.1', self.port, timeout=10)
        try:
            c.request('GET', '/msgbus_status')
            r = c.getresponse()
            return json.loads(r.read())
        finally:
            c.close()

    def waiting(self):
        return sum(self.status()['total']['waiting'].values())

    def wait_for(self, what, n, seconds=5):
        end = time.time() + seconds
        while time.time() < end:
            got = (self.waiting() if what == 'all'
                   else self.status()['total']['waiting'][what])
            if got == n:
                return True
            time.sleep(0.05)
        return False


class LongPoll(threading.Thread):
    """GET or POST that waits; keeps its status, body and receipt time."""

    def __init__(self, bus, method, path, body=None, extra=None):
        super().__init__(daemon=True)
        self.bus, self.method, self.path = bus, method, path
        self.body, self.extra = body, extra
        self.status = self.result = self.at = None
        self.conn = None

    def run(self):
        try:
            self.conn = http.client.HTTPConnection('127.0.0.1', self.bus.port,
                                                   timeout=60)
            self.conn.request(self.method, self.path,
                              json.dumps(self.body) if self.body is not None
                              else None, self.bus.headers(extra=self.extra))
            r = self.conn.getresponse()
            data = r.read()
            self.at = time.time()
            self.status = r.status
            self.result = json.loads(data) if data.strip() else None
        except Exception as e:              # noqa: BLE001
            self.at = time.time()
            self.status = 'error: %s' % e

    def abort(self):
        sock = self.conn.sock if self.conn else None
        if sock:
            sock.shutdown(socket.SHUT_RDWR)


class Stream(threading.Thread):
    """An SSE client: its events as (event, id, data, receipt time)."""

    def __init__(self, bus, queue, last_id=None, stop_after=None, port=None):
        super().__init__(daemon=True)
        self.bus, self.queue = bus, queue
        self.port = port or bus.port
        self.last_id, self.stop_after = last_id, stop_after
        self.events = []
        self.pings = 0
        self.ended = False
        self.sock = None
        self.error = None

    def run(self):
        extra = {'Accept': 'text/event-stream'}
        if self.last_id is not None:
            extra['Last-Event-ID'] = str(self.last_id)
        try:
            c = http.client.HTTPConnection('127.0.0.1', self.port, timeout=60)
            c.request('GET', '/v2/queues/%s/messages' % self.queue,
                      headers=self.bus.headers(extra=extra))
            r = c.getresponse()
            self.sock = c.sock
            if r.status != 200:
                self.error = 'status %s' % r.status
                return
            event = {}
            while True:
                line = r.readline()
                if not line:
                    self.ended = True
                    return
                line = line.decode().rstrip('\n')
                if line == '':
                    if 'event' in event:
                        self.events.append((event['event'], event.get('id'),
                                            event.get('data'), time.time()))
                        if (self.stop_after
                                and len(self.messages()) >= self.stop_after):
                            c.close()
                            return
                    event = {}
                elif line == ': ping':
                    self.pings += 1
                elif not line.startswith(':'):
                    k, _, v = line.partition(': ')
                    event[k] = v
        except Exception as e:              # noqa: BLE001
            if not self.ended:
                self.error = str(e)

    def messages(self):
        return [e for e in self.events if e[0] == 'message']

    def abort(self):
        if self.sock:
            self.sock.shutdown(socket.SHUT_RDWR)


def q():
    return 'rt-' + uuid.uuid4().hex[:12]


def wake(bus, o):
    queue = q()
    polls = [LongPoll(bus, 'GET', '/v2/queues/%s/messages?wait=10&echo=true'
                      % queue) for _ in range(16)]
    for p in polls:
        p.start()
    check(bus.wait_for('long_poll', 16), 'the status shows 16 long-polls')
    workers = [w for w in bus.status()['workers']
               if w['waiting']['long_poll'] > 0]
    check(len(workers) >= 2, 'the long-polls wait in both workers',
          '%d workers' % len(workers))
    ids = bus.post(queue, [{'wake': 1}])
    posted = time.time()
    for p in polls:
        p.join(5)
    lat = sorted((p.at - posted) * 1000 for p in polls if p.at)
    print('wake: 16 long-polls in %d workers, woken %.1f ms (median) %.1f ms '
          '(max) after the 201' % (len(workers), lat[len(lat) // 2]
                                   if lat else -1, lat[-1] if lat else -1))
    for p in polls:
        check(p.status == 200 and p.result['messages'][0]['id'] == ids[0],
              'every long-poll got the post',
              'a long-poll got %s %s' % (p.status, p.result))
    check(lat and lat[-1] < 1000, 'all woken within a second')
    check(bus.wait_for('all', 0), 'no waiter is left')

    # back for more, after the marker the workers know is the last: they
    # wait without a find each (a poll may find once per worker)
    time.sleep(0.3)
    before = bus.status()['total']['store_commands']
    marker = polls[0].result['links'][0]['href'].rsplit('marker=', 1)[1]
    polls = [LongPoll(bus, 'GET', '/v2/queues/%s/messages?wait=10&echo=true'
                      '&marker=%s' % (queue, marker)) for _ in range(16)]
    for p in polls:
        p.start()
    check(bus.wait_for('long_poll', 16), 'the status shows 16 long-polls')
    time.sleep(0.3)
    finds = bus.status()['total']['store_commands'] - before
    ids = bus.post(queue, [{'wake': 2}])
    for p in polls:
        p.join(5)
    print('wake: 16 long-polls after marker %s waited after %d store '
          'commands' % (marker, finds))
    check(finds <= 4, 'at most 4 store commands for 16 long-polls after '
          'the last marker', '%d store commands' % finds)
    for p in polls:
        check(p.status == 200 and p.result['messages'][0]['id'] == ids[0],
              'every long-poll after the marker got the next post',
              'a long-poll got %s %s' % (p.status, p.result))


def abort(bus, o):
    queue = q()
    polls = [LongPoll(bus, 'GET', '/v2/queues/%s/messages?wait=20' % queue)
             for _ in range(6)]
    streams = [Stream(bus, queue) for _ in range(3)]
    for t in polls + streams:
        t.start()
    check(bus.wait_for('all', 9), 'the status shows 9 waiters')
    before = bus.status()['total']['waiting']
    for t in polls + streams:
        t.abort()
    ok = bus.wait_for('all', 0, 2)
    print('abort: waiting %s, then %s after the clients closed'
          % (before, bus.status()['total']['waiting']))
    check(ok, 'aborted waiters are gone within 2 s')


def stream(bus, o):
    queue = q()
    first = Stream(bus, queue, stop_after=20)
    first.start()
    check(bus.wait_for('stream', 1), 'the stream waits')
    posted = []
    for i in range(20):
        posted += bus.post(queue, [{'n': 2 * i}, {'n': 2 * i + 1}])
        if i == 4:
            time.sleep(0.2)
    first.join(10)
    got = first.messages()
    check(len(got) == 20, 'the first stream read 20 messages',
          '%d' % len(got))
    last = got[-1][1] if got else None
    second = Stream(bus, queue, last_id=last, stop_after=40 - len(got))
    second.start()
    second.join(10)
    events = got + second.events
    msgs = [e for e in events if e[0] == 'message']
    markers = [int(e[1]) for e in msgs]
    ids = [json.loads(e[2])['id'] for e in msgs]
    bodies = [json.loads(e[2])['body']['n'] for e in msgs]
    print('stream: %d + %d events, markers %s..%s, resumed after %s'
          % (len(got), len(second.events), markers[:1], markers[-1:], last))
    check(ids == posted, 'every message once, in posting order')
    check(bodies == list(range(40)), 'bodies in order')
    check(markers == sorted(set(markers)), 'markers increase')
    check(all(e[0] == 'message' for e in events), 'no gap event')
    check(first.error is None and second.error is None, 'no stream error',
          'stream errors: %s %s' % (first.error, second.error))

    # an idle stream gets a comment every msgbus_sse_ping (1s here)
    idle = Stream(bus, q())
    idle.start()
    time.sleep(2.5)
    idle.abort()
    idle.join(5)
    print('stream: an idle stream got %d pings in 2.5 s' % idle.pings)
    check(idle.pings == 2, 'pings every second')


def gap(bus, o):
    queue = q()
    ids = [bus.post(queue, [{'n': i}])[0] for i in range(3)]
    status, _ = bus.request('DELETE', '/v2/queues/%s/messages/%s'
                            % (queue, ids[1]))
    check(status == 204, 'the middle message deleted', 'delete: %s' % status)
    s1 = Stream(bus, queue, last_id=1, stop_after=1)
    s2 = Stream(bus, queue, last_id=2, stop_after=1)
    for s in (s1, s2):
        s.start()
        s.join(10)
    print('gap: from 1: %s; from 2: %s'
          % ([e[:2] for e in s1.events], [e[:2] for e in s2.events]))
    check([e[0] for e in s1.events] == ['gap', 'message'],
          'a gap, then the message, after 1')
    if s1.events and s1.events[0][0] == 'gap':
        g = json.loads(s1.events[0][2])
        check(g == {'last_event_id': 1, 'next': 3},
              'the gap names the resume point, 1, and the next marker, 3',
              'the gap: %s' % g)
    check([e[0] for e in s2.events] == ['message'] and s2.events[0][1] == '3',
          'no gap after 2')


def first(bus, o):
    queue = q()
    ids = bus.post(queue, [{'n': 0}, {'n': 1}])
    msg = (r'id: %%d\nevent: message\ndata: \{"id": "%%s", "href": '
           r'"/v2/queues/%s/messages/%%s", "ttl": 3600, "age": \d+, '
           r'"body": \{"n":%%d\}\}\n\n' % queue)
    for resume, want in ((None, [0, 1]), (1, [1])):
        s = socket.create_connection(('127.0.0.1', bus.port), timeout=10)
        h = ''.join('%s: %s\r\n' % kv for kv in bus.headers(extra={
            'Accept': 'text/event-stream'}).items())
        path = '/v2/queues/%s/messages' % queue
        if resume:
            path += '?last_event_id=%d' % resume
        s.sendall(('GET %s HTTP/1.0\r\nHost: localhost\r\n%s\r\n'
                   % (path, h)).encode())
        data = b''
        end = time.time() + 10
        while data.count(b'event: message') < len(want) \
                and time.time() < end:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        time.sleep(0.3)             # nothing else may follow
        s.setblocking(False)
        try:
            data += s.recv(65536)
        except BlockingIOError:
            pass
        s.close()
        head, _, body = data.decode().partition('\r\n\r\n')
        print('first: after %s: %s' % (resume, body.replace('\n', '|')))
        check(head.startswith('HTTP/1.1 200 OK'), 'the stream answers 200',
              'status: %s' % head[:40])
        for hv in ('Content-Type: text/event-stream',
                   'Cache-Control: no-cache', 'X-Accel-Buffering: no'):
            check(hv in head.split('\r\n'), 'header %s' % hv)
        pat = '^: msgbus stream\n\n' + ''.join(
            msg % (n + 1, ids[n], ids[n], n) for n in want) + '$'
        check(re.match(pat, body) is not None,
              'the stream\'s bytes: a comment, then each message once',
              'stream bytes: %r' % body)

    status, body = bus.request('GET', '/v2/queues/%s/messages' % queue,
                               extra={'Accept': 'text/event-stream',
                                      'Last-Event-ID': 'abc'})
    check(status == 400 and body == {
        'title': 'Invalid API request',
        'description': 'The last event id must be a message marker.'},
        'a bad resume point is refused with 400',
        'a bad resume point: %s %s' % (status, body))


def claim(bus, o):
    queue = q()
    claims = [LongPoll(bus, 'POST', '/v2/queues/%s/claims?wait=3' % queue,
                       {'ttl': 60, 'grace': 60}) for _ in range(2)]
    start = time.time()
    for c in claims:
        c.start()
    check(bus.wait_for('claim', 2), 'the status shows 2 claims waiting')
    ids = bus.post(queue, [{'claim': 1}])
    posted = time.time()
    for c in claims:
        c.join(10)
    won = [c for c in claims if c.status == 201]
    lost = [c for c in claims if c.status == 204]
    print('claim: %s, %s'
          % (['%s after %.0f ms' % (c.status, (c.at - posted) * 1000)
              for c in claims], 'waited %.1f s' % (time.time() - start)))
    check(len(won) == 1 and len(lost) == 1, 'one 201 and one 204')
    if won:
        check([m['id'] for m in won[0].result['messages']] == ids,
              'the claim has the message')
        check(won[0].at - posted < 1, 'claimed within a second')
    if lost:
        check(lost[0].at - start >= 2.9, 'the other waited its 3 s')

    # the claimed message is no long-poll's (include_claimed is false),
    # though the zone had it unclaimed when it was posted
    lp = LongPoll(bus, 'GET', '/v2/queues/%s/messages?wait=1&echo=true'
                  '&marker=0' % queue)
    lp.start()
    lp.join(5)
    print('claim: a long-poll after marker 0 then: %s %s'
          % (lp.status, lp.result))
    check(lp.status == 200 and lp.result['messages'] == [],
          'no claimed message for a long-poll',
          '%s %s' % (lp.status, lp.result))


def reload(bus, o):
    queue = q()
    pids = [w['pid'] for w in bus.status()['workers']]
    polls = [LongPoll(bus, 'GET', '/v2/queues/%s/messages?wait=20&marker=7'
                      % queue) for _ in range(6)]
    claims = [LongPoll(bus, 'POST', '/v2/queues/%s/claims?wait=20' % queue,
                       {'ttl': 60}) for _ in range(2)]
    streams = [Stream(bus, queue) for _ in range(3)]
    for t in polls + claims + streams:
        t.start()
    check(bus.wait_for('all', 11), 'the status shows 11 waiters')
    with open(o.pid_file) as f:
        master = int(f.read())
    hup = time.time()
    os.kill(master, signal.SIGHUP)
    for t in polls + claims + streams:
        t.join(10)
    took = max([t.at for t in polls + claims] + [time.time()]) - hup
    for p in polls:
        check(p.status == 200 and p.result['messages'] == []
              and p.result['links'][0]['href'].endswith('marker=7'),
              'every long-poll answered 200 with no message, at its marker',
              'a long-poll got %s %s' % (p.status, p.result))
    for c in claims:
        check(c.status == 204, 'every claim answered 204',
              'a claim got %s' % c.status)
    for s in streams:
        check(s.ended and s.error is None, 'every stream ended, no error',
              'a stream ended: %s %s' % (s.ended, s.error))
    gone = time.time() + 10
    left = pids
    while left and time.time() < gone:
        left = [p for p in pids if alive(p)]
        time.sleep(0.05)
    print('reload: 11 waiters answered %.2f s after the HUP; old workers '
          '%s exited after %.2f s' % (took, pids, time.time() - hup))
    check(took < 3, 'answered within 3 s')
    check(not left, 'the old workers exited',
          'old workers still running: %s' % left)
    status, _ = bus.request('GET', '/v2/ping')
    check(status == 204, 'the new workers answer',
          'the new workers answer: %s' % status)


def nodes(bus, o):
    d = tempfile.mkdtemp(prefix='msgbus-node2-')
    port = free_port()
    os.makedirs(d + '/logs')
    with open(d + '/nginx.conf', 'w') as f:
        f.write('''load_module %s;
worker_processes 1;
error_log %s/logs/error.log info;
pid %s/logs/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %s;
    msgbus_mongodb "%s";
    msgbus_poll_interval 500ms;
    server {
        listen 127.0.0.1:%d;
        location / { msgbus; }
        location = /msgbus_status { msgbus_status; }
    }
}
''' % (o.module, d, d, d, o.mongodb, port))
    subprocess.check_call([o.binary, '-p', d, '-c', d + '/nginx.conf'])
    try:
        node2 = Bus(port, bus.project)
        queue = q()
        lats = []
        for i in range(3):
            marker = '&marker=%d' % i if i else ''
            p = LongPoll(node2, 'GET', '/v2/queues/%s/messages?wait=10%s'
                         % (queue, marker))
            p.start()
            check(node2.wait_for('long_poll', 1), 'node 2 has the long-poll')
            time.sleep(0.1 + 0.2 * i)
            bus.post(queue, [{'node': i}])
            posted = time.time()
            p.join(5)
            lats.append((p.at - posted) * 1000 if p.at else None)
            check(p.status == 200 and p.result['messages'][0]['body']
                  == {'node': i}, 'node 2\'s long-poll got the post',
                  'node 2 got %s %s' % (p.status, p.result))
        print('nodes: a post on node 1 reached node 2\'s long-poll after '
              '%s ms (poll interval 500 ms)'
              % ', '.join('%.0f' % x for x in lats if x is not None))
        check(all(x is not None and x <= 550 for x in lats),
              'woken within 550 ms')
    finally:
        subprocess.call([o.binary, '-p', d, '-c', d + '/nginx.conf',
                         '-s', 'stop'])


def joiners(bus, o):
    """Readers that come while the watch's find is in flight (a poll every
    20 ms, posts all along), asking for older messages than the others:
    each gets its own page and resume, from where it asked."""
    queue = q()
    bus.post(queue, [{'n': 0}, {'n': 1}, {'n': 2}])
    tails = [Stream(bus, queue) for _ in range(4)]
    for t in tails:
        t.start()
    check(bus.wait_for('stream', 4), 'the status shows 4 streams')

    done = threading.Event()

    def poster():
        while not done.is_set():
            bus.post(queue, [{'n': 'later'}])

    posters = [threading.Thread(target=poster, daemon=True) for _ in range(2)]
    for t in posters:
        t.start()
    polls, streams = [], []
    for i in range(120):
        p = LongPoll(bus, 'GET', '/v2/queues/%s/messages?wait=5&echo=true'
                     '&limit=1' % queue)
        s = Stream(bus, queue, last_id=1, stop_after=1)
        p.start()
        s.start()
        polls.append(p)
        streams.append(s)
        time.sleep(0.02)
    for t in polls + streams:
        t.join(10)
    done.set()
    for t in posters:
        t.join(10)
    for t in tails:
        t.abort()
    firsts = [p.result['messages'][0]['body']['n'] if p.status == 200
              and p.result['messages'] else p.status for p in polls]
    resumed = [(s.events[0][0], s.events[0][1]) if s.events else s.error
               for s in streams]
    wrong = [f for f in firsts if f != 0]
    gaps = [e for e in resumed if e != ('message', '2')]
    print('joiners: 120 long-polls from the start, %d wrong (%s); 120 '
          'streams from marker 1, %d wrong (%s)'
          % (len(wrong), wrong[:5], len(gaps), gaps[:5]))
    check(not wrong, 'every long-poll got the first message')
    check(not gaps, 'every stream resumed at marker 2, without a gap')


def claimers(bus, o):
    """Many claims wait, posts come: a claimer tries again for each post
    (and one more for each win), not every claimer for every post."""
    queue = q()
    claims = [LongPoll(bus, 'POST', '/v2/queues/%s/claims?wait=5&limit=1'
                       % queue, {'ttl': 60, 'grace': 60}) for _ in range(8)]
    start = time.time()
    for c in claims:
        c.start()
    check(bus.wait_for('claim', 8), 'the status shows 8 claims waiting')
    workers = [w for w in bus.status()['workers'] if w['waiting']['claim']]
    time.sleep(1.2)                 # the figures are a tick old at most
    before = bus.status()['total']['retries']
    ids = bus.post(queue, [{'n': 1}])
    time.sleep(1.2)
    one = bus.status()['total']['retries'] - before
    won = [c for c in claims if c.status == 201]
    ids += bus.post(queue, [{'n': 2}, {'n': 3}, {'n': 4}])
    time.sleep(1)
    won3 = [c for c in claims if c.status == 201]
    for c in claims:
        c.join(10)
    lost = [c for c in claims if c.status == 204]
    got = sorted(m['id'] for c in claims if c.status == 201
                 for m in c.result['messages'])
    print('claimers: 8 waiting in %d workers; one post: %d claimed after %d '
          'attempts again; three more messages: %d claimed within a second; '
          '%d got 204 after %.1f s' % (len(workers), len(won), one,
                                       len(won3) - len(won), len(lost),
                                       time.time() - start))
    check(len(won) == 1, 'one claim won the first message', '%d' % len(won))
    # one attempt in each worker that has claimers, one after the win;
    # every claimer trying would be 8
    check(one <= len(workers) + 1, 'for one post, one claim a worker (and '
          'one more after the win) tried again',
          '%d claims tried again for one post' % one)
    check(len(won3) == 4, 'the next three messages claimed within a second')
    check(got == sorted(ids), 'each message claimed once',
          'claimed: %s' % got)
    check(len(lost) == 4, 'the others got 204')


def large(bus, o):
    """A message too large for the zone's recent ones (4 KB): the zone
    cannot serve it, nor what follows it, and the store does, at once
    (msgbus_poll_interval 0 here: no poll makes up for a miss)."""
    queue = q()
    s = Stream(bus, queue, stop_after=5)
    s.start()
    check(bus.wait_for('stream', 1), 'the stream waits')
    big = 'x' * 5000
    posted = time.time()
    bus.post(queue, [{'n': 0}, {'n': 1, 'big': big}, {'n': 2}])
    bus.post(queue, [{'n': 3}, {'n': 4, 'big': big}])
    s.join(3)
    got = [json.loads(e[2])['body']['n'] for e in s.messages()]
    print('large: the stream got %s in %.0f ms' % (
        got, ((s.events[-1][3] if s.events else time.time()) - posted)
        * 1000))
    check(got == [0, 1, 2, 3, 4], 'every message, in order',
          'got %s' % got)
    check(s.events and s.events[-1][3] - posted < 1,
          'all of them within a second')


SCENARIOS = {'first': first, 'wake': wake, 'abort': abort, 'stream': stream, 'gap': gap,
             'claim': claim, 'reload': reload, 'nodes': nodes,
             'joiners': joiners, 'claimers': claimers, 'large': large}


def main():
    a = argparse.ArgumentParser()
    a.add_argument('--port', type=int, required=True)
    a.add_argument('--project', required=True)
    a.add_argument('--pid-file')
    a.add_argument('--mongodb')
    a.add_argument('--binary')
    a.add_argument('--module')
    a.add_argument('scenario', choices=sorted(SCENARIOS))
    o = a.parse_args()

    run_scenario(o.port, lambda: SCENARIOS[o.scenario](Bus(o.port, o.project), o),
                 VERDICT)


if __name__ == '__main__':
    main()
