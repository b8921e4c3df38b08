#!/usr/bin/python3
# Zaqar's subscription confirmation (msgbus_subscription_confirmation on)
# against a running msgbus whose error log is at debug level:
#
#   subscription_confirm.py URL PROJECT ERROR_LOG KEY QUEUE ID
#
# ID is a subscription of QUEUE that is not confirmed.  PUT .../confirm
# {"confirmed": false} is sent Zaqar's UnsubscribeConfirmation (msgbus
# logs the message it hands the webhook engine at debug level); its
# fields are Zaqar's (zaqar/notification/notifier.py), its URL expires in
# the default subscription ttl (3600 s) and its signature is the one
# python3-zaqar's create_signed_url makes with KEY; the signed URL it
# gives then confirms the subscription (the URL-* headers and
# X-Project-ID, as a subscriber sends them back; and msgbus's query
# arguments), a signature altered is refused.  Then a POST of a new
# subscription (ttl 300) to QUEUE is sent the SubscriptionConfirmation,
# likewise checked and used.
#
# Prints each assertion, "ok - WHAT" or "not ok - WHAT" (t/util/verdict.py).
import datetime
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from verdict import Verdict, run_scenario   # noqa: E402

CLIENT = '3381af92-2b9e-11e3-b191-71861300734c'
V = Verdict()


def call(url, method, path, body=None, headers=None, project=None):
    h = {'Client-ID': CLIENT, 'Content-Type': 'application/json'}
    if project:
        h['X-Project-ID'] = project
    h.update(headers or {})
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, headers=h,
                                 method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def logged(error_log, sid, kind):
    """the last message msgbus handed the engine for subscription sid"""
    pattern = re.compile(r'msgbus subscriptions: confirmation to "[^"]*": '
                         r'(\{.*\})$')
    for _ in range(50):
        found = None
        with open(error_log, errors='replace') as f:
            for line in f:
                m = pattern.search(line.rstrip('\n'))
                if m and sid in m.group(1) and kind in m.group(1):
                    found = json.loads(m.group(1))
        if found:
            return found
        time.sleep(0.1)
    return None


def check_message(msg, kind, text, queue, sid, project, key, ttl, what):
    from zaqar.common import urls

    if not V.check(msg is not None, what + ': the message is handed over'):
        return
    path = '/v2/queues/%s/subscriptions/%s/confirm' % (queue, sid)
    V.check(list(msg) == ['Message_Type', 'Message', 'URL-Signature',
                          'URL-Methods', 'URL-Paths', 'X-Project-ID',
                          'URL-Expires', 'SubscribeBody', 'UnsubscribeBody'],
            what + ': Zaqar\'s fields in Zaqar\'s order', repr(list(msg)))
    V.check((msg['Message_Type'], msg['Message'], msg['URL-Methods'],
             msg['URL-Paths'], msg['X-Project-ID'], msg['SubscribeBody'],
             msg['UnsubscribeBody'])
            == (kind, text, 'PUT', path, project, {'confirmed': True},
                {'confirmed': False}),
            what + ': type, text, method, path, project, bodies', repr(msg))
    expires = datetime.datetime.strptime(msg['URL-Expires'],
                                         '%Y-%m-%dT%H:%M:%S')
    ahead = (expires - datetime.datetime.utcnow()).total_seconds()
    V.check(ttl - 5 <= ahead <= ttl + 1,
            what + ': the URL expires after the ttl', repr(ahead))
    # Zaqar signs str(now + ttl), a datetime
    signed = urls.create_signed_url(key, [path], project=project,
                                    expires=str(expires), methods=['PUT'])
    V.check(signed['signature'] == msg['URL-Signature']
            and signed['expires'] == msg['URL-Expires'],
            what + ': python3-zaqar\'s signature', '%r, %r' % (signed, msg))


def confirm_signed(url, msg, what, project):
    headers = {'URL-Signature': msg['URL-Signature'],
               'URL-Methods': msg['URL-Methods'],
               'URL-Paths': msg['URL-Paths'],
               'URL-Expires': msg['URL-Expires']}
    bad = dict(headers, **{'URL-Signature': '0' * 64})
    got = call(url, 'PUT', msg['URL-Paths'], {'confirmed': True}, bad,
               project=msg['X-Project-ID'])
    V.check(got[0] == 404, what + ': an altered signature is refused',
            repr(got))
    got = call(url, 'PUT', msg['URL-Paths'], {'confirmed': True}, headers,
               project=msg['X-Project-ID'])
    V.check(got == (204, ''), what + ': the signed URL confirms', repr(got))
    sub = msg['URL-Paths'][:-len('/confirm')]
    got = call(url, 'GET', sub, project=project)
    V.check(got[0] == 200 and json.loads(got[1]).get('confirmed') is True,
            what + ': confirmed', repr(got))


def scenario(url, project, error_log, key, queue, sid):
    got = call(url, 'PUT', '/v2/queues/%s/subscriptions/%s/confirm'
               % (queue, sid), {'confirmed': False}, project=project)
    V.check(got == (204, ''), 'unsubscribe: 204', repr(got))
    msg = logged(error_log, sid, 'UnsubscribeConfirmation')
    check_message(msg, 'UnsubscribeConfirmation',
                  'You have unsubscribed successfully to the queue: %s, you '
                  'can resubscribe it by using confirmed=True.' % queue,
                  queue, sid, project, key, 3600, 'unsubscribe')
    if msg:
        confirm_signed(url, msg, 'unsubscribe', project)
        args = urllib.parse.urlencode({
            'Signature': msg['URL-Signature'], 'Expires': msg['URL-Expires'],
            'Methods': 'PUT', 'Paths': msg['URL-Paths']})
        got = call(url, 'PUT', msg['URL-Paths'] + '?' + args,
                   {'confirmed': True}, project=project)
        V.check(got == (204, ''), 'unsubscribe: msgbus\'s query arguments '
                'sign it too', repr(got))

    got = call(url, 'POST', '/v2/queues/%s/subscriptions' % queue,
               {'subscriber': 'http://127.0.0.1:9/confirm-me', 'ttl': 300},
               project=project)
    V.check(got[0] == 201, 'subscribe: 201', repr(got))
    new = json.loads(got[1]).get('subscription_id', '') if got[0] == 201 \
        else 'none'
    msg = logged(error_log, new, 'SubscriptionConfirmation')
    check_message(msg, 'SubscriptionConfirmation',
                  'You have chosen to subscribe to the queue: %s' % queue,
                  queue, new, project, key, 300, 'subscribe')
    if msg:
        confirm_signed(url, msg, 'subscribe', project)


def main():
    url, project, error_log, key, queue, sid = sys.argv[1:7]

    def run():
        try:
            scenario(url, project, error_log, key, queue, sid)
        except Exception as e:                  # noqa: B902
            V.fail('the scenario runs to its end without an error', repr(e))
        else:
            V.check(True, 'the scenario runs to its end without an error')

    # waits for nginx (under valgrind it takes seconds), then reports
    run_scenario(urllib.parse.urlsplit(url).port, run, V)


if __name__ == '__main__':
    main()
