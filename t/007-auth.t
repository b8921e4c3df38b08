# SCRAM authentication with the store: the right password works, a wrong
# one gives 503, and no password ever reaches the logs.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;

# FerretDB 2 with authentication on and a user made with createUser
# (SCRAM-SHA-256, the one mechanism it offers)
$ENV{TEST_NGINX_AUTH_PORT} = Msgbus::Test::store_start('auth',
    '--user', 'bus:s3cret-Pa55');

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the right password, SCRAM-SHA-256 negotiated
--- http_config
    msgbus_mongodb "mongodb://bus:s3cret-Pa55@127.0.0.1:$TEST_NGINX_AUTH_PORT/msgbus_test";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204
--- error_log
msgbus mongo: authenticated as "bus" on 127.0.0.1:
--- no_error_log
[error]
s3cret-Pa55



=== TEST 2: SCRAM-SHA-256 named in the string
--- http_config
    msgbus_mongodb "mongodb://bus:s3cret-Pa55@127.0.0.1:$TEST_NGINX_AUTH_PORT/msgbus_test?authMechanism=SCRAM-SHA-256&authSource=msgbus_test";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204
--- no_error_log
[error]
s3cret-Pa55



=== TEST 3: a wrong password: 503, and neither password in the logs
--- http_config
    msgbus_mongodb "mongodb://bus:wrong-Pa55word@127.0.0.1:$TEST_NGINX_AUTH_PORT/msgbus_test";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 503
--- response_body_like chomp
"Service temporarily unavailable"
--- error_log
msgbus mongo: authentication of user "bus" on 127.0.0.1:
--- no_error_log
wrong-Pa55word
s3cret-Pa55



=== TEST 4: an unknown user: 503
--- http_config
    msgbus_mongodb "mongodb://nobody:whatever-1@127.0.0.1:$TEST_NGINX_AUTH_PORT/msgbus_test";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 503
--- error_log
authentication of user "nobody"
--- no_error_log
whatever-1



=== TEST 5: an unsupported mechanism fails nginx -t
--- http_config
    msgbus_mongodb "mongodb://bus:x@127.0.0.1:$TEST_NGINX_AUTH_PORT/msgbus_test?authMechanism=PLAIN";
--- config
    location / { msgbus; }
--- must_die
--- error_log
msgbus_mongodb: authMechanism "PLAIN" is not supported (SCRAM-SHA-256 and SCRAM-SHA-1 are)
