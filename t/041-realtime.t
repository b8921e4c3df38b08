# Real-time delivery on 2 workers, by t/util/realtime.py (which prints
# what it measured and its assertions, "ok - WHAT", each block listing
# them):
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
    location = /verdict { root html; }
--- init
Msgbus::Test::realtime('wake');
--- request
GET /verdict
--- response_body
ok - the status shows 16 long-polls
ok - the long-polls wait in both workers
ok - every long-poll got the post
ok - all woken within a second
ok - no waiter is left
ok - at most 4 store commands for 16 long-polls after the last marker
ok - every long-poll after the marker got the next post



=== TEST 2: abort: closed clients leave 0 waiters
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
    location = /verdict { root html; }
--- init
Msgbus::Test::realtime('abort');
--- request
GET /verdict
--- response_body
ok - the status shows 9 waiters
ok - aborted waiters are gone within 2 s



=== TEST 3: stream: marker order, resume without loss or repeats, pings
--- config
    location / { msgbus; msgbus_sse_ping 1s; }
    location = /msgbus_status { msgbus_status; }
    location = /verdict { root html; }
--- init
Msgbus::Test::realtime('stream');
--- request
GET /verdict
--- response_body
ok - the stream waits
ok - the first stream read 20 messages
ok - every message once, in posting order
ok - bodies in order
ok - markers increase
ok - no gap event
ok - no stream error
ok - pings every second



=== TEST 4: gap: told when the resume point's next message is gone
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
    location = /verdict { root html; }
--- init
Msgbus::Test::realtime('gap');
--- request
GET /verdict
--- response_body
ok - the middle message deleted
ok - a gap, then the message, after 1
ok - the gap names the resume point, 1, and the next marker, 3
ok - no gap after 2



=== TEST 5: claim: a waiting claim gets the new message, the other times out
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
    location = /verdict { root html; }
--- init
Msgbus::Test::realtime('claim');
--- request
GET /verdict
--- response_body
ok - the status shows 2 claims waiting
ok - one 201 and one 204
ok - the claim has the message
ok - claimed within a second
ok - the other waited its 3 s
ok - no claimed message for a long-poll



=== TEST 6: reload: every waiter is answered and the old workers exit
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
    location = /verdict { root html; }
--- init
Msgbus::Test::realtime('reload');
--- request
GET /verdict
--- response_body
ok - the status shows 11 waiters
ok - every long-poll answered 200 with no message, at its marker
ok - every claim answered 204
ok - every stream ended, no error
ok - answered within 3 s
ok - the old workers exited
ok - the new workers answer



=== TEST 7: nodes: a second nginx on the store sees the post by polling
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
    location = /verdict { root html; }
--- init
Msgbus::Test::realtime('nodes');
--- request
GET /verdict
--- response_body
ok - node 2 has the long-poll
ok - node 2's long-poll got the post
ok - woken within 550 ms



=== TEST 8: joiners: readers that come during a find get their own page
--- http_config
    msgbus_mongodb "$TEST_NGINX_MONGODB_URI";
    msgbus_poll_interval 20ms;
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
    location = /verdict { root html; }
--- init
Msgbus::Test::realtime('joiners');
--- request
GET /verdict
--- response_body
ok - the status shows 4 streams
ok - every long-poll got the first message
ok - every stream resumed at marker 2, without a gap



=== TEST 9: claimers: a post brings one claimer on, not all of them
--- http_config
    msgbus_mongodb "$TEST_NGINX_MONGODB_URI";
    msgbus_poll_interval 0;
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
    location = /verdict { root html; }
--- init
Msgbus::Test::realtime('claimers');
--- request
GET /verdict
--- response_body
ok - the status shows 8 claims waiting
ok - one claim won the first message
ok - for one post, one claim a worker (and one more after the win) tried again
ok - the next three messages claimed within a second
ok - each message claimed once
ok - the others got 204



=== TEST 10: large: messages the zone cannot keep reach a stream at once
--- http_config
    msgbus_mongodb "$TEST_NGINX_MONGODB_URI";
    msgbus_poll_interval 0;
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
    location = /verdict { root html; }
--- init
Msgbus::Test::realtime('large');
--- request
GET /verdict
--- response_body
ok - the stream waits
ok - every message, in order
ok - all of them within a second
