# The store connection pool: bounded per worker and server, reused.

use lib 't/lib';
use Test::Nginx::Socket;
use Msgbus::Test;

# timings and concurrent load mean nothing under valgrind's slowdown
if ($ENV{TEST_NGINX_USE_VALGRIND}) {
    plan(skip_all => 'timing-sensitive, not run under valgrind');
}

plan('no_plan');

$ENV{TEST_NGINX_POOL4_URI} = $ENV{TEST_NGINX_MONGODB_URI}
    . ($ENV{TEST_NGINX_MONGODB_URI} =~ /\?/ ? '&' : '?') . 'maxPoolSize=4';

workers(2);
worker_connections(1024);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: 200 concurrent requests on 2 workers open at most 2 x maxPoolSize connections
--- http_config
    msgbus_mongodb "$TEST_NGINX_POOL4_URI";
--- config
    location / { msgbus; }
--- init
my $r = Msgbus::Test::http_load(path => '/v2/ping', n => 200,
                                concurrency => 200, timeout => 20);
Test::More::is(scalar(grep { $_->[0] == 204 } @$r), 200,
               'TEST 1: 200 concurrent pings answered')
    or Test::More::diag(join ' ', map { "$_->[0]/$_->[1]" } grep { $_->[0] != 204 } @$r);
open my $log, '<', "$ENV{TEST_NGINX_SERVROOT}/logs/error.log" or die $!;
my @log = <$log>;
my $opened = grep { /msgbus mongo pool: connecting to/ } @log;
my $reused = grep { /msgbus mongo pool: (reused connection|connection \S+ to a waiter)/ } @log;
Test::More::cmp_ok($opened, '<=', 8, "TEST 1: $opened store connections for 2 workers of maxPoolSize=4");
Test::More::cmp_ok($reused, '>=', 150, "TEST 1: the others reused one ($reused)");
--- request
GET /v2/ping
--- error_code: 204
--- error_log
msgbus mongo pool: reused connection
