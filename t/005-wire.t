# The adapter against malformed store replies, from a scripted fake
# MongoDB (t/lib/Msgbus/MockMongo.pm; each block starts its own in
# "--- init").  A malformed reply fails the request with 502 and closes
# the connection; a dropped or silent connection gives 503 with
# Retry-After; either way the next request works on a new connection.  A
# command error (500) and a slow but valid reply keep the connection.
#
# Each block sends GET /v2/ping twice, then GET /v2/health: its pool
# figures (connections opened and reused, failures, open connections)
# are nginx's side of the story.  The mock's side is the number of
# connections it accepted and its transcript, "CONNECTION COMMAND ACTION"
# per command received: two more tests when the next block starts (the
# last block's after run_tests()).

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;
use Msgbus::MockMongo;

$ENV{TEST_NGINX_MOCK_PORT} ||= Msgbus::MockMongo::free_port();

# how the adapter names the store in its messages
our $Store = "127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT}";

our $BadGateway = '{"title": "Bad gateway", "description": '
                  . '"the store sent a malformed reply."}';
our $Unreachable = '{"title": "Service temporarily unavailable", '
                   . '"description": "the store cannot be reached. '
                   . 'Please try again in a few seconds."}';
our $TimedOut = '{"title": "Service temporarily unavailable", '
                . '"description": "the store did not answer in time. '
                . 'Please try again in a few seconds."}';
our $Refused = '{"title": "Internal server error", '
               . '"description": "the store refused the command."}';

# /v2/health's figures after the three requests (3 commands): the
# health's own ping runs on the one connection left open, busy.  No
# $failures: any number.
sub pool {
    my ($opened, $reused, $failures) = @_;
    my $head = '\A\{"storage_reachable": true, "pool": \{"pid": \d+, '
               . '"max_pool_size": 100, "waiters": 0, ';
    my $figures = qq|"connections_opened": $opened, |
                  . qq|"connections_reused": $reused, "failures": |;
    my $servers = qq|, "commands": 3, "servers": [{"name": "$Store", |
                  . qq|"role": "writable", "connections": 1, "idle": 0}]}}|;
    $failures = defined $failures ? "\Q$failures\E" : '\d+';
    return qr/$head\Q$figures\E$failures\Q$servers\E\z/;
}

# the error_log patterns of a request are checked again after the next
check_accum_error_log();
no_shuffle();
run_tests();

# the last block's transcript
Msgbus::MockMongo::stop();

__DATA__

=== TEST 1: 10 bytes of a header, then close, twice: 503, the ping was retried once
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MOCK_PORT/msgbus_test?socketTimeoutMS=500";
--- config
    location / { msgbus; msgbus_admin on; }
--- init
Msgbus::MockMongo::start(
    label  => 'truncated header twice',
    conns  => { 1 => ['truncated_header'], 2 => ['truncated_header'] },
    expect => ['1 hello ok', '1 ping truncated_header',
               '2 hello ok', '2 ping truncated_header',
               '3 hello ok', '3 ping ok', '3 ping ok'],
);
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request eval
["GET /v2/ping", "GET /v2/ping", "GET /v2/health"]
--- error_code eval
[503, 204, 200]
--- response_headers eval
["Retry-After: 1\nContent-Type: application/json", "!Retry-After", "!Retry-After"]
--- response_body eval
[$::Unreachable, "", main::pool(3, 1, 2)]
--- error_log eval
"msgbus mongo: $::Store closed the connection"



=== TEST 2: 10 bytes of a header, then close, once: the retry on a new connection answers
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MOCK_PORT/msgbus_test?socketTimeoutMS=500";
--- config
    location / { msgbus; msgbus_admin on; }
--- init
Msgbus::MockMongo::start(
    label  => 'truncated header once',
    conns  => { 1 => ['truncated_header'] },
    expect => ['1 hello ok', '1 ping truncated_header',
               '2 hello ok', '2 ping ok', '2 ping ok', '2 ping ok'],
);
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request eval
["GET /v2/ping", "GET /v2/ping", "GET /v2/health"]
--- error_code eval
[204, 204, 200]
--- response_body eval
["", "", main::pool(2, 2, 1)]
--- error_log eval
"msgbus mongo: $::Store closed the connection"



=== TEST 3: messageLength over maxMessageSizeBytes: 502, a new connection next
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MOCK_PORT/msgbus_test?socketTimeoutMS=500";
--- config
    location / { msgbus; msgbus_admin on; }
--- init
Msgbus::MockMongo::start(
    label  => 'frame too long',
    conns  => { 1 => ['frame_too_long'] },
    expect => ['1 hello ok', '1 ping frame_too_long',
               '2 hello ok', '2 ping ok', '2 ping ok'],
);
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request eval
["GET /v2/ping", "GET /v2/ping", "GET /v2/health"]
--- error_code eval
[502, 204, 200]
--- response_headers eval
["!Retry-After\nContent-Type: application/json", "!Retry-After", "!Retry-After"]
--- response_body eval
[$::BadGateway, "", main::pool(2, 1, 1)]
--- error_log eval
"msgbus mongo: $::Store sent a frame of 48000001 bytes (limit 48000000)"



=== TEST 4: the limit is the hello's maxMessageSizeBytes when smaller
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MOCK_PORT/msgbus_test?socketTimeoutMS=500";
--- config
    location / { msgbus; msgbus_admin on; }
--- init
Msgbus::MockMongo::start(
    label  => 'frame over the hello limit',
    hello  => [maxMessageSizeBytes => Msgbus::MockMongo::int32(1000)],
    conns  => { 1 => ['frame_of_1001'] },
    expect => ['1 hello ok', '1 ping frame_of_1001',
               '2 hello ok', '2 ping ok', '2 ping ok'],
);
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request eval
["GET /v2/ping", "GET /v2/ping", "GET /v2/health"]
--- error_code eval
[502, 204, 200]
--- response_body eval
[$::BadGateway, "", main::pool(2, 1, 1)]
--- error_log eval
"msgbus mongo: $::Store sent a frame of 1001 bytes (limit 1000)"



=== TEST 5: a negative messageLength: 502, a new connection next
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MOCK_PORT/msgbus_test?socketTimeoutMS=500";
--- config
    location / { msgbus; msgbus_admin on; }
--- init
Msgbus::MockMongo::start(
    label  => 'negative length',
    conns  => { 1 => ['negative_length'] },
    expect => ['1 hello ok', '1 ping negative_length',
               '2 hello ok', '2 ping ok', '2 ping ok'],
);
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request eval
["GET /v2/ping", "GET /v2/ping", "GET /v2/health"]
--- error_code eval
[502, 204, 200]
--- response_body eval
[$::BadGateway, "", main::pool(2, 1, 1)]
--- error_log eval
"msgbus mongo: $::Store sent a frame of -1 bytes (limit 48000000)"



=== TEST 6: a reply to another request (the hello's): 502, a new connection next
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MOCK_PORT/msgbus_test?socketTimeoutMS=500";
--- config
    location / { msgbus; msgbus_admin on; }
--- init
Msgbus::MockMongo::start(
    label  => 'wrong responseTo',
    conns  => { 1 => ['wrong_response_to'] },
    expect => ['1 hello ok', '1 ping wrong_response_to',
               '2 hello ok', '2 ping ok', '2 ping ok'],
);
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request eval
["GET /v2/ping", "GET /v2/ping", "GET /v2/health"]
--- error_code eval
[502, 204, 200]
--- response_body eval
[$::BadGateway, "", main::pool(2, 1, 1)]
--- error_log eval
"msgbus mongo: $::Store answered request 1, expected 2"



=== TEST 7: an OP_REPLY (opcode 1): 502, a new connection next
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MOCK_PORT/msgbus_test?socketTimeoutMS=500";
--- config
    location / { msgbus; msgbus_admin on; }
--- init
Msgbus::MockMongo::start(
    label  => 'opcode 1',
    conns  => { 1 => ['op_reply'] },
    expect => ['1 hello ok', '1 ping op_reply',
               '2 hello ok', '2 ping ok', '2 ping ok'],
);
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request eval
["GET /v2/ping", "GET /v2/ping", "GET /v2/health"]
--- error_code eval
[502, 204, 200]
--- response_body eval
[$::BadGateway, "", main::pool(2, 1, 1)]
--- error_log eval
"msgbus mongo: $::Store sent opcode 1, expected OP_MSG"



=== TEST 8: a section of kind 2: 502, a new connection next
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MOCK_PORT/msgbus_test?socketTimeoutMS=500";
--- config
    location / { msgbus; msgbus_admin on; }
--- init
Msgbus::MockMongo::start(
    label  => 'section kind 2',
    conns  => { 1 => ['section_kind_2'] },
    expect => ['1 hello ok', '1 ping section_kind_2',
               '2 hello ok', '2 ping ok', '2 ping ok'],
);
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request eval
["GET /v2/ping", "GET /v2/ping", "GET /v2/health"]
--- error_code eval
[502, 204, 200]
--- response_body eval
[$::BadGateway, "", main::pool(2, 1, 1)]
--- error_log eval
"msgbus mongo: $::Store sent section kind 2, expected 0"



=== TEST 9: a document longer than its frame: 502, a new connection next
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MOCK_PORT/msgbus_test?socketTimeoutMS=500";
--- config
    location / { msgbus; msgbus_admin on; }
--- init
Msgbus::MockMongo::start(
    label  => 'document too long',
    conns  => { 1 => ['doc_too_long'] },
    expect => ['1 hello ok', '1 ping doc_too_long',
               '2 hello ok', '2 ping ok', '2 ping ok'],
);
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request eval
["GET /v2/ping", "GET /v2/ping", "GET /v2/health"]
--- error_code eval
[502, 204, 200]
--- response_body eval
[$::BadGateway, "", main::pool(2, 1, 1)]
--- error_log eval
"msgbus mongo: $::Store sent a malformed document of 117 bytes in a section of 17"



=== TEST 10: a malformed hello reply fails the handshake: 502, a new connection next
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MOCK_PORT/msgbus_test?socketTimeoutMS=500";
--- config
    location / { msgbus; msgbus_admin on; }
--- init
Msgbus::MockMongo::start(
    label  => 'hello in an OP_REPLY',
    conns  => { 1 => { hello => 'op_reply' } },
    expect => ['1 hello op_reply',
               '2 hello ok', '2 ping ok', '2 ping ok'],
);
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request eval
["GET /v2/ping", "GET /v2/ping", "GET /v2/health"]
--- error_code eval
[502, 204, 200]
--- response_body eval
[$::BadGateway, "", main::pool(2, 1, 1)]
--- error_log eval
"msgbus mongo: $::Store sent opcode 1, expected OP_MSG"



=== TEST 11: hello and ping replies in 1-byte pieces 5 ms apart work, the connection is reused
(about 0.7 s for the hello, hence socketTimeoutMS=2000: it bounds the
whole reply, not the time between two reads)
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MOCK_PORT/msgbus_test?socketTimeoutMS=2000";
--- config
    location / { msgbus; msgbus_admin on; }
--- init
Msgbus::MockMongo::start(
    label  => 'replies in pieces',
    conns  => { 1 => { hello => 'pieces', commands => ['pieces', 'pieces'] } },
    expect => ['1 hello pieces', '1 ping pieces', '1 ping pieces',
               '1 ping ok'],
);
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request eval
["GET /v2/ping", "GET /v2/ping", "GET /v2/health"]
--- error_code eval
[204, 204, 200]
--- response_body eval
["", "", main::pool(1, 2, 0)]
--- no_error_log
[error]



=== TEST 12: a command error {ok: 0}: 500, the connection is kept
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MOCK_PORT/msgbus_test?socketTimeoutMS=500";
--- config
    location / { msgbus; msgbus_admin on; }
--- init
Msgbus::MockMongo::start(
    label  => 'command error',
    conns  => { 1 => ['error'] },
    expect => ['1 hello ok', '1 ping error', '1 ping ok', '1 ping ok'],
);
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request eval
["GET /v2/ping", "GET /v2/ping", "GET /v2/health"]
--- error_code eval
[500, 204, 200]
--- response_headers eval
["!Retry-After\nContent-Type: application/json", "!Retry-After", "!Retry-After"]
--- response_body eval
[$::Refused, "", main::pool(1, 2, 0)]
--- no_error_log
[error]



=== TEST 13: no reply: socketTimeoutMS (500 ms) gives 503 in time, a new connection next
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MOCK_PORT/msgbus_test?socketTimeoutMS=500";
--- config
    location / { msgbus; msgbus_admin on; }
--- init
Msgbus::MockMongo::start(
    label  => 'no reply',
    conns  => { 1 => ['hang'] },
    expect => ['1 hello ok', '1 ping hang',
               '2 hello ok', '2 ping ok', '2 ping ok'],
);
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request eval
["GET /v2/ping", "GET /v2/ping", "GET /v2/health"]
--- timeout: 1.5
--- error_code eval
[503, 204, 200]
--- response_headers eval
["Retry-After: 1\nContent-Type: application/json", "!Retry-After", "!Retry-After"]
--- response_body eval
[$::TimedOut, "", main::pool(2, 1, 1)]
--- error_log eval
"msgbus mongo: $::Store did not answer in time"



=== TEST 14: bytes after a valid reply: 204, then the idle connection is closed
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MOCK_PORT/msgbus_test?socketTimeoutMS=500";
--- config
    location / { msgbus; msgbus_admin on; }
--- init
Msgbus::MockMongo::start(
    label  => 'trailing garbage',
    conns  => { 1 => ['trailing_garbage'] },
    expect => ['1 hello ok', '1 ping trailing_garbage',
               '2 hello ok', '2 ping ok', '2 ping ok'],
);
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request eval
["GET /v2/ping", "GET /v2/ping", "GET /v2/health"]
--- error_code eval
[204, 204, 200]
--- response_body eval
["", "", main::pool(2, 1, 1)]
--- error_log eval
"msgbus mongo pool: $::Store wrote on an idle connection"



=== TEST 15: the store closes an idle connection: the next request opens a new one
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MOCK_PORT/msgbus_test?socketTimeoutMS=500";
--- config
    location / { msgbus; msgbus_admin on; }
--- init
Msgbus::MockMongo::start(
    label  => 'idle connection closed',
    conns  => { 1 => ['ok_then_close'] },
    expect => ['1 hello ok', '1 ping ok_then_close',
               '2 hello ok', '2 ping ok', '2 ping ok'],
);
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request eval
["GET /v2/ping", "GET /v2/ping", "GET /v2/health"]
--- error_code eval
[204, 204, 200]
--- response_body eval
["", "", main::pool(2, 1)]
--- error_log eval
"msgbus mongo pool: $::Store closed an idle connection"
--- no_error_log
[error]



=== TEST 16: a store that trickles its reply is cut off at socketTimeoutMS
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MOCK_PORT/msgbus_test?socketTimeoutMS=500";
--- config
    location / { msgbus; }
--- init
Msgbus::MockMongo::start(
    label  => 'trickle',
    conns  => { 1 => ['trickle'] },
);
--- request
GET /v2/ping
--- timeout: 1.5
--- error_code: 503
--- response_body_like chomp
the store did not answer in time
--- error_log eval
"msgbus mongo: $::Store did not answer in time"
