#!/usr/bin/python3
# The pages and events a post's fan-out gives its waiters, against a
# running msgbus with one worker (t/042-fanout.t): each message is
# rendered once per batch and shared, and what each waiter gets must
# still be its own.
#
#   fanout.py --port PORT --slow-port PORT --project P SCENARIO
#
# pages     long-polls with different arguments, clients and locations
#           wait on one queue, and streams with them; one post of three
#           messages (one delayed) wakes them.  Each long-poll's answer
#           is, byte for byte but the ages, what a listing with its
#           arguments answers right after; those that asked the same got
#           the same bytes; each stream's events carry the listing's
#           items.  A long-poll that may see none of the three (its
#           client's own) waits on and gets the next post alone.
# claimed   a claimed message in a batch: a long-poll that does not
#           include claimed ones skips it, a stream shows it with its
#           claim's href, as the listings do.
# slow      clients that do not read while large events and a large page
#           are written to them (on --slow-port, a server that sends 4 KB
#           at a time): once they read, every byte is right (the batch's
#           bytes stay while their output needs them).
# many      40 long-polls and 40 streams alike: one post, the same page
#           for all the long-polls, the same event for all the streams.
# relaxed   clients whose ids are not UUIDs (msgbus_client_id relaxed):
#           a long-poll does not get its own client's messages, another's
#           does.
#
# Prints what it measured, its assertions ("ok - WHAT" or "not ok - WHAT"
# and the reasons: t/util/verdict.py), then OK or FAILED; exit status 0 or
# 1.

import argparse
import http.client
import json
import os
import re
import socket
import sys
import threading
import time
import uuid

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from verdict import Verdict, run_scenario             # noqa: E402

VERDICT = Verdict()
POSTER = '8d6e5a54-0000-4000-a000-000000000001'
OTHER = '8d6e5a54-0000-4000-a000-000000000002'
READER = '8d6e5a54-0000-4000-a000-000000000003'


def check(cond, what, reason=None):
    return VERDICT.check(cond, what, reason)


def ageless(text):
    """the ages are the clock's: a second may pass between two answers"""
    return re.sub(r'"age": \d+', '"age": A', text)


class Bus:
    def __init__(self, port, project):
        self.port = port
        self.project = project

    def headers(self, client, extra=None):
        h = {'Client-ID': client, 'X-Project-ID': self.project,
             'Content-Type': 'application/json'}
        h.update(extra or {})
        return h

    def request(self, method, path, body=None, client=READER, extra=None):
        c = http.client.HTTPConnection('127.0.0.1', self.port, timeout=30)
        try:
            c.request(method, path,
                      json.dumps(body) if body is not None else None,
                      self.headers(client, extra))
            r = c.getresponse()
            return r.status, r.read().decode()
        finally:
            c.close()

    def post(self, queue, messages, client=POSTER):
        status, body = self.request('POST', '/v2/queues/%s/messages' % queue,
                                    {'messages': messages}, client)
        if status != 201:
            raise SystemExit('post: %s %s' % (status, body))
        return [r.rsplit('/', 1)[1] for r in json.loads(body)['resources']]

    def waiting(self):
        c = http.client.HTTPConnection('127.0.0.1', self.port, timeout=10)
        try:
            c.request('GET', '/msgbus_status')
            return json.loads(c.getresponse().read())['total']['waiting']
        finally:
            c.close()

    def wait_for(self, long_poll, stream, seconds=10):
        end = time.time() + seconds
        while time.time() < end:
            w = self.waiting()
            if w['long_poll'] == long_poll and w['stream'] == stream:
                return True
            time.sleep(0.05)
        return False


class Raw(threading.Thread):
    """A request on a socket of its own: the answer's bytes, as sent.
    rcvbuf: a small receive buffer; hold: seconds before it reads."""

    def __init__(self, bus, path, client=READER, extra=None, rcvbuf=None,
                 hold=0, until=None, port=None):
        super().__init__(daemon=True)
        self.bus, self.path, self.client = bus, path, client
        self.extra, self.rcvbuf, self.hold = extra or {}, rcvbuf, hold
        self.until = until          # a stream: read until this is in it
        self.port = port or bus.port
        self.data = b''
        self.error = None

    def run(self):
        try:
            s = socket.socket()
            if self.rcvbuf:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            s.settimeout(30)
            s.connect(('127.0.0.1', self.port))
            h = ''.join('%s: %s\r\n' % kv for kv in
                        self.bus.headers(self.client, self.extra).items())
            s.sendall(('GET %s HTTP/1.1\r\nHost: localhost\r\n'
                       'Connection: close\r\n%s\r\n'
                       % (self.path, h)).encode())
            if self.hold:
                time.sleep(self.hold)
            while not self.done():
                chunk = s.recv(65536)
                if not chunk:
                    break
                self.data += chunk
            s.close()
        except Exception as e:              # noqa: BLE001
            print('%s: %s' % (self.path, e))
            self.error = str(e)

    def done(self):
        """a stream: the event it reads until has all come"""
        if not self.until:
            return False
        body = self.body()
        at = body.find(self.until)
        return at >= 0 and body.find('\n\n', at) >= 0

    def status(self):
        m = re.match(rb'HTTP/1\.1 (\d+)', self.data)
        return int(m.group(1)) if m else None

    def body(self):
        head, _, body = self.data.partition(b'\r\n\r\n')
        if b'transfer-encoding: chunked' not in head.lower():
            return body.decode(errors='replace')
        out = b''
        while body:
            size, _, rest = body.partition(b'\r\n')
            if not rest:
                break
            n = int(size, 16)
            out += rest[:n]
            body = rest[n + 2:]
        return out.decode(errors='replace')

    def events(self):
        """a stream's events: (event, id, data)"""
        out = []
        for block in self.body().split('\n\n'):
            e = {}
            for line in block.split('\n'):
                if line and not line.startswith(':'):
                    k, _, v = line.partition(': ')
                    e[k] = v
            if 'event' in e:
                out.append((e['event'], e.get('id'), e.get('data')))
        return out


def listed(data, listing):
    """the event's data is one of the listing's items, byte for byte"""
    return data is not None and ageless(data) in ageless(listing)


def q():
    return 'fan-' + uuid.uuid4().hex[:12]


def pages(bus, o):
    queue = q()
    bus.post(queue, [{'body': 'one'}])          # marker 1
    base = '/v2/queues/%s/messages' % queue
    polls = [
        ('same', base + '?wait=20&echo=true&limit=20&marker=1', READER),
        ('same', base + '?wait=20&echo=true&limit=20&marker=1', READER),
        ('same', base + '?wait=20&echo=true&limit=20&marker=1', OTHER),
        ('no echo', base + '?wait=20&marker=1', OTHER),
        ('limit 1', base + '?wait=20&echo=true&limit=1&marker=1', READER),
        ('later marker', base + '?echo=true&wait=20&marker=2', READER),
        ('delayed, order', base + '?include_delayed=true&wait=20&echo=true'
         '&limit=2&marker=1&include_claimed=false', READER),
        ('other location', '/bus' + base + '?wait=20&echo=true&marker=1',
         READER),
    ]
    own = Raw(bus, base + '?wait=20&marker=1', POSTER)
    lps = [Raw(bus, path, client) for _, path, client in polls]
    sse = {'Accept': 'text/event-stream', 'Last-Event-ID': '1'}
    streams = [Raw(bus, base + '?echo=true', READER, sse, until='id: 4\n'),
               Raw(bus, base, POSTER, sse, until='id: 5\n'),
               Raw(bus, '/bus' + base + '?echo=true', READER, sse,
                   until='id: 4\n')]
    for t in lps + [own] + streams:
        t.start()
    check(bus.wait_for(len(lps) + 1, len(streams)),
          'every long-poll and stream waits', 'waiting: %s' % bus.waiting())

    # one post, three messages (the second delayed), all the poster's
    bus.post(queue, [{'body': 'two'}, {'body': 'three', 'delay': 60},
                     {'body': 'four'}])
    for t in lps:
        t.join(10)
    answered = {}
    for (name, path, client), t in zip(polls, lps):
        listing = path.replace('wait=20&', '')
        status, want = bus.request('GET', listing, client=client)
        got = t.body()
        print('pages: %s (%s): %s' % (path, name, got))
        check(t.status() == 200 and status == 200
              and ageless(got) == ageless(want),
              'each long-poll got the listing of its arguments',
              '%s: %s %r, the listing %s %r'
              % (path, t.status(), got, status, want))
        answered.setdefault(name, set()).add(got)
    check(len(answered['same']) == 1, 'those that asked the same got '
          'the same bytes', 'pages: %s' % answered['same'])
    check(own.is_alive() and own.data == b'', 'the poster\'s own long-poll '
          'waits on', 'it got %r' % own.data)

    # a message from another client: the poster's long-poll gets it alone
    bus.post(queue, [{'body': 'five'}], client=OTHER)
    own.join(10)
    status, want = bus.request('GET', base + '?marker=1', client=POSTER)
    check(own.status() == 200 and ageless(own.body()) == ageless(want)
          and len(json.loads(own.body())['messages']) == 1,
          'then the next post alone, as its listing',
          '%s %r, the listing %r' % (own.status(), own.body(), want))

    for s in streams:
        s.join(10)
    everything = '?echo=true&include_claimed=true&include_delayed=true' \
                 '&marker=1'
    for s, prefix, client, want_ids in (
            (streams[0], '', READER, ['2', '3', '4']),
            (streams[1], '', POSTER, ['5']),
            (streams[2], '/bus', READER, ['2', '3', '4'])):
        status, listing = bus.request('GET', prefix + base + everything,
                                      client=client)
        got = s.events()[:len(want_ids)]
        print('pages: stream %s%s: %s' % (prefix, client[-1], got))
        check([e[1] for e in got] == want_ids
              and all(e[0] == 'message' for e in got),
              'each stream got the events it may see',
              '%s: %s' % (s.path, [e[:2] for e in got]))
        check(status == 200 and all(listed(e[2], listing) for e in got),
              'each event\'s data is the listing\'s item',
              '%s: %s, the listing %s' % (s.path, got, listing))


def claimed(bus, o):
    queue = q()
    base = '/v2/queues/%s/messages' % queue
    bus.post(queue, [{'body': 'taken'}])                    # marker 1
    status, body = bus.request('POST', '/v2/queues/%s/claims?limit=1'
                               % queue, {'ttl': 60, 'grace': 60})
    check(status == 201, 'the first message claimed', 'claim: %s' % status)
    lp = Raw(bus, base + '?wait=20&echo=true&marker=0')
    stream = Raw(bus, base + '?echo=true',
                 extra={'Accept': 'text/event-stream', 'Last-Event-ID': '0'},
                 until='id: 2\n')
    lp.start()
    stream.start()
    check(bus.wait_for(1, 1), 'a long-poll and a stream wait',
          'waiting: %s' % bus.waiting())
    bus.post(queue, [{'body': 'free'}])                     # marker 2
    lp.join(10)
    stream.join(10)
    status, want = bus.request('GET', base + '?echo=true&marker=0')
    print('claimed: the long-poll: %s' % lp.body())
    check(ageless(lp.body()) == ageless(want)
          and '"taken"' not in lp.body(),
          'the long-poll skips the claimed message, as its listing',
          '%r, the listing %r' % (lp.body(), want))
    status, listing = bus.request('GET', base + '?echo=true'
                                  '&include_claimed=true&marker=0')
    got = stream.events()
    print('claimed: the stream: %s' % got)
    check([e[1] for e in got] == ['1', '2']
          and all(listed(e[2], listing) for e in got),
          'the stream shows it with its claim\'s href, as the listing',
          '%s, the listing %s' % (got, listing))
    check('?claim_id=' in (got[0][2] or '') if got else False,
          'the claimed message\'s href names the claim')


def slow(bus, o):
    queue = q()
    base = '/v2/queues/%s/messages' % queue
    bus.post(queue, [{'body': 'start'}])                   # marker 1
    fill = 'x' * 3000
    sse = {'Accept': 'text/event-stream', 'Last-Event-ID': '1'}
    last = 'id: %d\n' % (1 + 5 * 20)
    slow_stream = Raw(bus, base + '?echo=true', extra=sse, rcvbuf=4096,
                      hold=3, until=last, port=o.slow_port)
    fast_stream = Raw(bus, base + '?echo=true', extra=sse, until=last)
    slow_poll = Raw(bus, base + '?wait=20&echo=true&limit=20&marker=1',
                    rcvbuf=4096, hold=3, port=o.slow_port)
    for t in (slow_stream, fast_stream, slow_poll):
        t.start()
    check(bus.wait_for(1, 2), 'two streams and a long-poll wait',
          'waiting: %s' % bus.waiting())
    for n in range(5):
        bus.post(queue, [{'body': {'n': 20 * n + i, 'fill': fill}}
                         for i in range(20)])
    for t in (fast_stream, slow_poll, slow_stream):
        t.join(20)
    want = list(range(100))
    for name, t in (('fast stream', fast_stream),
                    ('slow stream', slow_stream)):
        got = t.events()
        bodies = []
        for e in got:
            try:
                bodies.append(json.loads(e[2])['body'])
            except (TypeError, ValueError):
                bodies.append(None)
        print('slow: the %s read %d bytes, %d events'
              % (name, len(t.data), len(got)))
        check([b['n'] if b else None for b in bodies] == want
              and all(b and b['fill'] == fill for b in bodies)
              and [e[1] for e in got] == [str(i + 2) for i in want],
              'the %s got every event intact, in order' % name,
              '%s: %d events, %s' % (name, len(got), [
                  (e[1], b['n'] if b else (e[2] or '')[:80])
                  for e, b in zip(got, bodies)
                  if not b or b['fill'] != fill or e[1] != str(b['n'] + 2)
              ][:5]))
    body = slow_poll.body()
    try:
        page = json.loads(body)
    except ValueError:
        page = {'messages': []}
    print('slow: the slow long-poll read %d bytes' % len(slow_poll.data))
    check([m['body']['n'] for m in page['messages']] == list(range(20))
          and all(m['body']['fill'] == fill for m in page['messages']),
          'the slow long-poll got its page intact',
          'page: %r' % body[:200])


def many(bus, o):
    queue = q()
    base = '/v2/queues/%s/messages' % queue
    bus.post(queue, [{'body': 'start'}])                   # marker 1
    lps = [Raw(bus, base + '?wait=20&echo=true&marker=1') for _ in range(40)]
    sse = {'Accept': 'text/event-stream', 'Last-Event-ID': '1'}
    streams = [Raw(bus, base + '?echo=true', extra=sse, until='id: 2\n')
               for _ in range(40)]
    for t in lps + streams:
        t.start()
    check(bus.wait_for(40, 40), '40 long-polls and 40 streams wait',
          'waiting: %s' % bus.waiting())
    bus.post(queue, [{'body': 'shared'}])
    for t in lps + streams:
        t.join(10)
    pages = set(t.body() for t in lps)
    events = set(repr(t.events()) for t in streams)
    print('many: %d pages, %d kinds of events' % (len(pages), len(events)))
    check(len(pages) == 1 and all(t.status() == 200 for t in lps)
          and '"shared"' in pages.pop(), 'every long-poll got the same page')
    check(len(events) == 1 and '"shared"' in events.pop(),
          'every stream got the same event', 'events: %s' % events)


def relaxed(bus, o):
    queue = q()
    base = '/relaxed/v2/queues/%s/messages' % queue
    one, two = 'text-client-one', 'text-client-two'
    status, _ = bus.request('POST', base, {'messages': [{'body': 'one'}]},
                            client=one)                     # marker 1
    check(status == 201, 'a client that is not a UUID posts',
          'post: %s' % status)
    own = [Raw(bus, base + '?wait=20&marker=1', one) for _ in range(2)]
    other = Raw(bus, base + '?wait=20&marker=1', two)
    for t in own + [other]:
        t.start()
    check(bus.wait_for(3, 0), 'three long-polls wait',
          'waiting: %s' % bus.waiting())
    bus.request('POST', base, {'messages': [{'body': 'two'}]}, client=one)
    other.join(10)
    status, want = bus.request('GET', base + '?marker=1', client=two)
    check(ageless(other.body()) == ageless(want) and '"two"' in want,
          'the other client got the message, as its listing',
          '%r, the listing %r' % (other.body(), want))
    check(all(t.is_alive() and t.data == b'' for t in own),
          'the poster\'s own long-polls wait on')
    bus.request('POST', base, {'messages': [{'body': 'three'}]}, client=two)
    for t in own:
        t.join(10)
    status, want = bus.request('GET', base + '?marker=1', client=one)
    print('relaxed: %s' % [t.body() for t in own])
    check(all(ageless(t.body()) == ageless(want) for t in own)
          and '"three"' in want and '"two"' not in want,
          'then the other\'s message alone, as their listing',
          '%r, the listing %r' % ([t.body() for t in own], want))


SCENARIOS = {'pages': pages, 'claimed': claimed, 'slow': slow, 'many': many,
             'relaxed': relaxed}


def main():
    a = argparse.ArgumentParser()
    a.add_argument('--port', type=int, required=True)
    a.add_argument('--project', required=True)
    a.add_argument('--slow-port', type=int)
    a.add_argument('scenario', choices=sorted(SCENARIOS))
    o = a.parse_args()

    run_scenario(o.port, lambda: SCENARIOS[o.scenario](Bus(o.port, o.project), o),
                 VERDICT)


if __name__ == '__main__':
    main()
