# The ordering invariant of a queue under concurrency, on 2 workers:
# t/util/ordering.py posts ORDERING_MESSAGES (default 5000) messages from
# 16 producers (singles and batches, so that posts to the queue join one
# another's batches on both workers), pops and deletes some with a consumer,
# and pages through the queue by marker with 2 observers meanwhile; then
# checks that each observer saw every message not removed exactly once, in
# each producer's posting order, under strictly increasing markers, and
# that the store holds no marker twice (see the script).  Every POST is to
# be answered 201 too (a separate check: that is not ordering).  The
# script prints each assertion, "ok - WHAT"; the block lists them.

use lib 't/lib';
use Test::Nginx::Socket;
use Msgbus::Test;

# concurrent load means nothing under valgrind's slowdown
if ($ENV{TEST_NGINX_USE_VALGRIND}) {
    plan(skip_all => 'concurrent load, not run under valgrind');
}

plan('no_plan');

$ENV{TEST_NGINX_PROJECT} = "t024-$$-" . time;

# The queue gets partitions of its own (database <db>_t024), so that the
# store checks read its messages only.  A shorter socketTimeoutMS keeps deleted messages' tombstones short
# (2 x socketTimeoutMS + waitQueueTimeoutMS + 5 s), and the purge takes
# them at once.
{
    my ($base, $opts) = split /\?/, $ENV{TEST_NGINX_MONGODB_URI}, 2;
    $base =~ s{/([^/]*)$}{'/' . ($1 eq '' ? 'msgbus' : $1) . '_t024'}e;
    $ENV{TEST_NGINX_ORDERING_URI} = $base . '?'
        . join '&', grep { defined && length }
              $opts, 'socketTimeoutMS=5000';
}

# the run against the block's nginx, its verdict in html/verdict
sub ordering {
    Msgbus::Test::script('t/util/ordering.py',
        '--port', Test::Nginx::Socket::server_port(),
        '--mongodb', $ENV{TEST_NGINX_ORDERING_URI},
        '--project', $ENV{TEST_NGINX_PROJECT}, '--queue', 'ordering',
        '--producers', 16,
        '--deadline', 600);
}

workers(2);
worker_connections(1024);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: 16 producers, a consumer, 2 observers: every message once, in order, markers unique
--- http_config
    msgbus_mongodb "$TEST_NGINX_ORDERING_URI";
    msgbus_expiry_purge_interval 1s;
--- config
    location / { msgbus; }
    location = /verdict { root html; }
--- log_level: warn
--- init
main::ordering();
--- request
GET /verdict
--- response_body
ok - the producers, the consumer and the observers ran to their end without errors
ok - as many messages acknowledged as asked for, each once
ok - the consumer popped each message once, and only posted ones
ok - (a) each observer saw every message not removed once, with the body posted, and no other
ok - (b) each observer saw each producer's messages in posting order, under increasing markers
ok - (b) the page markers are numbers, go up, and are their last message's marker
ok - (b) the store's markers keep each producer's posting order
ok - (c) the store holds every acknowledged message not removed, and nothing else
ok - (c) one marker, one message: in the store, the pages and the markers read
ok - (c) the queue counter is above every marker, and no more messages than markers
ok - every post answered 201
--- no_error_log
[error]
[warn]
