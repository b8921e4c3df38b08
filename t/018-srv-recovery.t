# mongodb+srv:// when DNS or the servers fail and come back: a name
# server that does not answer, then does; the only server found dead,
# then the record moved to the store.  Each pair of blocks runs in one
# nginx (the second block sees what the first left), which valgrind's
# mode restarts for every block: not run there.

use lib 't/lib';
use Test::Nginx::Socket;
use Msgbus::Test;
use Msgbus::Srv;

if ($ENV{TEST_NGINX_USE_VALGRIND}) {
    plan(skip_all => 'blocks that continue the previous block\'s nginx');
}

plan('no_plan');
no_shuffle();
run_tests();

__DATA__

=== TEST 1: a name server that does not answer: 503 within resolver_timeout
--- http_config eval
$::Resolver . <<'_EOC_';
    msgbus_mongodb "mongodb+srv://cluster.test.msgbus/$TEST_NGINX_DB?tls=false&serverSelectionTimeoutMS=5000";
_EOC_
--- config
    location / { msgbus; }
--- init
main::dns('--silent');
--- request
GET /v2/ping
--- timeout: 2.5
--- error_code: 503
--- error_log eval
qr/msgbus mongo srv: cannot find the servers of "_mongodb\._tcp\.cluster\.test\.msgbus": .*timed out/



=== TEST 2: ... it answers again: the next operation (a second after the failure at the soonest) looks up again and finds the store
--- init
main::dns(main::zone());
Time::HiRes::sleep(2.1);
--- request
GET /v2/ping
--- timeout: 3
--- error_code: 204
--- error_log eval
[qr/msgbus mongo srv: "_mongodb\._tcp\.cluster\.test\.msgbus": 1 server: db1\.test\.msgbus:\d+; TXT ""/,
 qr/cannot find the servers of .*timed out/]



=== TEST 3: the only server found cannot be reached: 503
--- http_config eval
$::Cluster
--- config
    location / { msgbus; }
--- init
main::dns(main::zone(port => $ENV{TEST_NGINX_DEAD_PORT}));
--- request
GET /v2/ping
--- timeout: 3
--- error_code: 503
--- error_log eval
qr/msgbus mongo: cannot connect to db1\.test\.msgbus:$ENV{TEST_NGINX_DEAD_PORT}/



=== TEST 4: ... the record moves to the store: when every server failed, a lookup finds it
--- init
main::dns(main::zone());
Time::HiRes::sleep(2.1);
--- request
GET /v2/ping
--- timeout: 3
--- error_code: 204
--- error_log eval
[qr/msgbus mongo srv: every server failed, looking up "_mongodb\._tcp\.cluster\.test\.msgbus" again/,
 qr/msgbus mongo srv: "_mongodb\._tcp\.cluster\.test\.msgbus": 1 server: db1\.test\.msgbus:$ENV{TEST_NGINX_STORE_PORT}; TXT ""/,
 qr/msgbus mongo: cannot connect to db1\.test\.msgbus:$ENV{TEST_NGINX_DEAD_PORT}/]
