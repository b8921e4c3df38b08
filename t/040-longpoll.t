# Long-polls, claims that wait, event streams and the status, request by
# request: parameters, what a wait ends with, a stream's headers and
# first bytes (t/util/realtime.py first: a client that hangs up), the
# status's shape.  The timing and the concurrency
# (wake-ups across workers, aborts, resume, reload, two nginx) are in
# t/041-realtime.t.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;

$ENV{TEST_NGINX_PROJECT} = "t040-$$-" . time;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: ?wait= must be an integer from 0 to msgbus_longpoll_max_wait
--- config
    location / { msgbus; msgbus_longpoll_max_wait 5s; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues/lp1/messages?wait=abc",
 "GET /v2/queues/lp1/messages?wait=6",
 "GET /v2/queues/lp1/messages?wait=-1",
 "POST /v2/queues/lp1/claims?wait=6\n{}"]
--- error_code eval
[400, 400, 400, 400]
--- response_body eval
['{"title": "Invalid parameter", "description": "The \"wait\" parameter is invalid. The value must be an integer."}',
 '{"title": "Invalid API request", "description": "Wait must be at least 0 and may not be greater than 5."}',
 '{"title": "Invalid API request", "description": "Wait must be at least 0 and may not be greater than 5."}',
 '{"title": "Invalid API request", "description": "Wait must be at least 0 and may not be greater than 5."}']
--- no_error_log
[error]



=== TEST 2: a long-poll that times out: the empty page, with the marker it was given
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues/lp2/messages?wait=1&marker=7&limit=5",
 "GET /v2/queues/lp2/messages?wait=1",
 "GET /v2/queues/lp2/messages?wait=0"]
--- error_code eval
[200, 200, 200]
--- response_body eval
['{"messages": [], "links": [{"rel": "next", "href": "/v2/queues/lp2/messages?marker=7&limit=5"}]}',
 '{"messages": [], "links": []}',
 '{"messages": [], "links": []}']
--- no_error_log
[error]



=== TEST 3: a long-poll with messages to show answers at once, as a listing
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/lp3/messages\n{\"messages\": [{\"body\": 1}]}",
 "GET /v2/queues/lp3/messages?wait=20&echo=true"]
--- timeout: 5
--- error_code eval
[201, 200]
--- response_body_like eval
['"resources"',
 '^\{"messages": \[\{"id": "[0-9a-f]{24}", "href": "/v2/queues/lp3/messages/[0-9a-f]{24}", "ttl": 3600, "age": \d+, "body": 1\}\], "links": \[\{"rel": "next", "href": "/v2/queues/lp3/messages\?echo=true&marker=1"\}\]\}$']
--- no_error_log
[error]



=== TEST 4: a claim that waits for nothing ends with 204
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/lp4/claims?wait=1\n{\"ttl\": 60}",
 "GET /v2/queues/lp4/stats"]
--- error_code eval
[204, 200]
--- response_body eval
["", '{"messages": {"claimed": 0, "free": 0, "total": 0}}']
--- no_error_log
[error]



=== TEST 5: a stream: status, headers, a comment, then the messages as events; resumed after ?last_event_id=; a bad resume point is 400
--- config
    location / { msgbus; }
    location = /verdict { root html; }
--- init
Msgbus::Test::realtime('first');
--- request
GET /verdict
--- response_body
ok - the stream answers 200
ok - header Content-Type: text/event-stream
ok - header Cache-Control: no-cache
ok - header X-Accel-Buffering: no
ok - the stream's bytes: a comment, then each message once
ok - a bad resume point is refused with 400



=== TEST 6: the status: JSON per worker and summed; Prometheus text by Accept
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
--- more_headers eval
["Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}",
 "",
 "Accept: text/plain",
 ""]
--- request eval
["GET /v2/queues/lp8/messages?wait=1",
 "GET /msgbus_status",
 "GET /msgbus_status",
 "POST /msgbus_status"]
--- error_code eval
[200, 200, 200, 405]
--- response_headers eval
["Content-Type: application/json",
 "Content-Type: application/json",
 "Content-Type: text/plain; version=0.0.4",
 ""]
--- response_body_like eval
['^\{"messages": \[\], "links": \[\]\}$',
 '^\{"workers": \[\{"worker": \d+, "pid": \d+, "requests": \d+, "errors_4xx": \d+, "errors_5xx": 0, "wakeups": \d+, "timeouts": \d+, "fetches": \d+, "retries": \d+, "polls": \d+, "events": \d+, "store_conns": \d+, "store_idle": \d+, "store_queued": 0, "store_commands": \d+, "store_failures": 0, "waiting": \{"long_poll": 0, "claim": 0, "stream": 0\}, "operations": \{.*"message_list": 1.*\}\}.*\], "total": \{"workers": \d+, "requests": [1-9]\d*, .*"timeouts": 1, .*"waiting": \{"long_poll": 0, "claim": 0, "stream": 0\}, "operations": \{"message_list": 1\}\}\}\n$',
 '(?s)# TYPE msgbus_requests counter\nmsgbus_requests\{worker="\d+"\} \d+\n.*msgbus_requests_all 1\n.*msgbus_waiting\{worker="\d+",kind="stream"\} 0\n.*msgbus_operations\{worker="\d+",op="message_list"\} 1\n',
 '']
--- no_error_log
[error]



=== TEST 7: msgbus_sse_ping below a second fails "nginx -t"
--- config
    location / { msgbus; msgbus_sse_ping 500ms; }
--- must_die
--- error_log
msgbus_sse_ping must be at least 1s
