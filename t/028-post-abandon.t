# Clients that go away while their post waits in a batch (or is in the
# insert in flight) leave the other posts' answers, the order and the
# queue intact: t/util/batches.py sends rounds of posts to one queue at
# once, on 2 workers, and closes every other connection at once.

use lib 't/lib';
use Test::Nginx::Socket;
use Msgbus::Test;

# concurrent load means nothing under valgrind's slowdown
if ($ENV{TEST_NGINX_USE_VALGRIND}) {
    plan(skip_all => 'concurrent load, not run under valgrind');
}

plan('no_plan');

$ENV{TEST_NGINX_PROJECT} = "t028-$$-" . time;

workers(2);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: 5 rounds of 40 posts at once, every other client gone at once: answers, order, queue intact
--- config
    location / { msgbus; }
    location = /verdict { root html; }
--- init
Msgbus::Test::script('t/util/batches.py',
    '--port', Test::Nginx::Socket::server_port(),
    '--project', $ENV{TEST_NGINX_PROJECT});
--- request
GET /verdict
--- response_body
ok - every post whose client stayed is answered 201
ok - every message answered 201 is read once, with its body; an abandoned one at most once
ok - markers go up, and each post's messages are contiguous and in order
ok - a post after the rounds is answered 201
--- no_error_log
[error]
[alert]



=== TEST 2: 40 first posts at once on a new nginx: one post per worker makes the partition's indexes, the others wait for it (and one takes over when its client is gone)
--- config
    location / { msgbus; }
    location = /verdict { root html; }
--- log_level: debug
--- init
Msgbus::Test::script('t/util/batches.py',
    '--port', Test::Nginx::Socket::server_port(),
    '--project', $ENV{TEST_NGINX_PROJECT}, '--queue', 'first',
    '--rounds', 1, '--posts', 40);
--- request
GET /verdict
--- response_body
ok - every post whose client stayed is answered 201
ok - every message answered 201 is read once, with its body; an abandoned one at most once
ok - markers go up, and each post's messages are contiguous and in order
ok - a post after the rounds is answered 201
--- error_log eval
qr/msgbus: waits for the indexes of partition \d/
--- no_error_log
[error]
[alert]
