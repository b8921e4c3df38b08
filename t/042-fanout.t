# A post's fan-out renders each message once for all its waiters and
# shares the pages of those that asked the same; what each waiter gets
# is still its own.  One worker, so that every waiter of a block is in
# the same fan-out; t/util/fanout.py drives it and compares each answer
# with the listing of the same arguments.  A client that does not read
# keeps the first batch whose bytes its output holds, and gets copies of
# the next ones.

use lib 't/lib';
use Test::Nginx::Socket;
use Msgbus::Test;

plan('no_plan');

$ENV{TEST_NGINX_PROJECT} = "t042-$$-" . time;

# a server whose sockets send 4 KB at a time: output that waits
$ENV{TEST_NGINX_SLOW_PORT} = Msgbus::Test::free_port();

sub fanout {
    my ($name) = @_;
    return Msgbus::Test::script('t/util/fanout.py',
                                '--port', Test::Nginx::Socket::server_port(),
                                '--slow-port', $ENV{TEST_NGINX_SLOW_PORT},
                                '--project', $ENV{TEST_NGINX_PROJECT}, $name);
}

worker_connections(1024);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: pages: each waiter gets the page or events of its own arguments, client and location
--- config
    location / { msgbus; }
    location /bus/ { msgbus; }
    location = /msgbus_status { msgbus_status; }
    location = /verdict { root html; }
--- init
main::fanout('pages');
--- request
GET /verdict
--- response_body
ok - every long-poll and stream waits
ok - each long-poll got the listing of its arguments
ok - those that asked the same got the same bytes
ok - the poster's own long-poll waits on
ok - then the next post alone, as its listing
ok - each stream got the events it may see
ok - each event's data is the listing's item



=== TEST 2: claimed: a claimed message is skipped or shown with its claim, as listed
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
    location = /verdict { root html; }
--- init
main::fanout('claimed');
--- request
GET /verdict
--- response_body
ok - the first message claimed
ok - a long-poll and a stream wait
ok - the long-poll skips the claimed message, as its listing
ok - the stream shows it with its claim's href, as the listing
ok - the claimed message's href names the claim



=== TEST 3: slow: clients that read late get every byte right
--- http_config
    msgbus_mongodb "$TEST_NGINX_MONGODB_URI";
    server {
        listen 127.0.0.1:$TEST_NGINX_SLOW_PORT sndbuf=4k;
        location / { msgbus; }
    }
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
    location = /verdict { root html; }
--- init
main::fanout('slow');
--- request
GET /verdict
--- response_body
ok - two streams and a long-poll wait
ok - the fast stream got every event intact, in order
ok - the slow stream got every event intact, in order
ok - the slow long-poll got its page intact
--- error_log
msgbus fanout: output pending, the fan kept
msgbus sse: output waits, the events copied



=== TEST 4: many: 40 long-polls and 40 streams alike share one render and one page
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
    location = /verdict { root html; }
--- init
main::fanout('many');
--- request
GET /verdict
--- response_body
ok - 40 long-polls and 40 streams wait
ok - every long-poll got the same page
ok - every stream got the same event
--- error_log
msgbus fanout: 1 messages, 1 renders, 39 pages shared



=== TEST 5: relaxed: clients that are not UUIDs see the others' messages, not their own
--- config
    location /relaxed/ { msgbus; msgbus_client_id relaxed; }
    location = /msgbus_status { msgbus_status; }
    location = /verdict { root html; }
--- init
main::fanout('relaxed');
--- request
GET /verdict
--- response_body
ok - a client that is not a UUID posts
ok - three long-polls wait
ok - the other client got the message, as its listing
ok - the poster's own long-polls wait on
ok - then the other's message alone, as their listing
