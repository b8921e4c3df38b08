# Tenant isolation: projects A and B have queues of the same name; no
# endpoint lets B see, count, pop, purge or delete A's messages, and A's
# message ids in B's requests behave exactly as ids that do not exist.
# With msgbus_project bound to a variable, X-Project-ID cannot override.
#
# Both projects' messages are written into the store before the tests
# (Zaqar's document shape, ids chosen here), so requests can name them.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;

my $run = "t022-$$-" . time;
$ENV{TEST_NGINX_A} = "a-$run";
$ENV{TEST_NGINX_B} = "b-$run";

# ids: 24 hex digits, unique per run
my $stamp = sprintf '%08x', time;
our @A = map { sprintf '%s%08x%08x', $stamp, $$, 0xa0 + $_ } 1 .. 3;
our @B = map { sprintf '%s%08x%08x', $stamp, $$, 0xb0 + $_ } 1 .. 2;

sub seed {
    my ($project, $queue, @ids) = @_;
    my $py = <<'PY';
import datetime, sys, zlib, pymongo
from bson import ObjectId
uri, project, queue = sys.argv[1:4]
ids = sys.argv[4:]
client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
db = pymongo.uri_parser.parse_uri(uri)['database']
scoped = project + '/' + queue
part = zlib.crc32((project + queue).encode()) % 2
now = datetime.datetime.utcnow().replace(microsecond=0)
ts = int((now - datetime.datetime(1970, 1, 1)).total_seconds())
client[db + '_queues']['queues'].insert_one(
    {'p_q': scoped, 'm': {'owner': project}, 'c': {'v': len(ids) + 1, 't': ts}})
client['%s_messages_p%d' % (db, part)]['messages'].insert_many(
    [{'_id': ObjectId(i), 'p_q': scoped, 't': 3600,
      'e': now + datetime.timedelta(seconds=3600), 'u': 'seed',
      'c': {'id': None, 'e': ts, 'c': 0}, 'd': ts,
      'b': {'owner': project, 'n': n}, 'k': n + 1, 'tx': None}
     for n, i in enumerate(ids)])
PY
    system('/usr/bin/python3', '-c', $py, $ENV{TEST_NGINX_MONGODB_URI},
           $project, $queue, @ids) == 0
        or die "seeding $project failed";
}

sub count { Msgbus::Test::count_messages(@_) }

seed($ENV{TEST_NGINX_A}, 'shared', @A);
seed($ENV{TEST_NGINX_B}, 'shared', @B);

our $AIds = join ',', @A;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: B lists, fetches and counts only its own messages
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_B}"
--- request eval
["GET /v2/queues/shared/messages?echo=true",
 "GET /v2/queues/shared/messages?ids=$main::AIds",
 "GET /v2/queues/shared/messages/$main::A[0]",
 "GET /v2/queues/shared/stats",
 "GET /v2/queues/shared",
 "GET /v2/queues?detailed=true"]
--- error_code eval
[200, 404, 404, 200, 200, 200]
--- response_body_like eval
[qr/^\{"messages": \[\{"id": "$main::B[0]", [^\]]*"body": \{"owner": "$ENV{TEST_NGINX_B}", "n": 0\}\}, \{"id": "$main::B[1]", [^\]]*"n": 1\}\}\], "links": /,
 qr/^\{"title": "Not found", "description": "No messages with IDs: \['$main::A[0]', '$main::A[1]', '$main::A[2]'\] found in the queue shared for project $ENV{TEST_NGINX_B}\."\}$/,
 qr/^\{"title": "Not found", "description": "Message $main::A[0] does not exist in queue shared for project $ENV{TEST_NGINX_B}"\}$/,
 qr/^\{"messages": \{"claimed": 0, "free": 2, "total": 2, "oldest": \{[^}]*"href": "\/v2\/queues\/shared\/messages\/$main::B[0]"\}, "newest": \{[^}]*"href": "\/v2\/queues\/shared\/messages\/$main::B[1]"\}\}\}$/,
 qr/^\{"owner": "$ENV{TEST_NGINX_B}", /,
 qr/^\{"queues": \[\{"name": "shared", "metadata": \{"owner": "$ENV{TEST_NGINX_B}", [^}]*\}, "href": "\/v2\/queues\/shared"\}\], /]
--- no_error_log
[error]



=== TEST 2: B's deletes, pops and purge with A's ids answer as for unknown ids
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_B}"
--- request eval
["DELETE /v2/queues/shared/messages/$main::A[0]",
 "DELETE /v2/queues/shared/messages/$main::A[1]?claim_id=$main::A[2]",
 "DELETE /v2/queues/shared/messages?ids=$main::AIds",
 "DELETE /v2/queues/shared/messages?pop=20",
 "POST /v2/queues/shared/purge",
 "DELETE /v2/queues/shared"]
--- error_code eval
[204, 204, 204, 200, 204, 204]
--- response_body_like eval
[qr/^$/, qr/^$/, qr/^$/,
 qr/^\{"messages": \[\{"id": "$main::B[0]", [^\]]*\}, \{"id": "$main::B[1]", [^\]]*\}\]\}$/,
 qr/^$/, qr/^$/]
--- no_error_log
[error]



=== TEST 3: A still has all its messages and its queue
--- init
Test::More::is(main::count($ENV{TEST_NGINX_A}, 'shared'), 3, 'TEST 3: A has its 3 messages in the store');
Test::More::is(main::count($ENV{TEST_NGINX_B}, 'shared'), 0, 'TEST 3: B has none left');
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_A}"
--- request eval
["GET /v2/queues/shared/messages?ids=$main::AIds",
 "GET /v2/queues/shared/stats",
 "HEAD /v2/queues/shared"]
--- error_code eval
[200, 200, 204]
--- response_body_like eval
[qr/^\{"messages": \[\{"id": "$main::A[0]", .*"id": "$main::A[1]", .*"id": "$main::A[2]", [^\]]*\}\]\}$/,
 qr/^\{"messages": \{"claimed": 0, "free": 3, "total": 3, /,
 qr/^$/]



=== TEST 4: msgbus_project $variable: the variable is the project, X-Project-ID is ignored
--- config
    location / {
        set $tenant "";
        if ($http_authorization = "Bearer token-b") { set $tenant "$TEST_NGINX_B"; }
        msgbus_project $tenant;
        msgbus;
    }
--- more_headers eval
["Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nAuthorization: Bearer token-b\nX-Project-ID: $ENV{TEST_NGINX_A}",
 "Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nAuthorization: Bearer token-b\nX-Project-ID: $ENV{TEST_NGINX_A}",
 "Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nAuthorization: Bearer token-b\nX-Project-ID: $ENV{TEST_NGINX_A}",
 "Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_A}"]
--- request eval
["GET /v2/queues/shared/messages/$main::A[0]",
 "DELETE /v2/queues/shared/messages?pop=20",
 "GET /v2/queues/shared/stats",
 "GET /v2/queues/shared/stats"]
--- error_code eval
[404, 200, 200, 400]
--- response_body eval
["{\"title\": \"Not found\", \"description\": \"Message $main::A[0] does not exist in queue shared for project $ENV{TEST_NGINX_B}\"}",
 '{"messages": []}',
 '{"messages": {"claimed": 0, "free": 0, "total": 0}}',
 '{"title": "Empty project header not allowed", "description": "X-PROJECT-ID cannot be an empty string. Specify the right header X-PROJECT-ID and retry."}']



=== TEST 5: ... and A's messages are untouched: the store still has its 3
--- init
Msgbus::Test::verdict("A's messages in the store: "
                      . main::count($ENV{TEST_NGINX_A}, 'shared'));
--- config
    location / { msgbus; }
    location = /verdict { root html; }
--- request
GET /verdict
--- response_body
A's messages in the store: 3
