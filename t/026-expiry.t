# Expiry: a message whose "e" (expires) has passed is gone for every read
# and count at once, whether or not it is still stored; one worker's
# timer (msgbus_expiry_purge_interval) deletes it from the store, since
# FerretDB has no TTL index.  The expired messages are written straight
# into the store in Zaqar's shape, with "e" in the past.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;

$ENV{TEST_NGINX_PROJECT} = "t026-$$-" . time;

# store N messages in PROJECT/QUEUE that expire AGE seconds from now
# (negative: expired), markers from FIRST; prints nothing
sub store {
    my ($queue, $n, $age, $first) = @_;
    my $py = <<'PY';
import datetime, sys, zlib, pymongo
uri, project, queue, n, age, first = sys.argv[1:7]
client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
db = pymongo.uri_parser.parse_uri(uri)['database']
part = zlib.crc32((project + queue).encode()) % 2
col = client['%s_messages_p%d' % (db, part)]['messages']
now = datetime.datetime.utcnow().replace(microsecond=0)
ts = int((now - datetime.datetime(1970, 1, 1)).total_seconds())
col.insert_many([{'p_q': project + '/' + queue, 't': 60,
                  'e': now + datetime.timedelta(seconds=int(age)),
                  'u': 'zaqar-client', 'c': {'id': None, 'e': ts, 'c': 0},
                  'd': ts, 'b': {'n': i}, 'k': int(first) + i, 'tx': None}
                 for i in range(int(n))])
PY
    system('/usr/bin/python3', '-c', $py, $ENV{TEST_NGINX_MONGODB_URI},
           $ENV{TEST_NGINX_PROJECT}, $queue, $n, $age, $first) == 0
        or die "storing messages failed";
}

sub count { Msgbus::Test::count_messages($ENV{TEST_NGINX_PROJECT}, $_[0]) }

no_shuffle();
run_tests();

__DATA__

=== TEST 1: expired messages are not listed, counted or fetched
--- init
main::store('exp', 3, -120, 1);
main::store('exp', 2, 3600, 4);
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["PUT /v2/queues/exp",
 "GET /v2/queues/exp/messages?echo=true",
 "GET /v2/queues/exp/stats",
 "DELETE /v2/queues/exp/messages?pop=5"]
--- error_code eval
[201, 200, 200, 200]
--- response_body_like eval
[qr/^$/,
 qr/^\{"messages": \[\{"id": "\w{24}", "href": "[^"]+", "ttl": 60, "age": \d+, "body": \{"n": 0\}\}, \{"id": "\w{24}", "href": "[^"]+", "ttl": 60, "age": \d+, "body": \{"n": 1\}\}\], "links": \[\{"rel": "next", "href": "\/v2\/queues\/exp\/messages\?echo=true&marker=5"\}\]\}$/,
 qr/^\{"messages": \{"claimed": 0, "free": 2, "total": 2, "oldest": /,
 qr/^\{"messages": \[\{"id": "\w{24}", "age": \d+, "ttl": 60, "claim_count": 0, "body": \{"n": 0\}, "claim_id": null\}, \{"id": "\w{24}", "age": \d+, "ttl": 60, "claim_count": 0, "body": \{"n": 1\}, "claim_id": null\}\]\}$/]
--- no_error_log
[error]



=== TEST 2: they are still stored (the purge runs every 60 s by default)
--- init
Test::More::is(main::count('exp'), 3, 'TEST 2: the 3 expired messages are still stored');
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204



=== TEST 3: the purge timer deletes them from the store
--- init
main::store('live', 2, 3600, 1);
--- http_config
    msgbus_mongodb "$TEST_NGINX_MONGODB_URI";
    msgbus_expiry_purge_interval 500ms;
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204
--- wait: 1.5
--- error_log eval
qr/msgbus: expiry purge deleted [1-9]\d* expired messages/
--- no_error_log
[error]



=== TEST 4: ... and only them
--- init
Test::More::is(main::count('exp'), 0, 'TEST 4: the expired messages are gone');
Test::More::is(main::count('live'), 2, 'TEST 4: the live ones stay');
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["PUT /v2/queues/live", "GET /v2/queues/live/stats"]
--- error_code eval
[201, 200]
--- response_body_like eval
[qr/^$/, qr/^\{"messages": \{"claimed": 0, "free": 2, "total": 2,/]



=== TEST 5: msgbus_expiry_purge_interval 0 turns the purge off
--- init
main::store('off', 1, -60, 1);
--- http_config
    msgbus_mongodb "$TEST_NGINX_MONGODB_URI";
    msgbus_expiry_purge_interval 0;
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204
--- wait: 1
--- no_error_log
expiry purge
[error]
