# Expiry: a message whose "e" (expires) has passed is gone for every read
# and count at once, whether or not it is still stored.  Two things delete
# it from the store: the TTL index "ttl" msgbus creates with Zaqar's other
# indexes (the store's own TTL monitor, about once a minute on MongoDB and
# on the embedded store alike), and one worker's timer
# (msgbus_expiry_purge_interval), which also takes the tombstones of
# deleted messages.  The expired messages are written straight into the
# store in Zaqar's shape, with "e" in the past.
#
# Blocks 1-5 use a database of their own where nothing posts, so no TTL
# index races the purge timer there (and a page, which names Zaqar's
# "active" index, finds none and is read without it); blocks 6-7 one where
# msgbus posts and creates its indexes.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;

$ENV{TEST_NGINX_PROJECT} = "t026-$$-" . time;

# the suite's store, database <db>_t026<suffix>
sub db_uri {
    my ($suffix) = @_;
    my ($base, $opts) = split /\?/, $ENV{TEST_NGINX_MONGODB_URI}, 2;
    $base =~ s{/([^/]*)$}{'/' . ($1 eq '' ? 'msgbus' : $1) . "_t026$suffix"}e;
    return $base . (defined $opts ? "?$opts" : '');
}

$ENV{TEST_NGINX_EXPIRY_URI} = db_uri('');
$ENV{TEST_NGINX_TTL_URI} = db_uri('ttl');

# store N messages in PROJECT/QUEUE that expire AGE seconds from now
# (negative: expired), markers from FIRST, in the database of URI (default:
# the expiry blocks'); prints nothing
sub store {
    my ($queue, $n, $age, $first, $uri) = @_;
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
    system('/usr/bin/python3', '-c', $py, $uri // $ENV{TEST_NGINX_EXPIRY_URI},
           $ENV{TEST_NGINX_PROJECT}, $queue, $n, $age, $first) == 0
        or die "storing messages failed";
}

sub count {
    my ($queue, $uri) = @_;
    return Msgbus::Test::mongo($uri // $ENV{TEST_NGINX_EXPIRY_URI},
                               'count-messages', $ENV{TEST_NGINX_PROJECT},
                               $queue);
}

# the options of the index "ttl" of QUEUE's partition, as JSON ("" if none)
sub ttl_index {
    my ($queue) = @_;
    my $py = <<'PY';
import json, sys, zlib, pymongo
uri, project, queue = sys.argv[1:4]
client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
db = pymongo.uri_parser.parse_uri(uri)['database']
part = zlib.crc32((project + queue).encode()) % 2
for ix in client['%s_messages_p%d' % (db, part)]['messages'].list_indexes():
    if ix['name'] == 'ttl':
        print(json.dumps({'key': dict(ix['key']),
                          'expireAfterSeconds': ix.get('expireAfterSeconds')},
                         sort_keys=True))
PY
    open my $fh, '-|', '/usr/bin/python3', '-c', $py, $ENV{TEST_NGINX_TTL_URI},
         $ENV{TEST_NGINX_PROJECT}, $queue
        or die "python3: $!";
    my $out = do { local $/; <$fh> };
    close $fh or die "listing the indexes failed";
    chomp $out;
    return $out;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: expired messages are not listed, counted or fetched
--- init
main::store('exp', 3, -120, 1);
main::store('exp', 2, 3600, 4);
--- http_config
    msgbus_mongodb "$TEST_NGINX_EXPIRY_URI";
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
Msgbus::Test::verdict('messages of exp in the store: ' . main::count('exp'));
--- http_config
    msgbus_mongodb "$TEST_NGINX_EXPIRY_URI";
--- config
    location / { msgbus; }
    location = /verdict { root html; }
--- request
GET /verdict
--- response_body
messages of exp in the store: 3



=== TEST 3: the purge timer deletes them from the store
--- init
main::store('live', 2, 3600, 1);
--- http_config
    msgbus_mongodb "$TEST_NGINX_EXPIRY_URI";
    msgbus_expiry_purge_interval 500ms;
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204
--- wait: 1.5
--- error_log eval
qr/msgbus: expiry purge removed [1-9]\d* expired messages and \d+ tombstones of deleted ones/
--- no_error_log
[error]



=== TEST 4: ... and only them
--- init
Test::More::is(main::count('exp'), 0, 'TEST 4: the expired messages are gone');
Test::More::is(main::count('live'), 2, 'TEST 4: the live ones stay');
--- http_config
    msgbus_mongodb "$TEST_NGINX_EXPIRY_URI";
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
    msgbus_mongodb "$TEST_NGINX_EXPIRY_URI";
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



=== TEST 6: the first post creates Zaqar's TTL index on "e", expiring at "e"
--- http_config
    msgbus_mongodb "$TEST_NGINX_TTL_URI";
    msgbus_expiry_purge_interval 0;
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request
POST /v2/queues/ttl/messages
{"messages": [{"body": "stays", "ttl": 3600}]}
--- error_code: 201
--- response_body_like chomp
^\{"resources": \["/v2/queues/ttl/messages/[0-9a-f]{24}"\]\}$
--- no_error_log
[error]
[warn]
the store has no TTL index



=== TEST 7: ... and the store deletes an expired message by itself, the purge off
--- init
Test::More::is(main::ttl_index('ttl'),
               '{"expireAfterSeconds": 0, "key": {"e": 1}}',
               'TEST 7: the index "ttl" is {e: 1}, expireAfterSeconds 0');
main::store('ttl', 2, -5, 100, $ENV{TEST_NGINX_TTL_URI});
my $left;
for (1 .. 150) {        # the monitor runs once a minute
    $left = main::count('ttl', $ENV{TEST_NGINX_TTL_URI});
    last if $left == 1;
    Time::HiRes::sleep(1);
}
Test::More::is($left, 1, 'TEST 7: the expired messages were deleted by the store');
--- http_config
    msgbus_mongodb "$TEST_NGINX_TTL_URI";
    msgbus_expiry_purge_interval 0;
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request
GET /v2/queues/ttl/messages?echo=true
--- error_code: 200
--- response_body_like chomp
^\{"messages": \[\{"id": "\w{24}", "href": "[^"]+", "ttl": 3600, "age": \d+, "body": "stays"\}\]



=== TEST 8: a page where Zaqar's "active" index is missing is read without naming it
--- http_config
    msgbus_mongodb "$TEST_NGINX_EXPIRY_URI";
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request
GET /v2/queues/live/messages?echo=true
--- error_code: 200
--- response_body_like chomp
^\{"messages": \[\{"id": "\w{24}", "href": "[^"]+", "ttl": 60, "age": \d+, "body": \{"n": 0\}\}, \{"id": "\w{24}", "href": "[^"]+", "ttl": 60, "age": \d+, "body": \{"n": 1\}\}\]
--- error_log
has no index {p_q: 1, k: 1, c.e: 1}
--- no_error_log
[error]
