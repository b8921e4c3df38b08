# Real-time delivery on 2 workers, by t/util/realtime.py (which prints
# what it measured, then OK or the failures):
# - wake: long-polls in both workers, one post wakes them all;
# - abort: clients that close leave no waiter behind (the status says 0);
# - stream: events in marker order, resumed with Last-Event-ID without
#   loss or repeats; pings on an idle stream;
# - gap: a resume point whose next message is gone gets "event: gap";
# - claim: claims that wait, one message: one 201 at once, one 204 later;
# - reload: a HUP answers every long-poll, claim and stream, and the old
#   workers exit;
# - nodes: a second nginx on the same store sees a post within
#   msgbus_poll_interval (500ms) + 50 ms;
# - joiners: readers that come while a find is in flight, asking for
#   older messages, get their own page (or resume) from where they asked;
# - claimers: one post brings one waiting claim on (and each win the
#   next), not every claimer;
# - large: messages too large for the zone, and those after them, reach a
#   stream at once.

use lib 't/lib';
use Test::Nginx::Socket;
use Msgbus::Test;

# timing means nothing under valgrind's slowdown (t/040 runs there)
if ($ENV{TEST_NGINX_USE_VALGRIND}) {
    plan(skip_all => 'timing, not run under valgrind');
}

plan('no_plan');

$ENV{TEST_NGINX_PROJECT} = "t041-$$-" . time;

workers(2);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: wake: a post wakes the long-polls of both workers
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
--- init
Msgbus::Test::realtime('wake');
--- request
GET /v2/ping
--- error_code: 204
--- no_error_log
[error]



=== TEST 2: abort: closed clients leave 0 waiters
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
--- init
Msgbus::Test::realtime('abort');
--- request
GET /v2/ping
--- error_code: 204
--- no_error_log
[error]



=== TEST 3: stream: marker order, resume without loss or repeats, pings
--- config
    location / { msgbus; msgbus_sse_ping 1s; }
    location = /msgbus_status { msgbus_status; }
--- init
Msgbus::Test::realtime('stream');
--- request
GET /v2/ping
--- error_code: 204
--- no_error_log
[error]



=== TEST 4: gap: told when the resume point's next message is gone
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
--- init
Msgbus::Test::realtime('gap');
--- request
GET /v2/ping
--- error_code: 204
--- no_error_log
[error]



=== TEST 5: claim: a waiting claim gets the new message, the other times out
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
--- init
Msgbus::Test::realtime('claim');
--- request
GET /v2/ping
--- error_code: 204
--- no_error_log
[error]



=== TEST 6: reload: every waiter is answered and the old workers exit
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
--- init
Msgbus::Test::realtime('reload');
--- request
GET /v2/ping
--- error_code: 204
--- no_error_log
[error]



=== TEST 7: nodes: a second nginx on the store sees the post by polling
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
--- init
Msgbus::Test::realtime('nodes');
--- request
GET /v2/ping
--- error_code: 204
--- no_error_log
[error]



=== TEST 8: joiners: readers that come during a find get their own page
--- http_config
    msgbus_mongodb "$TEST_NGINX_MONGODB_URI";
    msgbus_poll_interval 20ms;
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
--- init
Msgbus::Test::realtime('joiners');
--- request
GET /v2/ping
--- error_code: 204
--- no_error_log
[error]



=== TEST 9: claimers: a post brings one claimer on, not all of them
--- http_config
    msgbus_mongodb "$TEST_NGINX_MONGODB_URI";
    msgbus_poll_interval 0;
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
--- init
Msgbus::Test::realtime('claimers');
--- request
GET /v2/ping
--- error_code: 204
--- no_error_log
[error]



=== TEST 10: large: messages the zone cannot keep reach a stream at once
--- http_config
    msgbus_mongodb "$TEST_NGINX_MONGODB_URI";
    msgbus_poll_interval 0;
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
--- init
Msgbus::Test::realtime('large');
--- request
GET /v2/ping
--- error_code: 204
--- no_error_log
[error]
