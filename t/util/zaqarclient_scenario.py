#!/usr/bin/python3
# A scenario driven by the real Zaqar client (Debian's python3-zaqarclient,
# API v2, noauth) against a running msgbus:
#
#   zaqarclient_scenario.py URL PROJECT
#
# It creates a queue with metadata (PUT, then the client's JSON-Patch),
# posts a message and a batch, walks the messages page by page through the
# "next" links, reads them by ids and one by one, deletes one, deletes two
# by ids, pops, reads the stats, claims (read back, renewed, a message
# deleted with its claim id and refused without, released and claimed
# again), subscribes (made, made again, listed page by page, updated,
# deleted, purged), and deletes the queue.  Nothing in it knows
# msgbus, and but for the subscriptions it passed against Zaqar 15 itself
# (python3-zaqar's server, noauth, on FerretDB: there with the one body
# FerretDB cannot store as BSON, an array directly inside an array,
# changed).
#
# Prints each assertion as it holds, "ok - WHAT" (t/util/verdict.py), and
# stops at the first that does not ("not ok - WHAT" with what it got) or
# at an error (its traceback); then OK, or FAILED.  Exit status 0 or 1.
import os
import sys
import traceback
import uuid

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from verdict import Verdict             # noqa: E402

from zaqarclient.queues import client
from zaqarclient.queues.v2 import message
from zaqarclient.transport import errors

QUEUE = 'zaqarclient-scenario'
TTL = 600

# every JSON type, nested, and text that json.dumps escapes (\u, surrogates)
BODIES = [
    {'event': 'single', 'n': 0},
    {'event': 'batch', 'n': 1, 'tags': ['a', ['b', {'c': None}]]},
    'une cha\u00eene \u00e0 \u00e9chapper \u2713 \U0001f600 "quoted" \\ \n',
    42,
    -3.25,
    True,
    None,
    [1, 2.5, 'three', False, {}],
    {'empty': [], 'nested': {'deep': {'deeper': [None, True, 1e+20]}}},
    '',
]


V = Verdict()


class Failed(Exception):
    """an assertion did not hold: the scenario stops there"""


def check(cond, what, *got):
    if not V.check(cond, what, 'got %r' % (got,) if got else None):
        raise Failed(what)


def equal(got, expected, what):
    if not V.check(got == expected, what,
                   'got %r, expected %r' % (got, expected)):
        raise Failed(what)


def gone(what, fn, *args, error=errors.ResourceNotFound):
    """fn(*args) must fail with error"""
    try:
        fn(*args)
    except error:
        V.check(True, what)
        return
    V.fail(what, 'no %s' % error.__name__)
    raise Failed(what)


def new_client(url, project, client_uuid=None):
    conf = {'auth_opts': {'backend': 'noauth',
                          'options': {'os_project_id': project}}}
    if client_uuid:
        conf['client_uuid'] = client_uuid
    return client.Client(url, version=2, conf=conf)


def count_pages(cli):
    """Counts the pages the client fetches through links (follow)."""
    pages = []
    follow = cli.follow

    def counted(ref):
        pages.append(ref)
        return follow(ref)

    cli.follow = counted
    return pages


def mid(m):
    """A message's id: a claim read back (GET) gives the client's v1
    messages, which keep it in _id."""
    return getattr(m, 'id', None) or m._id


def listed(queue, **params):
    return list(queue.messages(**params).stream())


def scenario(url, project):
    cli = new_client(url, project)
    pages = count_pages(cli)
    href = '/v2/queues/%s/messages/' % QUEUE

    # ------------------------------------------------------------ queue
    queue = cli.queue(QUEUE, force_create=True)          # PUT
    meta = {'description': 'zaqarclient scenario', 'owner': 'msgbus',
            'limits': {'tags': ['a', 'b'], 'n': 3}}
    got = queue.metadata(new_meta=meta)                   # GET + PATCH
    for key, value in meta.items():
        equal(got.get(key), value, 'metadata %s after the patch' % key)
    equal(got.get('_default_message_ttl'), 3600, 'reserved default ttl')

    meta = {'description': 'changed', 'extra': 1}         # replace, add, remove
    got = queue.metadata(new_meta=meta)
    equal(got.get('description'), 'changed', 'replaced metadata')
    equal(got.get('extra'), 1, 'added metadata')
    check('owner' not in got and 'limits' not in got,
          'removed metadata is gone', got)

    got = queue.metadata(force_reload=True)
    equal({k: v for k, v in got.items() if not k.startswith('_')}, meta,
          'metadata read back')

    queues, _ = cli.queues(detailed=True)
    mine = [q for q in queues if q.name == QUEUE]
    equal(len(mine), 1, 'the queue is listed once')
    equal({k: v for k, v in mine[0].metadata().items()
           if not k.startswith('_')}, meta, 'listed metadata')

    # ------------------------------------------------------------- post
    res = queue.post({'body': BODIES[0], 'ttl': TTL})
    equal(len(res['resources']), 1, 'one resource for one message')
    ids = [h.rsplit('/', 1)[1] for h in res['resources']]
    check(res['resources'][0].startswith(href), 'resource href', res)

    res = queue.post([{'body': b, 'ttl': TTL} for b in BODIES[1:]])
    equal(len(res['resources']), len(BODIES) - 1, 'resources of the batch')
    ids += [h.rsplit('/', 1)[1] for h in res['resources']]
    equal(len(set(ids)), len(BODIES), 'distinct ids')

    # ----------------------------------------------- listing, paginated
    del pages[:]
    msgs = listed(queue, echo=True, limit=3)
    equal([m.id for m in msgs], ids, 'ids in posting order, each once')
    equal([m.body for m in msgs], BODIES, 'bodies in posting order')
    equal([m.ttl for m in msgs], [TTL] * len(msgs), 'each message\'s ttl')
    check(all(0 <= m.age < 120 for m in msgs),
          'each message\'s age, under 2 minutes', [m.age for m in msgs])
    equal([m.href for m in msgs], [href + m.id for m in msgs],
          'each message\'s href')
    # 10 messages, 3 a page: 3 more pages with messages, one empty
    equal(len(pages), 4, 'pages fetched through "next" links')

    msgs = listed(queue, echo=True)                     # the default limit
    equal([m.id for m in msgs], ids, 'a listing with the default limit')

    # without echo a client does not see its own messages; others do
    equal(listed(queue, limit=3), [], 'no echo: own messages hidden')
    other = new_client(url, project, str(uuid.uuid4()))
    oq = other.queue(QUEUE)
    equal([m.id for m in listed(oq, limit=4)], ids,
          'another client sees them without echo')

    # another project does not see the queue or its messages
    stranger = new_client(url, project + '-other').queue(QUEUE)
    equal(listed(stranger, echo=True), [], 'another project sees nothing')

    # ---------------------------------------------------- get by ids
    some = [ids[7], ids[1], ids[4]]
    got = {m.id: m.body for m in queue.messages(*some)}
    equal(got, {i: BODIES[ids.index(i)] for i in some}, 'messages by ids')

    # ------------------------------------------------------- get one
    m = queue.message(ids[2])
    equal((m.id, m.body, m.ttl), (ids[2], BODIES[2], TTL), 'one message')
    equal(m.href, href + ids[2], 'href of one message')

    # ---------------------------------------------------- delete one
    m.delete()
    gone('a deleted message is gone', queue.message, ids[2])
    queue.delete_messages(ids[3], ids[5])
    left = [i for i in ids if i not in (ids[2], ids[3], ids[5])]
    equal([m.id for m in listed(queue, echo=True, limit=3)], left,
          'listing after the deletes')

    # ---------------------------------------------------------- stats
    stats = queue.stats['messages']
    equal((stats['total'], stats['free'], stats['claimed']),
          (len(left), len(left), 0), 'stats counts')
    equal(stats['oldest']['href'], href + left[0], 'oldest message')
    equal(stats['newest']['href'], href + left[-1], 'newest message')

    # ------------------------------------------------------------ pop
    popped = list(queue.pop(3))
    equal(len(popped), 3, 'popped messages')
    equal(sorted((m.id, repr(m.body)) for m in popped),
          sorted((i, repr(BODIES[ids.index(i)])) for i in left[:3]),
          'pop takes the oldest')
    left = left[3:]
    equal([m.id for m in listed(queue, echo=True, limit=3)], left,
          'listing after the pop')
    stats = queue.stats['messages']
    equal(stats['total'], len(left), 'stats after the pop')

    # --------------------------------------------------------- claims
    equal(len(left), 4, 'messages left to claim')
    cl = queue.claim(ttl=120, grace=60, limit=2)
    got = list(cl)
    equal([m.id for m in got], left[:2], 'a claim takes the oldest')
    equal([m.claim_id for m in got], [cl.id] * len(got),
          'the claim id in the claimed messages\' hrefs')
    equal([m.body for m in got], [BODIES[ids.index(m.id)] for m in got],
          'the claimed messages\' bodies')
    same = queue.claim(id=cl.id)
    equal(sorted(mid(m) for m in same), sorted(left[:2]), 'the claim read')
    equal(same.ttl, 120, 'the claim\'s ttl')
    check(0 <= same.age < 60, 'the claim\'s age', same.age)
    equal([m.id for m in listed(queue, echo=True)], left[2:],
          'claimed messages are not listed')
    equal([m.id for m in listed(queue, echo=True, include_claimed=True)],
          left, 'include_claimed lists them')
    stats = queue.stats['messages']
    equal((stats['claimed'], stats['free']), (2, 2), 'stats of a claim')

    rest = queue.claim(ttl=60, grace=60, limit=10)
    equal([m.id for m in rest], left[2:], 'a second claim takes the rest')
    empty = queue.claim(ttl=60, grace=60)
    equal((empty.id, list(empty)), (None, []), 'nothing left to claim')

    # renew (PATCH)
    cl.update(ttl=300, grace=60)
    equal(queue.claim(id=cl.id).ttl, 300, 'the renewed claim\'s ttl')

    # a claimed message is deleted with its claim id only
    m = got[0]
    bare = message.Message(queue, m.ttl, m.age, m.body, href=href + m.id)
    gone('a claimed message is not deleted without its claim id',
         bare.delete, error=errors.ForbiddenError)
    m.delete()
    gone('a message deleted with its claim id is gone', queue.message, m.id)
    equal([mid(x) for x in queue.claim(id=cl.id)], [left[1]],
          'the claim after one of its messages was deleted')

    # release (DELETE): its message is claimable at once
    cl.delete()
    gone('a released claim is gone', lambda: queue.claim(id=cl.id).ttl)
    again = queue.claim(ttl=60, grace=60)
    equal([x.id for x in again], [left[1]], 'a released message, claimed')
    rest.delete()
    left = left[1:]

    # --------------------------------------------------- subscriptions
    hook = 'http://127.0.0.1:9/zaqarclient-scenario'
    sub = cli.subscription(QUEUE, subscriber=hook, ttl=600,
                           options={'post_headers': {'X-Scenario': '1'}})
    check(sub.id, 'a subscription made', sub.id)
    equal((sub.subscriber, sub.ttl, sub.options, sub.confirmed),
          (hook, 600, {'post_headers': {'X-Scenario': '1'}}, False),
          'the subscription read back')
    equal(cli.subscription(QUEUE, subscriber=hook, ttl=600).id, sub.id,
          'made again before it is confirmed: the same subscription')
    other = cli.subscription(QUEUE, subscriber=hook + '/2', ttl=3600)
    del pages[:]
    listed_subs = list(cli.subscriptions(QUEUE, limit=1).stream())
    equal([x.id for x in listed_subs], sorted([sub.id, other.id]),
          'the subscriptions listed, page by page')
    equal(len(pages), 2, 'subscription pages fetched through "next" links')
    equal([x.id for x in queue.subscriptions()], sorted([sub.id, other.id]),
          'the queue\'s subscriptions')
    sub.update({'ttl': 1200, 'options': {'post_data': {'n': 1}}})
    got = cli.subscription(QUEUE, id=sub.id)
    equal((got.subscriber, got.ttl, got.options), (hook, 1200,
                                                   {'post_data': {'n': 1}}),
          'the updated subscription')
    stranger = new_client(url, project + '-other')
    equal(list(stranger.subscriptions(QUEUE)), [],
          'another project sees no subscription')
    sub.delete()
    gone('a deleted subscription is gone',
         lambda: cli.subscription(QUEUE, id=sub.id))
    equal([x.id for x in cli.subscriptions(QUEUE)], [other.id],
          'the subscriptions after the deletion')
    queue.purge(resource_types=['subscriptions'])
    equal(list(cli.subscriptions(QUEUE)), [], 'a purge of subscriptions')

    # ----------------------------------------------------- queue delete
    queue.delete()
    queues, _ = cli.queues()
    check(QUEUE not in [q.name for q in queues],
          'the deleted queue is not listed')
    equal(queue.stats['messages']['total'], 0, 'stats of the deleted queue')
    equal(listed(queue, echo=True), [], 'messages of the deleted queue')
    gone('a message of the deleted queue is gone', queue.message, left[0])


def main():
    url, project = sys.argv[1:3]
    error = None
    try:
        scenario(url, project)
    except Failed:
        pass
    except Exception:
        error = traceback.format_exc()
        V.fail('the scenario runs to its end without an error',
               error.strip().splitlines()[-1])
    else:
        V.check(True, 'the scenario runs to its end without an error')
    V.report()
    if error:
        print(error, end='')
    print('FAILED' if V.failures() else 'OK')
    return 1 if V.failures() else 0


if __name__ == '__main__':
    sys.exit(main())
