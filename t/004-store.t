# The store adapter against a store that is down, goes away, never
# answers, or is busy: fast 503s, no hang, recovery without a reload,
# a worker that never blocks, and a bounded pool.

use lib 't/lib';
use Test::Nginx::Socket;
use Msgbus::Test;

# timings and concurrent load mean nothing under valgrind's slowdown
if ($ENV{TEST_NGINX_USE_VALGRIND}) {
    plan(skip_all => 'timing-sensitive, not run under valgrind');
}

plan('no_plan');

$ENV{TEST_NGINX_LATE_PORT} = Msgbus::Test::store_port('late');
$ENV{TEST_NGINX_FLAKY_PORT} = Msgbus::Test::store_port('flaky');
$ENV{TEST_NGINX_SILENT_PORT} = Msgbus::Test::store_port('silent');

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the store is down when nginx starts: 503 at once, not a hang
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_LATE_PORT/msgbus_test?connectTimeoutMS=500";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- timeout: 0.6
--- error_code: 503
--- response_headers
Retry-After: 1
Content-Type: application/json
--- response_body_like chomp
^\{"title": "Service temporarily unavailable", "description": "the store cannot be reached\. Please try again in a few seconds\."\}$
--- error_log
msgbus mongo: cannot connect to 127.0.0.1:



=== TEST 2: ... the store starts: 204 from the same nginx, no reload
(the same nginx's log holds TEST 1's failed connection)
--- init
Msgbus::Test::store_start('late');
--- request
GET /v2/ping
--- error_code: 204
--- no_error_log eval
qr/^(?!.*msgbus mongo: cannot connect to 127\.0\.0\.1:).*\[error\]/



=== TEST 3: HEAD /v2/ping asks the store too
--- init
Msgbus::Test::store_stop('late');
--- request
HEAD /v2/ping
--- error_code: 503
--- error_log
msgbus mongo: cannot connect to 127.0.0.1:



=== TEST 4: the store is killed under traffic: 503s, none hangs, then recovery
(the kill resets or closes the connections that have requests in flight, when
they have)
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_FLAKY_PORT/msgbus_test?connectTimeoutMS=500&socketTimeoutMS=1000";
--- config
    location / { msgbus; }
--- init
Msgbus::Test::store_start('flaky');
my $before = Msgbus::Test::http_load(path => '/v2/ping', n => 40,
                                     concurrency => 8);
Test::More::is(scalar(grep { $_->[0] == 204 } @$before), 40,
               'TEST 4: 40 pings answered while the store runs');
my $pid = fork // die;
if ($pid == 0) {
    Time::HiRes::sleep(0.4);
    Msgbus::Test::store_kill('flaky');
    POSIX::_exit(0);
}
my $during = Msgbus::Test::http_load(path => '/v2/ping', duration => 1.5,
                                     concurrency => 8, timeout => 20);
waitpid $pid, 0;
my @bad = grep { $_->[0] != 204 && $_->[0] != 503 } @$during;
my ($slowest) = sort { $b <=> $a } map { $_->[1] } @$during;
Test::More::is(scalar(@bad), 0, 'TEST 4: only 204 and 503 while the store dies');
Test::More::ok((grep { $_->[0] == 503 } @$during) > 0, 'TEST 4: 503 once it is gone');
Test::More::cmp_ok($slowest, '<', 1.5, 'TEST 4: no answer waits past socketTimeoutMS');
Msgbus::Test::store_start('flaky');
--- request
GET /v2/ping
--- error_code: 204
--- error_log
msgbus mongo: cannot connect to 127.0.0.1:
--- no_error_log eval
qr/^(?!.*(?:msgbus mongo: cannot connect to 127\.0\.0\.1:|recv\(\) failed \(104: Connection reset by peer\)|closed the connection)).*\[error\]/



=== TEST 5: a store that never answers delays only the requests that need it
(worker_processes 1: the runner's default)
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_SILENT_PORT/msgbus_test?socketTimeoutMS=1000";
--- config
    location / { msgbus; }
    location = /plain { return 200 "not the store\n"; }
--- init
Msgbus::Test::silent_start('silent');
my $pid = fork // die;
if ($pid == 0) {
    my $r = Msgbus::Test::http_load(path => '/v2/ping', n => 1, timeout => 5);
    open my $fh, '>', Msgbus::Test::tmpdir() . "/waiting.result" or die;
    print $fh "$r->[0][0] $r->[0][1]\n";
    close $fh;
    POSIX::_exit(0);
}
$Msgbus::Test::Waiter = $pid;
Time::HiRes::sleep(0.2);
--- request
GET /plain
--- timeout: 0.3
--- response_body
not the store
--- wait: 1.2
--- error_log
msgbus mongo: 127.0.0.1:
did not answer in time



=== TEST 6: ... and the waiting request ended with 503 at its timeout
(the same nginx's log holds TEST 5's timeout)
--- init
waitpid $Msgbus::Test::Waiter, 0;
open my $fh, '<', Msgbus::Test::tmpdir() . "/waiting.result" or die "no result: $!";
my ($status, $secs) = split ' ', scalar <$fh>;
Test::More::is($status, 503, 'TEST 6: the waiting request got 503');
Test::More::cmp_ok($secs, '>=', 0.9, 'TEST 6: ... at its socketTimeoutMS');
Test::More::cmp_ok($secs, '<', 1.6, 'TEST 6: ... not later');
--- request
GET /plain
--- response_body
not the store
--- no_error_log eval
qr/^(?!.*did not answer in time).*\[error\]/



=== TEST 7: a client that gives up while the store is silent: the request is detached at once
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_SILENT_PORT/msgbus_test?socketTimeoutMS=1000";
--- config
    location / { msgbus; }
    location = /plain { return 200 "not the store\n"; }
--- init
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                              PeerPort => Test::Nginx::Socket::server_port())
    or die "cannot connect: $!";
syswrite $s, "GET /v2/ping HTTP/1.0\r\nHost: localhost\r\n\r\n";
Time::HiRes::sleep(0.3);
close $s;
Time::HiRes::sleep(0.1);
--- request
GET /plain
--- response_body
not the store
--- wait: 1
--- error_log
client prematurely closed connection
msgbus mongo: request gone, detaching ping
did not answer in time
