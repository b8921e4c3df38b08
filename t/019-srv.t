# mongodb+srv:// strings: the servers found in DNS when nginx runs,
# through nginx's resolver (SRV) and a TXT query of the adapter's own,
# as the "Initial DNS Seedlist Discovery" specification says.  The name
# server is t/util/dns.py on 127.0.0.1, started by each block's init with
# the block's zone; its SRV records point at the suite's store.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;
use Msgbus::Srv;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the SRV record's target is the store, the TXT record's options are taken
--- http_config eval
$::Cluster
--- config
    location / { msgbus; msgbus_admin on; }
--- init
main::dns(main::zone(txt => ['authSource=admin&replicaSet=rs0']));
--- request
GET /v2/ping
--- error_code: 204
--- error_log eval
[qr/msgbus mongo srv: "_mongodb\._tcp\.cluster\.test\.msgbus": 1 server: db1\.test\.msgbus:\d+; TXT "authSource=admin&replicaSet=rs0"/,
 'msgbus mongo srv: authSource "admin" from TXT']



=== TEST 2: ... a message posted and read back, the server named as in DNS
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: t019
--- request eval
["POST /v2/queues/$ENV{TEST_NGINX_QUEUE}/messages\n" . '{"messages": [{"ttl": 300, "body": "found in DNS"}]}',
 "GET /v2/queues/$ENV{TEST_NGINX_QUEUE}/messages?echo=true",
 "GET /v2/health"]
--- error_code eval
[201, 200, 200]
--- response_body_like eval
[qr/"resources"/,
 qr/"body": "found in DNS"/,
 qr/"servers": \[\{"name": "db1\.test\.msgbus:$ENV{TEST_NGINX_STORE_PORT}", "role": "writable"/]



=== TEST 3: srvServiceName names the SRV records
--- http_config eval
$::Resolver . <<'_EOC_';
    msgbus_mongodb "mongodb+srv://cluster.test.msgbus/$TEST_NGINX_DB?tls=false&srvServiceName=bus&serverSelectionTimeoutMS=3000";
_EOC_
--- config
    location / { msgbus; }
--- init
main::dns("_bus._tcp.cluster.test.msgbus SRV 0 5 $ENV{TEST_NGINX_STORE_PORT} db1.test.msgbus",
          "db1.test.msgbus A $ENV{TEST_NGINX_STORE_ADDR}");
--- request
GET /v2/ping
--- error_code: 204
--- error_log eval
qr/msgbus mongo srv: "_bus\._tcp\.cluster\.test\.msgbus": 1 server: db1\.test\.msgbus:\d+; TXT ""/



=== TEST 4: TLS by default: a string without tls=false speaks TLS to the target, by its name (the store here waits for a MongoDB frame: the handshake times out)
--- http_config eval
$::Resolver . <<'_EOC_';
    msgbus_mongodb "mongodb+srv://cluster.test.msgbus/$TEST_NGINX_DB?connectTimeoutMS=500&serverSelectionTimeoutMS=3000";
_EOC_
--- config
    location / { msgbus; }
--- init
main::dns(main::zone());
--- request
GET /v2/ping
--- timeout: 3
--- error_code: 503
--- error_log eval
['msgbus: TLS server name "db1.test.msgbus"',
 qr/msgbus mongo: TLS to db1\.test\.msgbus:\d+: the handshake timed out/]



=== TEST 5: without a resolver, nginx -t fails and says what to add
--- http_config
    msgbus_mongodb "mongodb+srv://cluster.test.msgbus/msgbus_test?tls=false";
--- config
    location / { msgbus; }
--- must_die
--- error_log
msgbus_mongodb: a "mongodb+srv://" string is looked up in DNS when nginx runs: add a "resolver" to the http block



=== TEST 6: "upstream=" is refused with a mongodb+srv:// string
--- http_config eval
$::Resolver . <<'_EOC_';
    upstream store { server 127.0.0.1:27017; }
    msgbus_mongodb "mongodb+srv://cluster.test.msgbus/msgbus_test?tls=false" upstream=store;
_EOC_
--- config
    location / { msgbus; }
--- must_die
--- error_log
msgbus_mongodb: "upstream=" cannot be used with a "mongodb+srv://" string



=== TEST 7: NXDOMAIN: 503 with Zaqar's body, the name and the reason logged
--- http_config eval
$::Resolver . <<'_EOC_';
    msgbus_mongodb "mongodb+srv://nx.test.msgbus/$TEST_NGINX_DB?tls=false&serverSelectionTimeoutMS=3000";
_EOC_
--- config
    location / { msgbus; }
--- init
main::dns(main::zone());
--- request
GET /v2/ping
--- timeout: 3
--- error_code: 503
--- response_body chomp
{"title": "Service temporarily unavailable", "description": "no writable store server is available. Please try again in a few seconds."}
--- error_log
msgbus mongo srv: cannot find the servers of "_mongodb._tcp.nx.test.msgbus": no such name or no SRV records (NXDOMAIN)
--- no_error_log
msgbus mongo pool: connecting to



=== TEST 8: two TXT records are an error
--- http_config eval
$::Cluster
--- config
    location / { msgbus; }
--- init
main::dns(main::zone(txt => ['replicaSet=rs0', 'authSource=admin']));
--- request
GET /v2/ping
--- timeout: 3
--- error_code: 503
--- error_log
msgbus mongo srv: cannot find the servers of "_mongodb._tcp.cluster.test.msgbus": "cluster.test.msgbus" has 2 TXT records (one at most)
--- no_error_log
msgbus mongo pool: connecting to



=== TEST 9: a TXT record may not set another option (ssl)
--- http_config eval
$::Cluster
--- config
    location / { msgbus; }
--- init
main::dns(main::zone(txt => ['replicaSet=rs0&ssl=false']));
--- request
GET /v2/ping
--- timeout: 3
--- error_code: 503
--- error_log
msgbus mongo srv: cannot find the servers of "_mongodb._tcp.cluster.test.msgbus": the TXT record's option "ssl" is not allowed (only authSource, replicaSet and loadBalanced are)
--- no_error_log
msgbus mongo pool: connecting to



=== TEST 10: a TXT answer whose name points at itself is malformed, not a loop
--- http_config eval
$::Cluster
--- config
    location / { msgbus; }
--- init
main::dns('--malformed', 'loop', main::zone());
--- request
GET /v2/ping
--- timeout: 3
--- error_code: 503
--- error_log
msgbus mongo srv: cannot find the servers of "_mongodb._tcp.cluster.test.msgbus": the TXT answer for "cluster.test.msgbus": malformed answer



=== TEST 11: a TXT answer whose data runs past the packet is malformed
--- http_config eval
$::Cluster
--- config
    location / { msgbus; }
--- init
main::dns('--malformed', 'overrun', main::zone());
--- request
GET /v2/ping
--- timeout: 3
--- error_code: 503
--- error_log
msgbus mongo srv: cannot find the servers of "_mongodb._tcp.cluster.test.msgbus": the TXT answer for "cluster.test.msgbus": malformed answer



=== TEST 12: a target outside the host's parent domain is refused, and nothing is connected to
--- http_config eval
$::Cluster
--- config
    location / { msgbus; }
--- init
main::dns("_mongodb._tcp.cluster.test.msgbus SRV 0 5 $ENV{TEST_NGINX_STORE_PORT} db1.test.msgbus",
          "_mongodb._tcp.cluster.test.msgbus SRV 0 5 $ENV{TEST_NGINX_STORE_PORT} db.elsewhere.msgbus",
          "db1.test.msgbus A $ENV{TEST_NGINX_STORE_ADDR}",
          "db.elsewhere.msgbus A $ENV{TEST_NGINX_STORE_ADDR}");
--- request
GET /v2/ping
--- timeout: 3
--- error_code: 503
--- error_log
msgbus mongo srv: cannot find the servers of "_mongodb._tcp.cluster.test.msgbus": its target "db.elsewhere.msgbus" is not in the domain "test.msgbus", refused
--- no_error_log
msgbus mongo pool: connecting to



=== TEST 13: srvMaxHosts=1 of two targets: one server, either
--- http_config eval
$::Resolver . <<'_EOC_';
    msgbus_mongodb "mongodb+srv://cluster.test.msgbus/$TEST_NGINX_DB?tls=false&srvMaxHosts=1&serverSelectionTimeoutMS=3000";
_EOC_
--- config
    location / { msgbus; }
--- init
main::dns("_mongodb._tcp.cluster.test.msgbus SRV 0 5 $ENV{TEST_NGINX_STORE_PORT} db1.test.msgbus",
          "_mongodb._tcp.cluster.test.msgbus SRV 0 5 $ENV{TEST_NGINX_STORE_PORT} db2.test.msgbus",
          "db1.test.msgbus A $ENV{TEST_NGINX_STORE_ADDR}",
          "db2.test.msgbus A $ENV{TEST_NGINX_STORE_ADDR}");
--- request
GET /v2/ping
--- error_code: 204
--- error_log eval
qr/msgbus mongo srv: "_mongodb\._tcp\.cluster\.test\.msgbus": 1 server: db[12]\.test\.msgbus:\d+; TXT ""/
