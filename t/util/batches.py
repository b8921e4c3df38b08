#!/usr/bin/env python3
"""Posts that share a batch (t/027-post-batches.t): ROUNDS rounds of
POSTS posts sent at once to one queue, each on its own connection; in
each round every other client closes its connection right after sending
(its post waits in a batch, or is in the insert in flight, when it goes).

Checks (printed as assertions, t/util/verdict.py):
- every post whose client stayed is answered 201, with its message ids;
- reading the queue by marker from the start: every message answered
  201 is there once, with its body; an abandoned post's message is there
  at most once (its client went away: stored or not, never twice);
- markers strictly increase down the pages, and each poster's messages
  are contiguous and in posting order (a batch keeps arrival order);
- a post after the rounds is answered 201 at once (the queue's batches
  are not stuck).
"""
import argparse
import json
import socket
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, __import__('os').path.dirname(__file__))
from verdict import Verdict  # noqa: E402

CLIENT = '3381af92-2b9e-11e3-b191-71861300734c'


def post_bytes(args, body):
    data = json.dumps(body).encode()
    return (('POST /v2/queues/%s/messages HTTP/1.1\r\nHost: localhost\r\n'
             'Client-ID: %s\r\nX-Project-Id: %s\r\n'
             'Content-Type: application/json\r\nContent-Length: %d\r\n'
             'Connection: close\r\n\r\n')
            % (args.queue, CLIENT, args.project, len(data))).encode() + data


def answer(s, timeout):
    s.settimeout(timeout)
    buf = b''
    try:
        while True:
            got = s.recv(65536)
            if not got:
                break
            buf += got
    except OSError:
        pass
    head, _, body = buf.partition(b'\r\n\r\n')
    status = int(head.split(b' ')[1]) if head.startswith(b'HTTP/') else 0
    return status, body


def get(args, path):
    req = urllib.request.Request(
        'http://127.0.0.1:%d%s' % (args.port, path),
        headers={'Client-ID': CLIENT, 'X-Project-Id': args.project})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.loads(r.read() or b'null')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--project', required=True)
    ap.add_argument('--queue', default='batches')
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--posts', type=int, default=40)
    args = ap.parse_args()

    v = Verdict('every post whose client stayed is answered 201',
                'every message answered 201 is read once, with its body; '
                'an abandoned one at most once',
                'markers go up, and each post\'s messages are contiguous '
                'and in order',
                'a post after the rounds is answered 201')

    answered = {}       # (round, i) -> number of messages
    abandoned = set()
    for rnd in range(args.rounds):
        socks = []
        for i in range(args.posts):
            n = 1 + (i % 3)
            body = {'messages': [{'ttl': 3600, 'body': {'r': rnd, 'i': i,
                                                        'j': j}}
                                 for j in range(n)]}
            s = socket.create_connection(('127.0.0.1', args.port))
            s.sendall(post_bytes(args, body))
            socks.append((i, n, s))
        for i, n, s in socks:
            if i % 2:
                s.close()
                abandoned.add((rnd, i))
        for i, n, s in socks:
            if i % 2:
                continue
            status, body = answer(s, 30)
            s.close()
            ids = json.loads(body or b'{}').get('resources', []) \
                if status == 201 else []
            v.check(status == 201 and len(ids) == n,
                    'every post whose client stayed is answered 201',
                    'round %d post %d: %d %r' % (rnd, i, status, body[:200]))
            answered[(rnd, i)] = n

    # the whole queue, by marker
    seen, markers, marker = [], [], None
    while True:
        path = '/v2/queues/%s/messages?echo=true&limit=20' % args.queue
        if marker:
            path += '&marker=' + urllib.parse.quote(marker)
        status, page = get(args, path)
        if status != 200 or not page or not page.get('messages'):
            break
        for m in page['messages']:
            seen.append(m['body'])
        query = urllib.parse.urlparse(page['links'][0]['href']).query
        marker = urllib.parse.parse_qs(query)['marker'][0]
        markers.append(int(marker))

    counts = {}
    for b in seen:
        key = (b['r'], b['i'], b['j'])
        counts[key] = counts.get(key, 0) + 1
    for (rnd, i), n in answered.items():
        for j in range(n):
            c = counts.get((rnd, i, j), 0)
            v.check(c == 1, 'every message answered 201 is read once, with '
                    'its body; an abandoned one at most once',
                    'round %d post %d message %d read %d times'
                    % (rnd, i, j, c))
    for key, c in counts.items():
        v.check(c == 1 and ((key[0], key[1]) in answered
                            or (key[0], key[1]) in abandoned),
                'every message answered 201 is read once, with its body; '
                'an abandoned one at most once',
                '%r read %d times' % (key, c))

    what = 'markers go up, and each post\'s messages are contiguous and in order'
    v.check(markers == sorted(set(markers)), what, 'page markers %r' % markers)
    for k in range(len(seen)):
        b = seen[k]
        if b['j'] > 0:
            prev = seen[k - 1] if k else None
            v.check(prev is not None and (prev['r'], prev['i'], prev['j'])
                    == (b['r'], b['i'], b['j'] - 1), what,
                    'message %r after %r' % (b, prev))

    t = time.time()
    s = socket.create_connection(('127.0.0.1', args.port))
    s.sendall(post_bytes(args, {'messages': [{'body': 'last'}]}))
    status, body = answer(s, 10)
    s.close()
    v.check(status == 201, 'a post after the rounds is answered 201',
            '%d %r after %.2f s' % (status, body[:200], time.time() - t))

    print('posts answered: %d, abandoned: %d, messages read: %d'
          % (len(answered), len(abandoned), len(seen)))
    v.report()
    return 1 if v.failures() else 0


if __name__ == '__main__':
    sys.exit(main())
