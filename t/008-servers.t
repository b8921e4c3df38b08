# Which servers the adapter talks to: the connection string's seed list,
# or an explicit upstream block; the writable server among them.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;
use Msgbus::MockMongo;

$ENV{TEST_NGINX_MOCK_PORT} ||= Msgbus::MockMongo::free_port();
($ENV{TEST_NGINX_STORE_HOSTPORT}) = $ENV{TEST_NGINX_MONGODB_URI} =~ m{^mongodb://(?:[^@/]*@)?([^/,?]+)};
$ENV{TEST_NGINX_DEAD_PORT} = Msgbus::Test::free_port();

no_shuffle();
run_tests();
Msgbus::MockMongo::stop();

__DATA__

=== TEST 1: an explicit upstream block: its servers are used, the string's hosts are not
--- http_config
    upstream store {
        server $TEST_NGINX_STORE_HOSTPORT max_fails=3 fail_timeout=5s;
    }
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_DEAD_PORT/msgbus_test" upstream=store;
--- config
    location / { msgbus; msgbus_admin on; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request eval
["GET /v2/ping", "GET /v2/health"]
--- error_code eval
[204, 200]
--- response_body_like eval
["^\$", qr/"servers": \[\{"name": "\Q$ENV{TEST_NGINX_STORE_HOSTPORT}\E", "role": "writable", "connections": 1, "idle": 0\}\]/]
--- no_error_log
[error]



=== TEST 2: an upstream that does not exist fails nginx -t
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:27017/msgbus_test" upstream=nowhere;
--- config
    location / { msgbus; }
--- must_die
--- error_log
msgbus_mongodb: no upstream "nowhere"



=== TEST 3: a bad parameter fails nginx -t
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:27017/msgbus_test" upstreams=x;
--- config
    location / { msgbus; }
--- must_die
--- error_log
msgbus_mongodb: invalid parameter "upstreams=x"



=== TEST 4: a secondary first in the seed list: commands go to the writable server
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MOCK_PORT,$TEST_NGINX_STORE_HOSTPORT/msgbus_test?replicaSet=rs0";
--- config
    location / { msgbus; msgbus_admin on; }
--- init
Msgbus::MockMongo::start(
    label  => 'a secondary',
    hello  => [isWritablePrimary => Msgbus::MockMongo::bool(0),
               secondary => Msgbus::MockMongo::bool(1),
               setName => Msgbus::MockMongo::string('rs0')],
    conns  => {},
);
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request
GET /v2/ping
--- error_code: 204
--- error_log eval
qr/msgbus mongo: 127\.0\.0\.1:\d+ is not writable/



=== TEST 5: ... the writable one is remembered and its connection reused
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request eval
["GET /v2/ping", "GET /v2/health"]
--- error_code eval
[204, 200]
--- response_body_like eval
["^\$", qr/"connections_opened": 2, .*"servers": \[\{"name": "127\.0\.0\.1:\d+", "role": "other", "connections": 0, "idle": 0\}, \{"name": "[^"]+", "role": "writable", "connections": 1, "idle": 0\}\]/]



=== TEST 6: only secondaries: 503 once serverSelectionTimeoutMS is over
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MOCK_PORT/msgbus_test?serverSelectionTimeoutMS=1200";
--- config
    location / { msgbus; }
--- init
Msgbus::MockMongo::start(
    label  => 'only a secondary',
    hello  => [isWritablePrimary => Msgbus::MockMongo::bool(0),
               secondary => Msgbus::MockMongo::bool(1)],
    conns  => {},
);
--- request
GET /v2/ping
--- timeout: 3
--- error_code: 503
--- response_body chomp
{"title": "Service temporarily unavailable", "description": "no writable store server is available. Please try again in a few seconds."}



=== TEST 7: an upstream with a backup server is refused
--- http_config
    upstream store {
        server 127.0.0.1:1;
        server 127.0.0.1:2 backup;
    }
    msgbus_mongodb "mongodb://127.0.0.1:27017/msgbus_test" upstream=store;
--- config
    location / { msgbus; }
--- must_die
--- error_log
msgbus_mongodb: upstream "store" has a backup server; msgbus chooses among the servers itself
