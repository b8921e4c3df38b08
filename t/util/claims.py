#!/usr/bin/python3
# Claims under concurrency and over time, against a running msgbus
# (t/031-claims.t; bench/claims/run.sh for throughput).
#
#   claims.py --port PORT --mongodb URI --project P [--queue Q]
#             [--messages N] [--claimers 8] [--limit 10] [--deadline S]
#             SCENARIO
#
# exclusive   N messages (default 2000); --claimers processes claim
#             (--limit at a time, ttl an hour) until nothing is left.  Every message
#             is in exactly one claim's answer, and the store agrees: its
#             claim (c.id) is that claim, its count (c.c) is 1.
# delivery    N messages (default 1000); --claimers consumers claim
#             (--limit at a time, ttl 60 s) and delete each message with its claim id, but
#             1 claim in 100 (every 100th, counted over all consumers)
#             has a ttl of 2 s and is left to expire.  Every message is
#             deleted once, delivered once unless it was in an abandoned
#             claim, then again, and never before that claim's end.
# lifecycle   one message, claims of 2 or 3 s: counts go 1, 2, 3 across
#             expiries; a held message is not claimable; a released one
#             is, at once; a renewed claim holds past its first end.
# bench       throughput (bench/claims/run.sh): --producers (default:
#             --claimers) producers post N messages (default 1000) in
#             batches of 10, then --claimers consumers claim them (--limit)
#             and delete each with its claim id; messages per second of
#             each phase.
#
# Prints a summary, its assertions ("ok - WHAT" or "not ok - WHAT" and the
# reasons: t/util/verdict.py), then OK or FAILED.  Exit status 0 or 1.
# The store is read with pymongo (Debian's python3-pymongo).

import argparse
import multiprocessing as mp
import os
import sys
import time
import uuid
import zlib

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ordering import Client             # noqa: E402
from verdict import Verdict             # noqa: E402


def post_all(o, n):
    """n messages in batches of 10; their ids in posting order."""
    c = Client('127.0.0.1', o.port, o.project, str(uuid.uuid4()),
               timeout=o.timeout)
    ids = []
    while len(ids) < n:
        batch = [{'ttl': 3600, 'body': {'n': len(ids) + i}}
                 for i in range(min(10, n - len(ids)))]
        status, body = c.request('POST', o.path + '/messages',
                                 {'messages': batch}, retry=False)
        if status != 201:
            raise SystemExit('post: %s %s' % (status, body))
        ids += [r.rsplit('/', 1)[1] for r in body['resources']]
    return ids


def claim(c, o, ttl, grace=60):
    """(status, claim id, [message ids]) of a new claim."""
    status, body = c.request('POST', '%s/claims?limit=%d' % (o.path, o.limit),
                             {'ttl': ttl, 'grace': grace}, retry=False)
    if status != 201:
        return status, None, []
    ids = [m['id'] for m in body['messages']]
    cids = {m['href'].split('claim_id=')[1] for m in body['messages']}
    if len(cids) != 1:
        raise SystemExit('claim: hrefs name %d claims' % len(cids))
    return status, cids.pop(), ids


def store(o):
    import pymongo
    db = pymongo.uri_parser.parse_uri(o.mongodb)['database'] or 'zaqar'
    n = zlib.crc32((o.project + o.queue).encode('utf-8')) % 2
    client = pymongo.MongoClient(o.mongodb, serverSelectionTimeoutMS=5000)
    col = client['%s_messages_p%d' % (db, n)]['messages']
    return {str(d['_id']): d for d in
            col.find({'p_q': o.project + '/' + o.queue, 'tx': None})}


def processes(target, argsets):
    """Runs target(*args, out) in a process per args; (the values each
    put on out, seconds taken)."""
    out = mp.Queue()
    t0 = time.time()
    procs = [mp.Process(target=target, args=args + (out,))
             for args in argsets]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return results, time.time() - t0


# ------------------------------------------------------------ exclusive

def claimer(o, out):
    c = Client('127.0.0.1', o.port, o.project, str(uuid.uuid4()),
               timeout=o.timeout)
    got, statuses, empty = [], {}, 0
    deadline = time.time() + o.deadline
    while empty < 2 and time.time() < deadline:
        status, cid, ids = claim(c, o, 3600)
        statuses[status] = statuses.get(status, 0) + 1
        if status == 201:
            got.append((cid, ids))
            empty = 0
        elif status == 204:
            empty += 1
        elif 400 <= status < 500:
            break
        else:
            time.sleep(0.1)
    out.put((got, statuses))


NOT_TWICE = 'no message in two claims'
ONLY_POSTED = 'claims hold only posted messages'
CLAIMS_ANSWERED = 'claims answered 201 or 204 (or 5xx)'
CLAIMS_5XX = 'at most --store-errors claims answered 5xx'


def exclusive(o, verdict):
    in_store = 'the store holds every posted message'
    in_claim = 'every message in a claim answered (but after store errors)'
    left_out = 'no message held by a claim whose answer left it out'
    orphan = 'no claim nobody was answered (but after store errors)'
    agrees = 'the store holds each message\'s claim, its count 1'
    for what in (NOT_TWICE, ONLY_POSTED, CLAIMS_ANSWERED, CLAIMS_5XX,
                 in_store, in_claim, left_out, orphan, agrees):
        verdict.expect(what)
    posted = post_all(o, o.messages)
    results, took = processes(claimer, [(o,)] * o.claimers)

    holder, statuses, nclaims = {}, {}, 0
    for got, st in results:
        for k, v in st.items():
            statuses[k] = statuses.get(k, 0) + v
        for cid, ids in got:
            nclaims += 1
            for i in ids:
                if i in holder:
                    verdict.fail(NOT_TWICE, 'message %s in claims %s and %s'
                           % (i, holder[i], cid))
                holder[i] = cid
    if set(holder) - set(posted):
        verdict.fail(ONLY_POSTED, 'claims hold messages never posted')
    # a store error (5xx) may come after the claim was stored: its
    # messages are then held by a claim nobody was told of (an orphan,
    # as Zaqar's driver notes), never by two
    failed = sum(v for k, v in statuses.items() if k >= 500)
    bad = {k: v for k, v in statuses.items()
           if k not in (201, 204) and k < 500}
    if bad:
        verdict.fail(CLAIMS_ANSWERED, 'answers other than 201, 204 and 5xx: %s'
               % bad)
    if failed > o.store_errors:
        verdict.fail(CLAIMS_5XX, '%d claims answered 5xx (at most %d allowed)'
               % (failed, o.store_errors))

    docs = store(o)
    if len(docs) != len(posted):
        verdict.fail(in_store, 'the store has %d messages, not %d'
               % (len(docs), len(posted)))
    answered = set(holder.values())
    orphans = {i for i in posted if i not in holder and i in docs
               and docs[i]['c'].get('id') is not None
               and str(docs[i]['c']['id']) not in answered}
    orphan_claims = {str(docs[i]['c']['id']) for i in orphans}
    # a store error may also come after the keys were taken and before
    # the claim was written: those messages wait until the keys expire
    missing = set(posted) - set(holder) - orphans
    if len(missing) > failed * o.limit:
        verdict.fail(in_claim, '%d messages in no claim, e.g. %s'
               % (len(missing), sorted(missing)[0]))
    held = [i for i in missing if docs.get(i, {}).get('c', {}).get('id')]
    if held:
        verdict.fail(left_out, '%d messages held by a claim whose answer left '
               'them out, e.g. %s' % (len(held), held[0]))
    if len(orphan_claims) > failed:
        verdict.fail(orphan, '%d claims nobody was answered, after %d store '
               'errors' % (len(orphan_claims), failed))
    wrong = [i for i in posted if i in holder
             and (str(docs.get(i, {}).get('c', {}).get('id')) != holder[i]
                  or docs.get(i, {}).get('c', {}).get('c') != 1)]
    if wrong:
        d = docs.get(wrong[0], {}).get('c')
        verdict.fail(agrees, '%d messages whose claim in the store is not the '
               'one answered, or whose count is not 1, e.g. %s: %s'
               ' (answered %s)' % (len(wrong), wrong[0], d,
                                   holder.get(wrong[0])))
    print('exclusive: %d messages, %d claimers, limit %d, %d claims in '
          '%.1f s (%.0f messages/s), answers %s; after store errors, %d '
          'messages held by %d claims nobody was answered, %d waiting'
          % (len(posted), o.claimers, o.limit, nclaims, took,
             len(posted) / took if took else 0, statuses, len(orphans),
             len(orphan_claims), len(missing)))


# ------------------------------------------------------------- delivery

def consumer(o, seq, done, out):
    c = Client('127.0.0.1', o.port, o.project, str(uuid.uuid4()),
               timeout=o.timeout)
    log, deletes = [], {}
    deadline = time.time() + o.deadline
    while done.value < o.messages and time.time() < deadline:
        with seq.get_lock():
            seq.value += 1
            abandon = o.abandon and seq.value % 100 == 0
        t = time.time()
        status, cid, ids = claim(c, o, 2 if abandon else 60,
                                 0 if abandon else 60)
        if status != 201:
            if status != 204:
                log.append(('error', status, t))
            if 400 <= status < 500:
                break
            time.sleep(0.05)
            continue
        for i in ids:
            log.append((i, cid, t, time.time(), abandon))
        if abandon:
            continue
        for i in ids:
            for _ in range(5):          # a consumer retries a store error
                st, _ = c.request('DELETE', '%s/messages/%s?claim_id=%s'
                                  % (o.path, i, cid))
                deletes[st] = deletes.get(st, 0) + 1
                if st < 500:
                    break
                time.sleep(0.5)
            if st == 204:
                log.append(('deleted', i))
                with done.get_lock():
                    done.value += 1
    out.put((log, deletes))


def delivery(o, verdict):
    claims_5xx = 'at most --store-errors claims and deletes answered 5xx'
    deletes_answered = 'deletes answered 204 (or 5xx)'
    once = 'every message deleted once'
    again = ('a message delivered again only in a new claim after its '
             'abandoned claim ended')
    last = 'no message last delivered in an abandoned claim'
    tested = 'some claims were abandoned'
    empty = 'no message left in the store'
    for what in (CLAIMS_ANSWERED, claims_5xx, deletes_answered, once, again,
                 last, tested, empty):
        verdict.expect(what)
    posted = post_all(o, o.messages)
    seq, done = mp.Value('i', 0), mp.Value('i', 0)
    results, took = processes(consumer, [(o, seq, done)] * o.claimers)

    deliveries, deleted, deletes, errors = {}, {}, {}, []
    for log, dl in results:
        for k, v in dl.items():
            deletes[k] = deletes.get(k, 0) + v
        for e in log:
            if e[0] == 'deleted':
                deleted[e[1]] = deleted.get(e[1], 0) + 1
            elif e[0] == 'error':
                errors.append(e[1])
            else:
                deliveries.setdefault(e[0], []).append(e[1:])

    if [e for e in errors if e < 500]:
        verdict.fail(CLAIMS_ANSWERED, 'claims answered %s' % sorted(set(errors)))
    failed = len(errors) + sum(v for k, v in deletes.items() if k >= 500)
    if failed > o.store_errors:
        verdict.fail(claims_5xx, '%d claims and deletes answered 5xx (at most %d '
               'allowed)' % (failed, o.store_errors))
    if set(k for k in deletes if k < 500) - {204}:
        verdict.fail(deletes_answered, 'deletes answered %s' % deletes)
    if set(deleted) != set(posted) or set(deleted.values()) != {1}:
        verdict.fail(once, '%d of %d messages deleted (%d more than once)'
               % (len(deleted), len(posted),
                  sum(1 for v in deleted.values() if v > 1)))
    redelivered = abandoned = 0
    for i in posted:
        ds = sorted(deliveries.get(i, []), key=lambda d: d[1])
        if not ds:
            continue
        # each delivery but the last: an abandoned claim's; the next one
        # comes after its end (2 s; times in whole seconds: 1 s early)
        for prev, nxt in zip(ds, ds[1:]):
            if not prev[3]:
                verdict.fail(again, 'message %s delivered again though its '
                       'claim %s was not abandoned' % (i, prev[0]))
            elif nxt[1] < prev[1] + 2 - 1:
                verdict.fail(again, 'message %s delivered again %.2f s after '
                       'its claim %s of 2 s' % (i, nxt[1] - prev[1],
                                                prev[0]))
        if ds[-1][3]:
            verdict.fail(last, 'message %s last delivered in an abandoned '
                   'claim' % i)
        redelivered += len(ds) > 1
        abandoned += sum(1 for d in ds if d[3])
    if abandoned == 0:
        verdict.fail(tested, 'no claim was abandoned: nothing was tested')
    left = store(o)
    if left:
        verdict.fail(empty, '%d messages left in the store' % len(left))
    print('delivery: %d messages, %d consumers, limit %d, deleted in %.1f s '
          '(%.0f messages/s claimed and deleted), %d deliveries in '
          'abandoned claims, %d messages delivered again; store errors: '
          '%d claims, %d deletes (retried)'
          % (len(posted), o.claimers, o.limit, took,
             len(posted) / took if took else 0, abandoned, redelivered,
             len(errors), sum(v for k, v in deletes.items() if k >= 500)))


# ------------------------------------------------------------ lifecycle

def lifecycle(o, verdict):
    c = Client('127.0.0.1', o.port, o.project, str(uuid.uuid4()),
               timeout=o.timeout)
    [mid] = post_all(o, 1)

    def expect(what, got, want):
        verdict.check(got == want, what, '%s: %r, not %r' % (what, got, want))

    def count():
        return store(o)[mid]['c'].get('c')

    def claimed(what, ttl):
        status, cid, ids = claim(c, o, ttl, 0)
        expect(what, (status, ids), (201, [mid]))
        return cid

    # claims end at whole seconds (c.e = now + ttl, now in seconds): a
    # claim of 2 s holds for more than 1 s and at most 2 s
    for n in (1, 2, 3):
        t = time.time()
        claimed('claim %d' % n, 2)
        expect('claim count after claim %d' % n, count(), n)
        verdict.expect('a claim while it is held')
        if time.time() < t + 1:
            expect('a claim while it is held', claim(c, o, 1, 0)[0], 204)
        time.sleep(max(0, t + 2.1 - time.time()))

    cid = claimed('claim 4', 60)
    expect('claim count after claim 4', count(), 4)
    status, _ = c.request('DELETE', '%s/claims/%s' % (o.path, cid))
    expect('release', status, 204)
    t = time.time()
    cid = claimed('a claim right after the release', 2)
    expect('claim count after the release and a claim', count(), 5)

    time.sleep(max(0, t + 1 - time.time()))
    status, _ = c.request('PATCH', '%s/claims/%s' % (o.path, cid),
                          {'ttl': 3, 'grace': 0})
    expect('renew', status, 204)
    time.sleep(max(0, t + 2.6 - time.time()))
    expect('a claim after the first end of a renewed claim',
           claim(c, o, 1, 0)[0], 204)
    status, body = c.request('GET', '%s/claims/%s' % (o.path, cid))
    expect('the renewed claim', (status, [m['id'] for m in
                                          (body or {}).get('messages', [])]),
           (200, [mid]))
    time.sleep(max(0, t + 5.1 - time.time()))
    status, _ = c.request('GET', '%s/claims/%s' % (o.path, cid))
    expect('the renewed claim after its end', status, 404)
    claimed('a claim after the renewed claim ended', 60)
    expect('claim count at the end (kept by renew and release)', count(), 6)
    print('lifecycle: claim counts 1..6 across expiries, a release and a '
          'renew')


# ---------------------------------------------------------------- bench

def producer(o, share, out):
    t0 = time.time()
    post_all(o, share)
    out.put(time.time() - t0)


def bench(o, verdict):
    producers = o.producers or o.claimers
    shares = [o.messages // producers + (i < o.messages % producers)
              for i in range(producers)]
    _, post_s = processes(producer, [(o, n) for n in shares])

    seq, done = mp.Value('i', 1), mp.Value('i', 0)
    o.abandon = False
    results, claim_s = processes(consumer, [(o, seq, done)] * o.claimers)
    claims = len({e[1] for log, _ in results for e in log
                  if e[0] not in ('deleted', 'error')})
    errors = [e[1] for log, _ in results for e in log if e[0] == 'error']
    verdict.check(done.value == o.messages, 'every message claimed and deleted',
            '%d of %d messages claimed and deleted'
            % (done.value, o.messages))
    verdict.check(not errors, 'claims answered 201 or 204',
            'claims answered %s' % sorted(set(errors)))
    print('bench: post %d messages (batches of 10, %d producers) %.1f s '
          '%.0f messages/s; claim+delete (limit %d, delete with claim id, '
          '%d consumers, %d claims) %.1f s %.0f messages/s; ratio %.2f'
          % (o.messages, producers, post_s, o.messages / post_s,
             o.limit, o.claimers, claims, claim_s, done.value / claim_s,
             (done.value / claim_s) / (o.messages / post_s)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--mongodb', required=True)
    ap.add_argument('--project', required=True)
    ap.add_argument('--queue')
    ap.add_argument('--messages', type=int)
    ap.add_argument('--claimers', type=int, default=8)
    ap.add_argument('--producers', type=int)
    ap.add_argument('--limit', type=int, default=10)
    ap.add_argument('--timeout', type=float, default=300,
                    help='seconds an answer may take (FerretDB under load)')
    ap.add_argument('--deadline', type=float, default=300)
    ap.add_argument('--store-errors', type=int, default=0,
                    help='5xx answers tolerated (a consumer retries them); '
                         'nothing may be lost or held twice either way')
    ap.add_argument('scenario', choices=('exclusive', 'delivery',
                                         'lifecycle', 'bench'))
    o = ap.parse_args()
    o.abandon = True
    o.queue = o.queue or '%s-%d' % (o.scenario, os.getpid())
    o.path = '/v2/queues/' + o.queue
    if o.messages is None:
        o.messages = {'exclusive': 2000, 'delivery': 1000,
                      'bench': 1000}.get(o.scenario, 1)
    verdict = Verdict()
    {'exclusive': exclusive, 'delivery': delivery, 'lifecycle': lifecycle,
     'bench': bench}[o.scenario](o, verdict)
    verdict.report()
    print('FAILED' if verdict.failures() else 'OK')
    return 1 if verdict.failures() else 0


if __name__ == '__main__':
    sys.exit(main())
