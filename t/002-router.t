# The router: versions, home and ping documents; 404, 405 and OPTIONS the
# way Zaqar's framework answers them.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;

repeat_each(2);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: GET / is Zaqar's versions document with 300
--- config
    location / { msgbus; }
--- request
GET /
--- error_code: 300
--- response_headers
Content-Type: application/json
--- response_body eval
Msgbus::Test::fixture("zaqar-versions.json")
--- raw_response_headers_like: ^HTTP/1.1 300 Multiple Choices\r\n
--- no_error_log
[error]



=== TEST 2: GET /v2/ is Zaqar's JSON-Home document
--- config
    location / { msgbus; }
--- request
GET /v2/
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- error_code: 200
--- response_headers
Content-Type: application/json-home
Cache-Control: max-age=86400
--- response_body eval
Msgbus::Test::fixture("zaqar-v2-home.json")



=== TEST 3: GET /v2 (no slash) is the same document, no headers needed
--- config
    location / { msgbus; }
--- request
GET /v2
--- error_code: 200
--- response_headers
Content-Type: application/json-home
--- response_body eval
Msgbus::Test::fixture("zaqar-v2-home.json")



=== TEST 4: msgbus_admin on adds rel/health to the home document
--- config
    location / { msgbus; msgbus_admin on; }
--- request
GET /v2/
--- error_code: 200
--- response_body_like eval
qr{\n        "rel/health": \{\n            "href": "/v2/health",\n            "hints": \{\n                "allow": \[\n                    "GET"\n                \],}



=== TEST 5: GET /v2/ping answers 204 without a body
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204
--- response_body
--- response_headers
!Content-Type



=== TEST 6: HEAD /v2/ping answers 204
--- config
    location / { msgbus; }
--- request
HEAD /v2/ping
--- error_code: 204
--- response_body



=== TEST 7: an unknown path is 404 with falcon's body
--- config
    location / { msgbus; }
--- request
GET /v2/nonexistent
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- error_code: 404
--- response_headers
Content-Type: application/json
--- response_body chomp
{"title": "404 Not Found"}



=== TEST 8: unknown paths are 404 before any header check
--- config
    location / { msgbus; }
--- request eval
["GET /v1.1/queues", "GET /v2/queues/q/", "GET /v2/ping/", "GET /V2/ping",
 "GET /v2/queues/q/messages/m/x", "GET /v2/topics", "GET /v2/queues/q/claims/c/d/e/f"]
--- error_code eval
[404, 404, 404, 404, 404, 404, 404]
--- response_body eval
['{"title": "404 Not Found"}', '{"title": "404 Not Found"}',
 '{"title": "404 Not Found"}', '{"title": "404 Not Found"}',
 '{"title": "404 Not Found"}', '{"title": "404 Not Found"}',
 '{"title": "404 Not Found"}']



=== TEST 9: a wrong method is 405 with Allow
--- config
    location / { msgbus; }
--- request
DELETE /v2/ping
--- error_code: 405
--- response_headers
Allow: GET, HEAD, OPTIONS
Content-Type: application/json
--- response_body chomp
{"title": "405 Method Not Allowed"}



=== TEST 10: a wrong method on a queue path is 405 once the headers pass
--- config
    location / { msgbus; }
--- request
POST /v2/queues/q1/stats
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- error_code: 405
--- response_headers
Allow: GET, OPTIONS
--- response_body chomp
{"title": "405 Method Not Allowed"}



=== TEST 11: Allow lists each path's methods
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request eval
["POST /v2/queues", "POST /v2/queues/q1", "PUT /v2/queues/q1/messages",
 "GET /v2/queues/q1/claims", "PUT /v2/queues/q1/claims/c1",
 "POST /v2/queues/q1/messages/m1", "GET /v2/queues/q1/purge", "HEAD /"]
--- error_code eval
[405, 405, 405, 405, 405, 405, 405, 405]
--- response_headers eval
["Allow: GET, OPTIONS", "Allow: DELETE, GET, HEAD, PATCH, PUT, OPTIONS",
 "Allow: DELETE, GET, POST, OPTIONS", "Allow: POST, OPTIONS",
 "Allow: DELETE, GET, PATCH, OPTIONS", "Allow: DELETE, GET, OPTIONS",
 "Allow: POST, OPTIONS", "Allow: GET, OPTIONS"]



=== TEST 12: OPTIONS lists the methods with 200
--- config
    location / { msgbus; }
--- request
OPTIONS /v2/queues/q1/messages
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- error_code: 200
--- response_headers
Allow: DELETE, GET, POST
--- response_body



=== TEST 13: every operation is built: the subscriptions answer as Zaqar (no 501)
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request eval
["POST /v2/queues/q1/subscriptions\n{}",
 "GET /v2/queues/q1/subscriptions/5b0d3b0f8b1a4e0001000001",
 "GET /v2/queues/q1/subscriptions",
 "DELETE /v2/queues/q1/subscriptions/5b0d3b0f8b1a4e0001000001"]
--- error_code eval
[400, 404, 200, 204]
--- response_body eval
['{"title": "Invalid API request", "description": "Missing parameter subscriber in body."}',
 '{"title": "Not found", "description": "Subscription 5b0d3b0f8b1a4e0001000001 does not exist"}',
 '{"subscriptions": [], "links": []}',
 '']
--- no_error_log
[error]



=== TEST 14: GET /v2/health is 404 unless msgbus_admin is on
--- config
    location / { msgbus; }
--- request
GET /v2/health
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- error_code: 404
--- response_body chomp
{"title": "404 Not Found"}



=== TEST 15: hrefs follow the location's prefix
--- config
    location /bus/ { msgbus; }
--- request
GET /bus/
--- error_code: 300
--- response_body_like chomp
"links": \[\{"href": "/bus/v2/", "rel": "self"\}\]\}\]\}$



=== TEST 16: the home document under a prefix
--- config
    location /bus/v2/ { msgbus; }
--- request
GET /bus/v2/
--- error_code: 200
--- response_body_like chomp
"href-template": "/bus/v2/queues\{\?marker,limit,detailed\}"



=== TEST 17: paths outside the prefix are not ours
--- config
    location /bus/ { msgbus; }
--- request
GET /bus/v3/ping
--- error_code: 404
--- response_body chomp
{"title": "404 Not Found"}



=== TEST 18: a subscription's body over msgbus_max_queue_metadata is refused unread (Zaqar has no limit)
--- config
    location / { msgbus; }
--- request eval
"POST /v2/queues/q1/subscriptions\n" . ("x" x 100000)
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- error_code: 400
--- response_body chomp
{"title": "Invalid request body", "description": "Subscription is too large. Max size: 65536"}



=== TEST 19: an exact location names a resource: /v2/health on its own, admin there only
--- config
    location / { msgbus; }
    location = /v2/health { msgbus; msgbus_admin on; }
    location = /bus/v2/health { msgbus; msgbus_admin on; }
--- request eval
["GET /v2/health", "GET /bus/v2/health", "GET /v2/queues"]
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- error_code eval
[200, 200, 200]
--- response_body_like eval
[qr/^\{"storage_reachable": true, /, qr/^\{"storage_reachable": true, /, qr/^\{"queues": /]
