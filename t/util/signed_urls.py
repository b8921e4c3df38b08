#!/usr/bin/python3
# Zaqar's pre-signed URLs against a running msgbus:
#
#   signed_urls.py URL PROJECT KEY
#
# Shares a queue (POST .../share) and checks each answer's signature with
# Zaqar's own code (python3-zaqar's zaqar.common.urls.create_signed_url,
# with the same key); then uses the signatures as Zaqar's clients do: the
# URL-* headers (by hand and through python3-zaqarclient's "signed-url"
# backend, after its queue.signed_url()) and msgbus's query arguments.
#
# Prints each assertion, "ok - WHAT" or "not ok - WHAT" with its reasons
# (t/util/verdict.py); then OK, or FAILED (exit status 1).
import datetime
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from verdict import Verdict, run_scenario   # noqa: E402

from zaqar.common import urls               # noqa: E402
from zaqarclient.queues import client       # noqa: E402

QUEUE = 'signed.q-1'
CLIENT_ID = str(uuid.uuid4())

V = Verdict(
    'share answers 200 with paths, methods, project, expires, signature',
    'share signs as Zaqar signs (zaqar.common.urls)',
    'share without paths or methods: messages and GET, a day ahead',
    'share of an expiry with a zone: written in UTC as Zaqar writes it',
    'a signed POST of messages without other credentials: 201',
    'a signed GET of messages: 200 with the posted message',
    'a signed GET of one message (a path below the signed one): 200',
    'the signature as query arguments (msgbus): 200',
    'a method not signed: 404',
    'a path not signed: 404',
    'another project: 404',
    'zaqarclient: queue.signed_url() signs as Zaqar signs',
    'zaqarclient: a signed-url client posts and lists',
    'expiry forms read as Zaqar reads them (iso8601, int(), the past)',
)

# expiries share is given, each compared with Zaqar's reading of it
EXPIRIES = [
    '2030-01-02T03:04:05', '2030-01-02 03:04:05', '2030-1-2T03:04:05',
    '20300102T030405', '2030-01-02T03:04', '2030-01-02T03', '2030-01-02',
    '2030', '2030-01', '203001', '2030-01-02T03:04:05Z',
    '2030-01-02T03:04:05+0530', '2030-01-02T03:04:05-05',
    '2030-01-02T03:04:05+05:30', '2030-01-02T03:04:05.123456789',
    '2030-01-02T03:04:05,5', '2030-13-01', '2030-02-29', '2028-02-29',
    '2030-01-02T24:00:00', '2030-01-02T03:04:60', '2030-01-02T3:04:05',
    ' 2030-01-02', '2030-01-02T03:04:05+24:00', '2030-01-02T030405',
    '2030-01-02T03:0405', '0', '-1', '1_000', '+5', ' 7 ', '00',
    '2030-01-02T03:04:05.', '2030-01-02T03:04:05Zjunk', '2001-01-01',
    '2030-01-01T00:30:00+01:00', '9999-12-31T23:59:59',
]


def request(method, path, body=None, headers=None, project=None):
    h = {'Client-ID': CLIENT_ID, 'Content-Type': 'application/json',
         'X-Project-ID': project or PROJECT}
    h.update(headers or {})
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + path, data=data, method=method,
                                 headers=h)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read().decode()
            return resp.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        return e.code, json.loads(text) if text else None


def zaqar(doc):
    return urls.create_signed_url(KEY, doc['paths'], project=doc['project'],
                                  expires=doc['expires'],
                                  methods=doc['methods'])


def signed_headers(doc):
    return {'URL-Signature': doc['signature'],
            'URL-Expires': doc['expires'],
            'URL-Methods': ','.join(doc['methods']),
            'URL-Paths': ','.join(doc['paths'])}


def share_checks():
    ahead = (datetime.datetime.utcnow()
             + datetime.timedelta(hours=2)).strftime('%Y-%m-%dT%H:%M:%S')
    st, doc = request('POST', '/v2/queues/%s/share' % QUEUE,
                      {'paths': ['messages', 'claims'],
                       'methods': ['POST', 'GET'], 'expires': ahead})
    V.check(st == 200 and sorted(doc) == ['expires', 'methods', 'paths',
                                          'project', 'signature']
            and doc['paths'] == ['/v2/queues/%s/claims' % QUEUE,
                                 '/v2/queues/%s/messages' % QUEUE]
            and doc['methods'] == ['GET', 'POST']
            and doc['project'] == PROJECT and doc['expires'] == ahead,
            V.whats[0], '%s %r' % (st, doc))
    V.check(st == 200 and zaqar(doc)['signature'] == doc['signature'],
            V.whats[1], '%r' % (doc,))

    st, plain = request('POST', '/v2/queues/%s/share' % QUEUE, {})
    day = datetime.datetime.utcnow() + datetime.timedelta(days=1)
    got = datetime.datetime.strptime(plain['expires'], '%Y-%m-%dT%H:%M:%S') \
        if st == 200 else None
    V.check(st == 200 and plain['paths'] == ['/v2/queues/%s/messages' % QUEUE]
            and plain['methods'] == ['GET']
            and abs((got - day).total_seconds()) < 60
            and zaqar(plain)['signature'] == plain['signature'],
            V.whats[2], '%s %r' % (st, plain))

    zoned = (datetime.datetime.utcnow() + datetime.timedelta(hours=3))
    text = (zoned + datetime.timedelta(hours=2)).strftime(
        '%Y-%m-%dT%H:%M:%S.250+02:00')
    st, z = request('POST', '/v2/queues/%s/share' % QUEUE,
                    {'expires': text})
    V.check(st == 200
            and z['expires'] == zoned.strftime('%Y-%m-%dT%H:%M:%S')
            and z['signature'] == urls.create_signed_url(
                KEY, z['paths'], project=PROJECT, expires=text)['signature'],
            V.whats[3], '%s %r for %s' % (st, z, text))
    return doc


def use_checks(doc):
    path = '/v2/queues/%s/messages' % QUEUE
    sig = signed_headers(doc)
    st, posted = request('POST', path, {'messages': [{'body': 'signed'}]},
                         headers=sig)
    V.check(st == 201, V.whats[4], '%s %r' % (st, posted))

    st, page = request('GET', path + '?echo=true', headers=sig)
    V.check(st == 200 and [m['body'] for m in page['messages']] == ['signed'],
            V.whats[5], '%s %r' % (st, page))

    if st == 201 or posted:
        href = posted['resources'][0] if posted else ''
        st, one = request('GET', href, headers=sig)
        V.check(st == 200 and one['body'] == 'signed', V.whats[6],
                '%s %r' % (st, one))

    q = urllib.parse.urlencode({'Signature': doc['signature'],
                                'Expires': doc['expires'],
                                'Methods': ','.join(doc['methods']),
                                'Paths': ','.join(doc['paths']),
                                'echo': 'true'})
    st, page = request('GET', path + '?' + q)
    V.check(st == 200 and len(page['messages']) == 1, V.whats[7],
            '%s %r' % (st, page))

    st, body = request('DELETE', path + '?pop=1', headers=sig)
    V.check(st == 404, V.whats[8], '%s %r' % (st, body))
    st, body = request('GET', '/v2/queues/%s/stats' % QUEUE, headers=sig)
    V.check(st == 404, V.whats[9], '%s %r' % (st, body))
    st, body = request('GET', path, headers=sig, project=PROJECT + 'x')
    V.check(st == 404, V.whats[10], '%s %r' % (st, body))


def client_checks():
    noauth = client.Client(URL, version=2, conf={
        'auth_opts': {'backend': 'noauth',
                      'options': {'os_project_id': PROJECT}}})
    doc = noauth.queue('signed-client').signed_url(
        paths=['messages'], ttl_seconds=600, methods=['GET', 'POST'])
    V.check(zaqar(doc)['signature'] == doc['signature'], V.whats[11],
            '%r' % (doc,))

    signed = client.Client(URL, version=2, conf={
        'auth_opts': {'backend': 'signed-url',
                      'options': {'signature': doc['signature'],
                                  'expires': doc['expires'],
                                  'methods': doc['methods'],
                                  'paths': doc['paths'],
                                  'os_project_id': PROJECT}}})
    q = signed.queue('signed-client')
    q.post({'body': 'from a signed client', 'ttl': 600})
    bodies = [m.body for m in q.messages(echo=True)]
    V.check(bodies == ['from a signed client'], V.whats[12], '%r' % bodies)


def expiry_checks():
    what = V.whats[13]
    for text in EXPIRIES:
        st, got = request('POST', '/v2/queues/%s/share' % QUEUE,
                          {'expires': text})
        try:
            want = urls.create_signed_url(KEY, ['/v2/queues/%s/messages'
                                                % QUEUE], project=PROJECT,
                                          expires=text)
        except ValueError as e:
            want = str(e)
        if isinstance(want, dict):
            V.check(st == 200 and got == want, what,
                    '%r: %s %r, Zaqar %r' % (text, st, got, want))
        elif want.startswith(('`expires`', 'Unable to parse')):
            V.check(st == 400 and got['description'] == want, what,
                    '%r: %s %r, Zaqar %r' % (text, st, got, want))
        else:
            V.check(st == 400, what,
                    '%r: %s %r, Zaqar %r' % (text, st, got, want))


def scenario():
    expiry_checks()
    doc = share_checks()
    use_checks(doc)
    client_checks()


if __name__ == '__main__':
    URL, PROJECT, KEY = sys.argv[1:4]
    port = int(URL.rsplit(':', 1)[1])
    run_scenario(port, scenario, V)
