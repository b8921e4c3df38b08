# Directives: msgbus, msgbus_mongodb and their configuration-time errors.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a valid connection string with options loads
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:1,127.0.0.2:2/msgbus?replicaSet=rs0&maxPoolSize=8&connectTimeoutMS=500";
--- config
    location / { msgbus; }
--- request
GET /
--- error_code: 300
--- no_error_log
[error]



=== TEST 2: a bad scheme fails "nginx -t" with libmongoc's reason
--- http_config
    msgbus_mongodb "http://127.0.0.1:27017/msgbus";
--- config
    location / { msgbus; }
--- must_die
--- error_log
msgbus_mongodb: invalid connection string "http://127.0.0.1:27017/msgbus": Invalid URI Schema, expecting 'mongodb://' or 'mongodb+srv://'



=== TEST 3: a bad option value fails with the reason
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:27017/msgbus?maxPoolSize=-1";
--- config
    location / { msgbus; }
--- must_die
--- error_log
msgbus_mongodb: invalid connection string "mongodb://127.0.0.1:27017/msgbus?maxPoolSize=-1": maxPoolSize must be at least 1



=== TEST 4: a string without hosts fails
--- http_config
    msgbus_mongodb "mongodb://";
--- config
    location / { msgbus; }
--- must_die
--- error_log
msgbus_mongodb: invalid connection string "mongodb://": Invalid host string in URI



=== TEST 5: a value libmongoc would only warn about fails too
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:27017/msgbus?connectTimeoutMS=abc";
--- config
    location / { msgbus; }
--- must_die
--- error_log
msgbus_mongodb: invalid connection string "mongodb://127.0.0.1:27017/msgbus?connectTimeoutMS=abc": Unsupported value for "connecttimeoutms": "abc"



=== TEST 6: an option this libmongoc does not know is only a warning
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:27017/msgbus?someFutureOption=1";
--- config
    location / { msgbus; }
--- request
GET /
--- error_code: 300
--- error_log eval
qr/\[warn\] .*msgbus_mongodb: Unsupported URI option "somefutureoption" in /



=== TEST 7: msgbus without msgbus_mongodb is refused
--- http_config
--- config
    location / { msgbus; }
--- must_die
--- error_log
"msgbus" requires "msgbus_mongodb" in the http block



=== TEST 8: msgbus_mongodb twice is refused
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:27017/a";
    msgbus_mongodb "mongodb://127.0.0.1:27017/b";
--- config
    location / { msgbus; }
--- must_die
--- error_log
"msgbus_mongodb" directive is duplicate



=== TEST 9: msgbus_mongodb is an http-level directive only
--- config
    location / {
        msgbus_mongodb "mongodb://127.0.0.1:27017/a";
        msgbus;
    }
--- must_die
--- error_log
"msgbus_mongodb" directive is not allowed here



=== TEST 10: msgbus_client_id takes uuid or relaxed
--- config
    location / { msgbus; msgbus_client_id loose; }
--- must_die
--- error_log
invalid value "loose"



=== TEST 11: nginx without msgbus locations needs no store
--- http_config
--- config
    location /x { return 200 "plain\n"; }
--- request
GET /x
--- response_body
plain
