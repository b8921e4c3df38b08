# mongodb+srv:// strings: the servers found in DNS when nginx runs,
# through nginx's resolver (SRV) and a TXT query of the adapter's own,
# as the "Initial DNS Seedlist Discovery" specification says.  The name
# server is t/util/dns.py on 127.0.0.1, started by each block's init with
# the block's zone; its SRV records point at the suite's store.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;
use IO::Socket::INET;
use Socket qw(inet_aton inet_ntoa);

my ($host, $port, $db) = $ENV{TEST_NGINX_MONGODB_URI}
    =~ m{^mongodb://(?:[^@/]*@)?([^/,?:]+)(?::(\d+))?/?([^?]*)};

$ENV{TEST_NGINX_STORE_PORT} = $port // 27017;
$ENV{TEST_NGINX_STORE_ADDR} = inet_ntoa(inet_aton($host));
$ENV{TEST_NGINX_DB} = $db || 'msgbus_test';
$ENV{TEST_NGINX_DEAD_PORT} = Msgbus::Test::free_port();
$ENV{TEST_NGINX_QUEUE} = "srv$$";

# a UDP port free now, for the name server
$ENV{TEST_NGINX_DNS_PORT} ||= do {
    my $s = IO::Socket::INET->new(Proto => 'udp', LocalAddr => '127.0.0.1')
        or die "no free UDP port: $!";
    $s->sockport;
};

my ($dns_pid, $dns_out);

# dns(RECORD...) or dns('--silent'): the name server, restarted
sub dns {
    dns_stop();
    $dns_pid = open($dns_out, '-|', '/usr/bin/python3', 't/util/dns.py',
                    $ENV{TEST_NGINX_DNS_PORT}, @_)
        or die "cannot start t/util/dns.py: $!";
    my $ready = <$dns_out> // '';
    die "t/util/dns.py did not start\n" unless $ready =~ /^ready/;
}

sub dns_stop {
    return unless $dns_pid;
    kill 'TERM', $dns_pid;
    close $dns_out;
    undef $dns_pid;
}

# the zone: cluster.test.msgbus, its SRV record to db1.test.msgbus at
# the store's port (or $port), and a TXT record
sub zone {
    my (%o) = @_;
    my $p = $o{port} // $ENV{TEST_NGINX_STORE_PORT};
    return ("_mongodb._tcp.cluster.test.msgbus SRV 0 5 $p db1.test.msgbus",
            "db1.test.msgbus A $ENV{TEST_NGINX_STORE_ADDR}",
            map { "cluster.test.msgbus TXT $_" } @{ $o{txt} // [] });
}

our $Resolver = <<'_EOC_';
    resolver 127.0.0.1:$TEST_NGINX_DNS_PORT ipv6=off valid=1s;
    resolver_timeout 1s;
_EOC_

# the string most blocks use
our $Cluster = $Resolver . <<'_EOC_';
    msgbus_mongodb "mongodb+srv://cluster.test.msgbus/$TEST_NGINX_DB?tls=false&serverSelectionTimeoutMS=3000";
_EOC_

add_cleanup_handler(\&dns_stop);

no_shuffle();
run_tests();
dns_stop();

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
['msgbus mongo: TLS server name "db1.test.msgbus"',
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



=== TEST 14: a name server that does not answer: 503 within resolver_timeout
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



=== TEST 15: ... it answers again: the next operation (a second after the failure at the soonest) looks up again and finds the store
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



=== TEST 16: the only server found cannot be reached: 503
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



=== TEST 17: ... the record moves to the store: when every server failed, a lookup finds it
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
