#!/usr/bin/python3
# Webhook delivery against a running msgbus (t/017-webhooks.t).  The
# receivers are msgbus's own queues on the same nginx: a subscription's
# post_data wraps the notification in a message post and its post_headers
# carry the project and Client-ID, so each notification a subscriber was
# sent becomes a message of a "sink" queue, in the order it arrived.
#
#   webhooks.py --port PORT --project P [--pid-file F] [--html DIR]
#               [--tls-port N] SCENARIO
#
# delivery   30 messages (singles and batches) to a queue with a
#            subscriber: the sink gets each once, in posting order, as
#            Zaqar's notification (body, ttl, queue_name, Message_Type)
#            with the message's id; the subscription's own queue keeps
#            its messages.
# flaky      the subscriber answers 503 (html/down exists) for 3 s, then
#            recovers: the 2 messages posted meanwhile arrive, in order,
#            on the subscription's _retry_policy.
# hang       a subscriber that accepts and never answers: each POST ends
#            at msgbus_webhook_timeout, one at a time, and the message is
#            given up after the policy's 3 attempts; the next comes after
#            it.  A sibling subscriber of the same queue gets everything
#            meanwhile, and the posts are answered at once.
# thousand   1000 subscribers of one queue: one post, 1000 deliveries.
# reload     messages posted before and right after a HUP all arrive.
# confirm    msgbus_subscription_confirmation on: the subscriber gets
#            Zaqar's confirmation (signed URL of the PUT .../confirm); a
#            message posted before it confirms is not sent, one after is.
# https      a subscriber over TLS (the test's CA trusted) gets its
#            message; one whose certificate is for another name does not.
# resolver   a subscriber's host name is looked up with the http block's
#            resolver (t/util/dns.py); a name it does not know is not sent.
#
# Prints what it measured, its assertions ("ok - WHAT" or "not ok - WHAT"
# and the reasons: t/util/verdict.py), then OK or FAILED; exit status 0 or
# 1.

import argparse
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from verdict import Verdict, run_scenario  # noqa: E402

VERDICT = Verdict()
ARGS = None
CLIENT = '3381af92-2b9e-11e3-b191-71861300734c'


def check(cond, what, reason=None):
    return VERDICT.check(cond, what, reason)


def api(method, path, body=None, headers=None, timeout=30):
    h = {'Client-ID': CLIENT, 'X-Project-ID': ARGS.project,
         'Content-Type': 'application/json'}
    h.update(headers or {})
    c = http.client.HTTPConnection('127.0.0.1', ARGS.port, timeout=timeout)
    try:
        c.request(method, path,
                  json.dumps(body) if body is not None else None, h)
        r = c.getresponse()
        data = r.read()
    finally:
        c.close()
    try:
        doc = json.loads(data) if data else None
    except ValueError:
        doc = data
    return r.status, doc


def subscribe(queue, subscriber, sink=None, options=None):
    """a subscription whose notifications become messages of sink"""
    o = dict(options or {})
    if sink:
        o['post_data'] = '{"messages": [{"ttl": 3600, ' \
                         '"body": "$zaqar_message$"}]}'
        o['post_headers'] = {'X-Project-ID': ARGS.project,
                             'Client-ID': CLIENT}
    st, doc = api('POST', '/v2/queues/%s/subscriptions' % queue,
                  {'subscriber': subscriber, 'ttl': 3600, 'options': o})
    check(st == 201, 'subscriptions are created',
          'POST subscription %s: %s %s' % (subscriber, st, doc))
    return doc.get('subscription_id') if isinstance(doc, dict) else None


def sink_url(sink, extra=''):
    return 'http://127.0.0.1:%d/v2/queues/%s/messages%s' % (ARGS.port, sink,
                                                           extra)


def post(queue, bodies):
    """posts the bodies in one request; their ids; how long the 201 took"""
    t = time.time()
    st, doc = api('POST', '/v2/queues/%s/messages' % queue,
                  {'messages': [{'ttl': 3600, 'body': b} for b in bodies]})
    took = time.time() - t
    check(st == 201, 'posts are answered 201', 'post: %s %s' % (st, doc))
    ids = [h.rsplit('/', 1)[1] for h in (doc or {}).get('resources', [])]
    return ids, took


def sink(queue):
    """the notifications the sink queue got, in marker order"""
    out, marker = [], None
    while True:
        path = '/v2/queues/%s/messages?echo=true&limit=20' % queue
        if marker:
            path += '&marker=' + marker
        st, doc = api('GET', path)
        if st != 200 or not doc or not doc.get('messages'):
            return out
        out.extend(m['body'] for m in doc['messages'])
        nxt = [l['href'] for l in doc.get('links', []) if l['rel'] == 'next']
        if not nxt or 'marker=' not in nxt[0]:
            return out
        marker = nxt[0].split('marker=')[1].split('&')[0]


def wait_sink(queue, n, deadline):
    end = time.time() + deadline
    got = sink(queue)
    while len(got) < n and time.time() < end:
        time.sleep(0.2)
        got = sink(queue)
    return got


def bodies_of(got):
    return [g.get('body') if isinstance(g, dict) else g for g in got]


def scenario_delivery():
    subscribe('wq', sink_url('wsink'), sink=True)
    want, ids, slow = [], [], 0
    for i in range(30):
        n = 1 if i % 3 else 3
        b = ['m%02d-%d' % (i, j) for j in range(n)]
        got_ids, took = post('wq', b)
        want.extend(b)
        ids.extend(got_ids)
        slow = max(slow, took)
        if len(want) >= 30:
            break
    t = time.time()
    got = wait_sink('wsink', len(want), 20)
    print('delivered %d of %d in %.2f s; slowest post %.3f s'
          % (len(got), len(want), time.time() - t, slow))
    check(bodies_of(got) == want,
          'each message is delivered once, in posting order',
          'got %s' % bodies_of(got))
    shape = all(isinstance(g, dict)
                and g.get('queue_name') == 'wq'
                and g.get('Message_Type') == 'Notification'
                and g.get('ttl') == 3600 for g in got)
    check(shape and [g.get('id') for g in got] == ids,
          "a notification is Zaqar's (body, ttl, queue_name, Message_Type) "
          "with the message's id", 'got %s' % got[:3])
    st, doc = api('GET', '/v2/queues/wq/stats')
    check(st == 200 and doc['messages']['total'] == len(want),
          "the queue keeps its messages", 'stats %s %s' % (st, doc))


def scenario_flaky():
    down = os.path.join(ARGS.html, 'down')
    open(down, 'w').close()
    policy = {'_retry_policy': {'retries_with_no_delay': 0,
                                'minimum_delay_retries': 10,
                                'minimum_delay': 1, 'maximum_delay': 11,
                                'maximum_delay_retries': 0}}
    subscribe('fq', 'http://127.0.0.1:%d/flaky' % ARGS.port, sink=True,
              options=policy)
    time.sleep(1.5)
    post('fq', ['f1'])
    post('fq', ['f2'])
    time.sleep(3)
    early = sink('fsink')
    check(early == [], 'nothing arrives while the subscriber fails',
          'got %s' % early)
    os.unlink(down)
    t = time.time()
    got = wait_sink('fsink', 2, 10)
    print('recovered: delivered %d in %.2f s' % (len(got), time.time() - t))
    check(bodies_of(got) == ['f1', 'f2'],
          'after it recovers, the messages arrive in order',
          'got %s' % bodies_of(got))


class Hanging(threading.Thread):
    """accepts, reads, never answers; records each connection's life"""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []        # [opened, closed or None, bytes]
        self.lock = threading.Lock()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            rec = [time.time(), None, b'']
            with self.lock:
                self.conns.append(rec)
            threading.Thread(target=self.serve, args=(c, rec),
                             daemon=True).start()

    def serve(self, c, rec):
        while True:
            try:
                d = c.recv(65536)
            except OSError:
                d = b''
            if not d:
                rec[1] = time.time()
                c.close()
                return
            rec[2] += d

    def overlapping(self):
        with self.lock:
            spans = [(o, c or time.time()) for o, c, _ in self.conns]
        spans.sort()
        return any(spans[i + 1][0] < spans[i][1] - 0.05
                   for i in range(len(spans) - 1))


def scenario_hang():
    h = Hanging()
    h.start()
    policy = {'_retry_policy': {'retries_with_no_delay': 0,
                                'minimum_delay_retries': 0,
                                'minimum_delay': 0, 'maximum_delay': 10,
                                'maximum_delay_retries': 0}}
    subscribe('hq', 'http://127.0.0.1:%d/hook' % h.port, options=policy)
    subscribe('hq', sink_url('hsink'), sink=True)
    time.sleep(1.5)
    slow = 0
    for b in ('h1', 'h2'):
        _, took = post('hq', [b])
        slow = max(slow, took)
    check(slow < 0.5, 'a hanging subscriber does not delay the posts',
          'slowest post %.3f s' % slow)
    got = wait_sink('hsink', 2, 5)
    check(bodies_of(got) == ['h1', 'h2'],
          'its sibling subscriber gets every message meanwhile',
          'got %s' % bodies_of(got))
    # 2 messages x 3 attempts (at once, +0 s, +5 s), each ended at 1 s
    end = time.time() + 25
    while time.time() < end:
        with h.lock:
            done = [c for c in h.conns if c[1]]
        if len(done) >= 6:
            break
        time.sleep(0.2)
    time.sleep(2)
    with h.lock:
        conns = list(h.conns)
    lives = [c[1] - c[0] for c in conns if c[1]]
    print('hanging subscriber: %d connections, lives %s'
          % (len(conns), ['%.2f' % x for x in lives]))
    check(len(conns) == 6 and len(lives) == 6,
          'each message is tried 3 times, then given up',
          '%d connections, %d closed' % (len(conns), len(lives)))
    check(lives and max(lives) < 2.0 and min(lives) > 0.8,
          'each attempt ends at msgbus_webhook_timeout',
          'lives %s' % lives)
    check(not h.overlapping(), 'one attempt at a time, in order',
          'overlapping connections')
    order = [c[2].split(b'\r\n\r\n', 1)[-1] for c in conns]
    first = [json.loads(o).get('body') if o else None for o in order]
    check(first == ['h1'] * 3 + ['h2'] * 3,
          'the next message only after the first was given up',
          'bodies in connection order: %s' % first)


def scenario_thousand():
    t = time.time()
    for i in range(1000):
        st, doc = api('POST', '/v2/queues/wide/subscriptions',
                      {'subscriber': sink_url('fan', '?n=%d' % i),
                       'ttl': 3600,
                       'options': {
                           'post_data': '{"messages": [{"ttl": 3600, '
                                        '"body": "$zaqar_message$"}]}',
                           'post_headers': {'X-Project-ID': ARGS.project,
                                            'Client-ID': CLIENT}}})
        if st != 201:
            check(False, 'subscriptions are created', '%s %s' % (st, doc))
            return
    print('1000 subscriptions created in %.1f s' % (time.time() - t))
    time.sleep(1.5)
    post('wide', ['one'])
    t = time.time()
    end = t + 60
    total = 0
    while time.time() < end:
        st, doc = api('GET', '/v2/queues/fan/stats')
        total = doc['messages']['total'] if st == 200 else 0
        if total >= 1000:
            break
        time.sleep(0.25)
    print('1000 deliveries of one message in %.2f s' % (time.time() - t))
    check(total == 1000, 'one post reaches 1000 subscribers, once each',
          '%d delivered' % total)


def scenario_reload():
    subscribe('rq', sink_url('rsink'), sink=True)
    time.sleep(1.5)
    post('rq', ['r%d' % i for i in range(5)])
    got = wait_sink('rsink', 5, 10)
    check(len(got) == 5, 'delivered before the reload',
          'got %s' % bodies_of(got))
    with open(ARGS.pid_file) as f:
        os.kill(int(f.read()), signal.SIGHUP)
    time.sleep(0.3)
    post('rq', ['s%d' % i for i in range(5)])
    t = time.time()
    want = ['r%d' % i for i in range(5)] + ['s%d' % i for i in range(5)]
    end = time.time() + 30
    while time.time() < end:
        got = bodies_of(sink('rsink'))
        if all(w in got for w in want):
            break
        time.sleep(0.3)
    print('after the reload: %d notifications in %.1f s'
          % (len(got), time.time() - t))
    firsts = []
    for g in got:
        if g not in firsts:
            firsts.append(g)
    check(firsts == want,
          'messages posted across a reload all arrive, in order',
          'got %s' % got)


def scenario_confirm():
    sid = subscribe('cq', sink_url('csink'), sink=True)
    got = wait_sink('csink', 1, 10)
    note = got[0] if got and isinstance(got[0], dict) else {}
    check(note.get('Message_Type') == 'SubscriptionConfirmation'
          and note.get('URL-Paths') ==
          '/v2/queues/cq/subscriptions/%s/confirm' % sid
          and note.get('URL-Methods') == 'PUT'
          and note.get('X-Project-ID') == ARGS.project
          and note.get('SubscribeBody') == {'confirmed': True},
          "the subscriber gets Zaqar's confirmation", 'got %s' % got)
    post('cq', ['before'])
    time.sleep(2.5)
    check(len(sink('csink')) == 1,
          'nothing is sent before it confirms', 'got %s' % sink('csink'))
    headers = {k: str(note.get(k, '')) for k in
               ('URL-Signature', 'URL-Expires', 'URL-Methods', 'URL-Paths',
                'X-Project-ID')}
    c = http.client.HTTPConnection('127.0.0.1', ARGS.port, timeout=10)
    c.request('PUT', note.get('URL-Paths', '/'),
              json.dumps({'confirmed': True}),
              dict(headers, **{'Client-ID': CLIENT,
                               'Content-Type': 'application/json'}))
    r = c.getresponse()
    r.read()
    c.close()
    check(r.status == 204, 'the signed confirmation is accepted',
          'PUT confirm: %s' % r.status)
    time.sleep(1)
    post('cq', ['after'])
    got = wait_sink('csink', 2, 10)
    check(bodies_of(got[1:]) == ['after'],
          'once confirmed, the next message is sent (not the one before)',
          'got %s' % got)


def scenario_https():
    url = 'https://%%s:%d/v2/queues/%%s/messages' % ARGS.tls_port
    subscribe('sq', url % ('127.0.0.1', 'ssink'), sink=True)
    subscribe('sq', url % ('localhost', 'xsink'), sink=True)
    time.sleep(1.5)
    post('sq', ['s1'])
    got = wait_sink('ssink', 1, 10)
    check(bodies_of(got) == ['s1'], 'a subscriber over TLS gets it',
          'got %s' % got)
    time.sleep(1)
    check(sink('xsink') == [],
          'not one whose certificate is for another name',
          'got %s' % sink('xsink'))


def scenario_resolver():
    url = 'http://%%s:%d/v2/queues/%%s/messages' % ARGS.port
    subscribe('dq', url % ('hook.test.msgbus', 'dsink'), sink=True)
    subscribe('dq', url % ('nx.test.msgbus', 'nxsink'), sink=True)
    time.sleep(1.5)
    post('dq', ['d1'])
    got = wait_sink('dsink', 1, 10)
    check(bodies_of(got) == ['d1'],
          "a subscriber's host name is looked up with nginx's resolver",
          'got %s' % got)
    check(sink('nxsink') == [], 'not one the name server does not know',
          'got %s' % sink('nxsink'))


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--project', required=True)
    p.add_argument('--pid-file')
    p.add_argument('--html')
    p.add_argument('--tls-port', type=int)
    p.add_argument('scenario')
    ARGS = p.parse_args()
    run_scenario(ARGS.port, globals()['scenario_' + ARGS.scenario], VERDICT)


if __name__ == '__main__':
    main()
