#!/usr/bin/python3
# The ordering invariant of a queue under concurrent producers, a consumer
# and observers, against a running msgbus (t/024-ordering.t, and
# bench/messages/run.sh with more messages).
#
#   ordering.py --port PORT --mongodb URI [--host H] [--project P]
#               [--queue Q] [--messages N] [--producers 4] [--deadline S]
#
# N (default: $ORDERING_MESSAGES, else 5000) messages acknowledged with 201
# in all; a fresh queue each run unless --queue is given.
#
# While it runs:
# - producers (processes) post singles and batches of 2..10 messages with
#   bodies {"p": producer, "s": seq}, one request at a time each, until N
#   messages are acknowledged in all;
# - two observers page through the queue from the start (echo=true,
#   limit=20, the marker of links[0].href) until the producers are done and
#   they have had 3 empty pages since;
# - a consumer deletes by ids (20 at a time, reading their markers from
#   the store first) what both observers have seen but a share --keep of
#   it, pops (pop=1..5: the oldest) every other round and deletes one or
#   two of the newest (listed past the observers) every --fresh-every
#   rounds; it records what it removed.
# The producers wait while more than --backlog messages are neither
# removed nor kept, so that the observers and the consumer keep up and
# 5000 messages take well under a minute on 2 cores.
#
# Then, per observer and in the store (pymongo: the partition and fields of
# t/util/mongo.py):
# (a) every acknowledged message is seen exactly once, or else the consumer
#     removed it; nothing is seen that was not posted, and bodies are the
#     ones posted;
# (b) in the order seen, each producer's messages come in posting order,
#     the page markers (links) go strictly up, and so do the store's
#     markers (k) of the messages seen (read by the consumer before it
#     deleted them, or still stored); a page's marker is its last
#     message's k;
# (c) in the store no two documents of the queue share a marker, every
#     acknowledged message not removed is there, nothing else is (but what
#     a refused post stored); every marker known (the pages', the ones
#     read, the store's) belongs to one message; and as markers start at 1,
#     no more messages were stored than markers known or counted.
# Prints a one-line summary, the refused posts (not 201), the assertions
# ("ok - WHAT" or "not ok - WHAT" and the reasons: t/util/verdict.py; every
# post answered 201 is one, but no failure of the invariant), then OK or
# FAILED.  Exit status: 0 OK, 1 failures, 2 OK but some posts refused.
#
# Only the standard library but for the store check (pymongo: Debian's
# python3-pymongo, hence /usr/bin/python3).  --verbose: requests per kind.

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import shutil
import sys
import tempfile
import time
import urllib.parse
import uuid

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from verdict import Verdict             # noqa: E402
import zlib

EMPTY_AFTER_DONE = 3


class Client:
    """One keep-alive HTTP/1.1 connection with the Zaqar headers."""

    def __init__(self, host, port, project, client_id, timeout=30):
        self.host, self.port, self.timeout = host, port, timeout
        self.headers = {'Client-ID': client_id, 'X-Project-ID': project,
                        'Accept': 'application/json'}
        self.conn = None
        self.stats = {}         # "METHOD kind" -> [count, seconds]

    def request(self, method, path, body=None, retry=True):
        """(status, parsed JSON or raw text); status 0 on a lost answer.
        A request is repeated once on a dropped keep-alive connection only
        if retry (never for a POST: it may have been stored)."""
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers['Content-Type'] = 'application/json'
        kind = '%s %s' % (method, path.split('?')[0].rsplit('/', 1)[-1])
        if '?' in path:
            kind += ' ?' + ','.join(sorted(
                k for k in urllib.parse.parse_qs(path.split('?', 1)[1])))
        st = self.stats.setdefault(kind, [0, 0.0])
        st[0] += 1
        t0 = time.time()
        try:
            return self._request(method, path, data, headers, retry)
        finally:
            st[1] += time.time() - t0

    def _request(self, method, path, data, headers, retry):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port,
                                                       timeout=self.timeout)
            try:
                self.conn.request(method, path, data, headers)
                resp = self.conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException) as e:
                self.conn.close()
                self.conn = None
                if attempt == 0 and retry:
                    continue
                return 0, '%s: %s' % (type(e).__name__, e)
            if resp.will_close:
                self.conn.close()
                self.conn = None
            try:
                return resp.status, json.loads(raw) if raw else None
            except ValueError:
                return resp.status, raw.decode('utf-8', 'replace')
        return 0, 'unreachable'


def dump(path, obj):
    with open(path + '.tmp', 'w') as f:
        json.dump(obj, f)
    os.rename(path + '.tmp', path)


def producer(o, n, acked, removed, stop, out):
    rnd = random.Random(o.seed * 1000 + n)
    c = Client(o.host, o.port, o.project, str(uuid.uuid4()))
    path = '/v2/queues/%s/messages' % o.queue
    seq = 0
    done, refused, posts = [], [], 0
    while not stop.is_set() and acked.value < o.messages:
        # back pressure: the store scans the queue, keep it short
        if acked.value - removed.value > o.backlog:
            time.sleep(0.01)
            continue
        size = 1 if rnd.random() < 0.3 else rnd.randint(2, 10)
        msgs = [{'body': {'p': n, 's': seq + i}} for i in range(size)]
        posts += 1
        status, body = c.request('POST', path, {'messages': msgs},
                                 retry=False)
        ids = None
        if status == 201 and isinstance(body, dict):
            res = body.get('resources')
            if isinstance(res, list) and len(res) == size:
                ids = [r.rsplit('/', 1)[-1] for r in res]
        if ids is None:
            refused.append([seq, seq + size - 1, status, str(body)[:200]])
        else:
            done.extend([i, n, seq + j] for j, i in enumerate(ids))
            with acked.get_lock():
                acked.value += size
        seq += size
    dump(out, {'acked': done, 'refused': refused, 'posts': posts,
               'stats': c.stats})


def consumer(o, stop, progress, removed, tmp, out):
    """Keeps the queue short (the store scans it for every list): deletes
    by ids what both observers have seen, but a share o.keep of it, pops
    the oldest and deletes one or two of the newest."""
    rnd = random.Random(o.seed * 1000 + 99)
    c = Client(o.host, o.port, o.project, str(uuid.uuid4()))
    base = '/v2/queues/%s/messages' % o.queue
    seen = [Tail('%s/o%d.ids' % (tmp, n)) for n in range(o.observers)]
    done = set()                # ids deleted or kept
    popped, deleted, errors, known = [], [], [], []
    pops = deletes = rounds = 0

    from bson import ObjectId   # pymongo's
    col = partition(o)[1]

    def account(ids):
        """ids now out of the queue or kept: the back pressure's count"""
        new = [i for i in ids if i not in done]
        done.update(new)
        with removed.get_lock():
            removed.value += len(new)

    def delete(ids):
        """deletes by ids, after reading their markers from the store"""
        nonlocal deletes
        try:
            oids = [ObjectId(i) for i in ids]
            known.extend([str(d['_id']), d.get('k')] for d in
                         col.find({'_id': {'$in': oids}}, {'k': 1}))
        except Exception as e:      # noqa: a check less, not a failure
            errors.append('consumer: the store: %s' % e)
        status, body = c.request('DELETE', '%s?ids=%s' % (base, ','.join(ids)))
        deletes += 1
        if status == 204:
            deleted.extend(ids)
        else:
            errors.append('consumer: ids=%s: %s %s'
                          % (','.join(ids), status, str(body)[:200]))

    while not stop.is_set():
        rounds += 1

        # what every observer saw (in the first one's order), 20 at a time
        for t in seen:
            t.read()
        both = [i for i in seen[0].order
                if i not in done and all(i in t.ids for t in seen[1:])]
        account(both)
        gone = [i for i in both if rnd.random() >= o.keep]
        for n in range(0, len(gone), 20):
            delete(gone[n:n + 20])
        seen[0].order = [i for i in seen[0].order if i not in done]

        # the oldest
        if rounds % 2 == 0:
            n = rnd.randint(1, 5)
            # their markers first: the first n by marker, most likely
            try:
                first = {str(d['_id']): d.get('k') for d in
                         col.find({'p_q': '%s/%s' % (o.project, o.queue),
                                   'tx': None},
                                  {'k': 1}).sort('k', 1).limit(n)}
            except Exception as e:      # noqa: a check less
                errors.append('consumer: the store: %s' % e)
                first = {}
            # not repeated: a lost answer may have popped them
            status, body = c.request('DELETE', '%s?pop=%d' % (base, n),
                                     retry=False)
            pops += 1
            if status == 200 and isinstance(body, dict) \
                    and isinstance(body.get('messages'), list):
                account([x.get('id') for x in body['messages']])
                known.extend([x.get('id'), first[x.get('id')]]
                             for x in body['messages'] if x.get('id') in first)
                for x in body['messages']:
                    b = x.get('body')
                    b = b if isinstance(b, dict) else {}
                    popped.append([x.get('id'), b.get('p'), b.get('s')])
            else:
                errors.append('consumer: pop=%d: %s %s'
                              % (n, status, str(body)[:200]))

        # the newest: the end of the queue, past the first observer
        if rounds % o.fresh_every == 0:
            m = max(progress[:])
            q = base + '?echo=true&limit=20' + ('&marker=%d' % m if m else '')
            status, body = c.request('GET', q)
            msgs = body.get('messages') if isinstance(body, dict) else None
            if status != 200 or not isinstance(msgs, list):
                errors.append('consumer: GET %s: %s %s'
                              % (q, status, str(body)[:200]))
            elif msgs and len(msgs) < 20:
                ids = [x['id'] for x in msgs[-rnd.randint(1, 2):]]
                delete(ids)
                account(ids)

        if not gone:
            time.sleep(0.05)
    dump(out, {'popped': popped, 'deleted': deleted, 'errors': errors,
               'pops': pops, 'deletes': deletes, 'known': known,
               'stats': c.stats})


class Tail:
    """The ids an observer has seen so far (its o<N>.ids file)."""

    def __init__(self, path):
        self.path, self.pos, self.ids, self.order = path, 0, set(), []

    def read(self):
        try:
            with open(self.path) as f:
                f.seek(self.pos)
                data = f.read()
        except OSError:
            return
        end = data.rfind('\n') + 1
        self.pos += end
        new = data[:end].split()
        self.ids.update(new)
        self.order.extend(new)


def next_marker(body):
    links = body.get('links') or []
    if not links:
        return None
    qs = urllib.parse.urlsplit(links[0].get('href', '')).query
    m = urllib.parse.parse_qs(qs).get('marker')
    return m[0] if m else None


def observer(o, n, done, progress, tmp, out):
    c = Client(o.host, o.port, o.project, str(uuid.uuid4()))
    ids = open('%s/o%d.ids' % (tmp, n), 'a')
    base = '/v2/queues/%s/messages?echo=true&limit=20' % o.queue
    marker = None
    seen, pages, errors = [], [], []
    empty = requests = 0
    deadline = o.started + o.deadline
    while time.time() < deadline:
        finished = done.is_set()
        q = base if marker is None else base + '&marker=%s' % marker
        status, body = c.request('GET', q)
        requests += 1
        if status != 200 or not isinstance(body, dict) \
                or not isinstance(body.get('messages'), list):
            errors.append('observer %d: GET %s: %s %s'
                          % (n, q, status, str(body)[:200]))
            time.sleep(0.01)
            continue
        page = body['messages']
        if not page:
            if finished:
                empty += 1
                if empty >= EMPTY_AFTER_DONE:
                    break
            time.sleep(0.05)
            continue
        empty = 0
        m = next_marker(body)
        if m is None:
            errors.append('observer %d: a page without a next marker: %s'
                          % (n, str(body)[:200]))
            break
        for msg in page:
            b = msg.get('body')
            seen.append([msg.get('id'),
                         b.get('p') if isinstance(b, dict) else None,
                         b.get('s') if isinstance(b, dict) else None])
        pages.append([page[-1].get('id'), m])
        marker = m
        ids.write(''.join('%s\n' % x.get('id') for x in page))
        ids.flush()
        try:
            progress[n] = int(m)
        except ValueError:
            pass
        if len(page) < 20:      # caught up: let the store breathe
            time.sleep(0.02)
    else:
        errors.append('observer %d: not caught up after %d s'
                      % (n, o.deadline))
    ids.close()
    dump(out, {'seen': seen, 'pages': pages, 'errors': errors,
               'requests': requests, 'stats': c.stats})


# the assertions (a), (b) and (c), and what they rest on
RAN = ('the producers, the consumer and the observers ran to their end '
       'without errors')
ACKED = 'as many messages acknowledged as asked for, each once'
POPPED = 'the consumer popped each message once, and only posted ones'
SEEN = ('(a) each observer saw every message not removed once, with the '
        'body posted, and no other')
ORDER = ('(b) each observer saw each producer\'s messages in posting order, '
         'under increasing markers')
PAGES = ('(b) the page markers are numbers, go up, and are their last '
         'message\'s marker')
STORE_ORDER = '(b) the store\'s markers keep each producer\'s posting order'
STORED = ('(c) the store holds every acknowledged message not removed, and '
          'nothing else')
ONE_MARKER = ('(c) one marker, one message: in the store, the pages and the '
              'markers read')
COUNTER = ('(c) the queue counter is above every marker, and no more messages '
           'than markers')
ASSERTIONS = (RAN, ACKED, POPPED, SEEN, ORDER, PAGES, STORE_ORDER, STORED,
              ONE_MARKER, COUNTER)


def load(path, who, verdict):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        verdict.fail(RAN, '%s left no results (%s)' % (who, e))
        return None


def partition(o):
    """(client, the queue's messages collection, database name)"""
    import pymongo      # only the consumer and the checks use the store

    client = pymongo.MongoClient(o.mongodb, serverSelectionTimeoutMS=5000)
    db = pymongo.uri_parser.parse_uri(o.mongodb)['database'] or 'zaqar'
    part = zlib.crc32((o.project + o.queue).encode()) % o.partitions
    return client, client['%s_messages_p%d' % (db, part)]['messages'], db


def store_docs(o):
    client, col, db = partition(o)
    docs = list(col.find({'p_q': '%s/%s' % (o.project, o.queue)},
                         {'_id': 1, 'k': 1, 'b': 1, 'tx': 1}))
    qdoc = client[db + '_queues']['queues'].find_one(
        {'p_q': '%s/%s' % (o.project, o.queue)})
    client.close()
    return docs, qdoc


def check(o, res, verdict):
    acked = {}                  # id -> (producer, seq)
    refused = []                # (producer, first seq, last seq)
    posts = 0
    for n, r in enumerate(res['producers']):
        if r is None:
            continue
        posts += r['posts']
        for first, last, status, body in r['refused']:
            refused.append((n, first, last))
            res['refusals'].append('producer %d: POST of s=%d..%d: %s %s'
                                   % (n, first, last, status, body))
        for i, p, s in r['acked']:
            if i in acked:
                verdict.fail(ACKED, 'id %s acknowledged twice' % i)
            acked[i] = (p, s)

    removed = set()
    cons = res['consumer'] or {'popped': [], 'deleted': [], 'errors': [],
                               'pops': 0, 'deletes': 0, 'known': []}
    for e in cons['errors']:
        verdict.fail(RAN, e)
    def of_refused(p, s):
        return any(p == n and first <= s <= last
                   for n, first, last in refused)

    popped = set(i for i, p, s in cons['popped'])
    if len(popped) != len(cons['popped']):
        verdict.fail(POPPED, 'a message was popped twice')
    for i, p, s in cons['popped']:
        if i not in acked and not of_refused(p, s):
            verdict.fail(POPPED, 'popped %s (p %s s %s), never posted'
                         % (i, p, s))
    removed |= popped
    removed |= set(cons['deleted'])

    orphans = set()             # stored by a refused post
    docs, qdoc = store_docs(o)
    stored = {}                 # id -> k
    by_k = {}
    for d in docs:
        i = str(d['_id'])
        k = d.get('k')
        if k in by_k:
            verdict.fail(ONE_MARKER, '(c) marker %s shared by %s and %s in '
                         'the store' % (k, by_k[k], i))
        by_k[k] = i
        if d.get('tx') is not None:
            # a deleted message's tombstone: it keeps its marker taken
            continue
        stored[i] = k
        if i not in acked:
            try:
                b = json.loads(bytes(d.get('b')))
                p, s = b['p'], b['s']
            except (TypeError, ValueError, KeyError):
                p = s = None
            if of_refused(p, s):
                orphans.add(i)
            else:
                verdict.fail(STORED, '(c) %s (k %s, body %r) in the store, '
                             'never posted' % (i, k, d.get('b')))
        elif i in popped:
            verdict.fail(STORED, '(c) %s (k %s) popped, still in the store'
                         % (i, k))
    for i in acked:
        if i not in stored and i not in removed:
            verdict.fail(STORED, '(c) %s (producer %d s %d) acknowledged, '
                         'not removed, not in the store' % ((i,) + acked[i]))
    # posting order in the store
    last = {}
    for i, k in sorted(((i, k) for i, k in stored.items() if i in acked),
                       key=lambda x: x[1]):
        p, s = acked[i]
        if p in last and last[p] >= s:
            verdict.fail(STORE_ORDER, '(b) store: producer %d s %d has k %s, '
                         'above s %d' % (p, s, k, last[p]))
        last[p] = s
    counter = (qdoc or {}).get('c', {}).get('v')
    if by_k and (counter is None or counter <= max(by_k)):
        verdict.fail(COUNTER, '(c) the queue counter %s is not above the '
                     'highest marker %s' % (counter, max(by_k)))

    # the markers the consumer read before it deleted
    known_k = {}
    for i, k in cons['known']:
        if known_k.get(i, k) != k:
            verdict.fail(ONE_MARKER, '(c) %s had marker %s, then %s'
                         % (i, known_k[i], k))
        known_k[i] = k

    views = []
    for n, r in enumerate(res['observers']):
        if r is None:
            views.append(0)
            continue
        for e in r['errors']:
            verdict.fail(RAN, e)
        count = {}
        for i, p, s in r['seen']:
            count[i] = count.get(i, 0) + 1
            if i not in acked:
                if of_refused(p, s):
                    orphans.add(i)
                else:
                    verdict.fail(SEEN, '(a) observer %d saw %s (p %s s %s), '
                                 'never posted' % (n, i, p, s))
            elif acked[i] != (p, s):
                verdict.fail(SEEN, '(a) observer %d saw %s with body p %s s '
                             '%s, posted p %d s %d' % ((n, i, p, s) + acked[i]))
        for i, c in count.items():
            if c > 1:
                verdict.fail(SEEN, '(a) observer %d saw %s %d times'
                             % (n, i, c))
        missing = [i for i in acked if i not in count and i not in removed]
        for i in missing[:20]:
            verdict.fail(SEEN, '(a) observer %d never saw %s (producer %d s '
                         '%d, k %s), not removed'
                         % ((n, i) + acked[i] + (stored.get(i),)))
        if len(missing) > 20:
            verdict.fail(SEEN, '(a) observer %d missed %d more'
                         % (n, len(missing) - 20))
        views.append(len(count))

        last_s, last_k = {}, None
        for i, p, s in r['seen']:
            k = stored.get(i, known_k.get(i))
            if p in last_s and isinstance(s, int) and last_s[p] >= s:
                verdict.fail(ORDER, '(b) observer %d: producer %s s %s after '
                             's %s' % (n, p, s, last_s[p]))
            last_s[p] = s
            if k is not None:
                if last_k is not None and k <= last_k:
                    verdict.fail(ORDER, '(b) observer %d: %s has k %s after '
                                 'k %s' % (n, i, k, last_k))
                last_k = k
        prev = None
        for i, m in r['pages']:
            try:
                m = int(m)
            except (TypeError, ValueError):
                verdict.fail(PAGES, '(b) observer %d: marker %r is not a '
                             'number' % (n, m))
                continue
            if prev is not None and m <= prev:
                verdict.fail(PAGES, '(b) observer %d: page marker %d after %d'
                             % (n, m, prev))
            prev = m
            k = stored.get(i, known_k.get(i))
            if k is not None and k != m:
                verdict.fail(PAGES, '(b) observer %d: page marker %d, its last '
                             'message %s has k %s' % (n, m, i, k))

    # (c) every marker known: a page's (for its last message) and the
    # store's; one marker, one message
    marks = {}
    for k, i in by_k.items():
        marks.setdefault(k, set()).add(i)
    for r in res['observers'] + [cons]:
        for i, m in (r or {}).get('pages', []) + (r or {}).get('known', []):
            if m is None:
                continue
            try:
                marks.setdefault(int(m), set()).add(i)
            except (TypeError, ValueError):
                pass
    for k in sorted(marks):
        if len(marks[k]) > 1:
            verdict.fail(ONE_MARKER, '(c) marker %d was given to %s'
                         % (k, ' and '.join(sorted(marks[k]))))
    # markers start at 1 and go up: more messages than markers up to the
    # highest known (nearly all are) and the counter means reuse, or that
    # the counter went down under messages nobody listed
    issued = max([counter - 1 if isinstance(counter, int) else 0]
                 + list(marks))
    if issued < len(acked) + len(orphans):
        verdict.fail(COUNTER, '(c) %d messages, but no marker known above %d '
                     'and the counter at %s: at least %d markers issued '
                     'twice (or the counter went down under messages never '
                     'listed)' % (len(acked) + len(orphans), issued,
                                  counter,
                                  len(acked) + len(orphans) - issued))

    return {'acked': len(acked), 'posts': posts, 'popped': len(popped),
            'deleted': len(set(cons['deleted'])), 'removed': len(removed),
            'pops': cons['pops'], 'deletes': cons['deletes'],
            'stored': len(stored), 'views': views,
            'top': max(by_k) if by_k else None, 'counter': counter,
            'pages': [len(r['pages']) if r else 0 for r in res['observers']],
            'orphans': len(orphans), 'known': len(known_k)}


def stats(res):
    """Requests per kind: count, mean and total seconds (--verbose)."""
    who = [('producers', r) for r in res['producers']] \
        + [('consumer', res['consumer'])] \
        + [('observers', r) for r in res['observers']]
    total = {}
    for name, r in who:
        for kind, (n, secs) in ((r or {}).get('stats') or {}).items():
            t = total.setdefault((name, kind), [0, 0.0])
            t[0] += n
            t[1] += secs
    for (name, kind), (n, secs) in sorted(total.items()):
        print('  %-9s %-28s %6d requests, %7.1f ms mean, %6.1f s'
              % (name, kind, n, secs / n * 1000 if n else 0, secs))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--mongodb', required=True,
                    help='the store msgbus uses (database in the path)')
    ap.add_argument('--partitions', type=int, default=2)
    ap.add_argument('--project', default='ordering-%d' % os.getpid())
    ap.add_argument('--queue', default='q%d-%d' % (os.getpid(),
                                                    int(time.time())))
    ap.add_argument('--messages', type=int,
                    default=int(os.environ.get('ORDERING_MESSAGES', 5000)))
    ap.add_argument('--producers', type=int, default=4)
    ap.add_argument('--observers', type=int, default=2)
    ap.add_argument('--deadline', type=float, default=0,
                    help='seconds (default: 120 + N / 50)')
    ap.add_argument('--keep', type=float, default=0.005,
                    help='the share of what the observers saw that the '
                    'consumer leaves in the queue (default 0.005)')
    ap.add_argument('--backlog', type=int, default=30,
                    help='producers wait while more messages than that '
                    'are neither removed nor kept (default 30)')
    ap.add_argument('--fresh-every', type=int, default=2,
                    help='the consumer deletes one or two of the newest '
                    'messages every that many rounds (default 2)')
    ap.add_argument('--seed', type=int, default=int(time.time()))
    ap.add_argument('--verbose', action='store_true',
                    help='requests per kind and their times')
    o = ap.parse_args()
    if not o.deadline:
        o.deadline = 120 + o.messages / 50
    o.started = time.time()

    verdict = Verdict(*ASSERTIONS)
    tmp = tempfile.mkdtemp(prefix='msgbus-ordering-')
    try:
        c = Client(o.host, o.port, o.project, str(uuid.uuid4()))
        status, body = c.request('PUT', '/v2/queues/%s' % o.queue, {})
        if status not in (201, 204):
            print('ordering: PUT /v2/queues/%s: %s %s' % (o.queue, status,
                                                          body))
            print('FAILED')
            return 1

        ctx = mp.get_context('fork')
        acked = ctx.Value('q', 0)
        removed = ctx.Value('q', 0)     # or kept: out of the back pressure
        stop = ctx.Event()      # the deadline: everyone stops
        done = ctx.Event()      # the producers are done
        prod = [ctx.Process(target=producer,
                            args=(o, n, acked, removed, stop,
                                  '%s/p%d' % (tmp, n)))
                for n in range(o.producers)]
        progress = ctx.Array('q', o.observers)
        cons = ctx.Process(target=consumer,
                           args=(o, done, progress, removed, tmp,
                                 tmp + '/c'))
        obs = [ctx.Process(target=observer,
                           args=(o, n, done, progress, tmp,
                                 '%s/o%d' % (tmp, n)))
               for n in range(o.observers)]
        for p in obs + [cons] + prod:
            p.start()
        for p in prod:
            p.join(max(1, o.started + o.deadline - time.time()))
            if p.is_alive():
                stop.set()
                verdict.fail(RAN, 'producers not done after %d s'
                             % o.deadline)
                p.join()
        posted = time.time() - o.started
        done.set()
        for p in [cons] + obs:
            p.join(max(1, o.started + o.deadline + 30 - time.time()))
            if p.is_alive():
                p.kill()
                p.join()
        elapsed = time.time() - o.started

        res = {
            'producers': [load('%s/p%d' % (tmp, n), 'producer %d' % n,
                               verdict) for n in range(o.producers)],
            'consumer': load(tmp + '/c', 'the consumer', verdict),
            'observers': [load('%s/o%d' % (tmp, n), 'observer %d' % n,
                               verdict) for n in range(o.observers)],
            'refusals': [],
        }
        s = check(o, res, verdict)
        if o.verbose:
            stats(res)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print('ordering: %d messages acknowledged in %d posts by %d producers '
          'in %.1f s (%.0f msg/s), %d posts refused (%d of their messages '
          'stored); consumer removed %d (%d popped in %d pops, %d by ids in '
          '%d deletes; markers read for %d); observers saw %s in %s pages; '
          'store: %d messages, '
          'top marker %s, counter %s; %.1f s in all; queue %s/%s'
          % (s['acked'], s['posts'], o.producers, posted,
             s['acked'] / posted if posted else 0, len(res['refusals']),
             s['orphans'], s['removed'], s['popped'], s['pops'], s['deleted'],
             s['deletes'], s['known'], '/'.join(map(str, s['views'])),
             '/'.join(map(str, s['pages'])), s['stored'], s['top'],
             s['counter'], elapsed, o.project, o.queue))
    # not the ordering invariant, but the service: each one a failure
    for r in res['refusals'][:10]:
        print('  refused: ' + r)
    if len(res['refusals']) > 10:
        print('  refused: ... %d more' % (len(res['refusals']) - 10))
    if s['acked'] < o.messages:
        verdict.fail(ACKED, 'only %d of %d messages acknowledged'
                     % (s['acked'], o.messages))
    verdict.report()
    print('%s - every post answered 201'
          % ('not ok' if res['refusals'] else 'ok'))
    if verdict.failures():
        print('FAILED (%d)' % verdict.failures())
        return 1
    print('OK')
    return 2 if res['refusals'] else 0


if __name__ == '__main__':
    sys.exit(main())
