# Client-ID, the project and queue names: Zaqar's checks and 400 errors.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;

repeat_each(2);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: no Client-ID
--- config
    location / { msgbus; }
--- request
GET /v2/queues
--- more_headers
X-Project-ID: p1
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body chomp
{"title": "Missing header value", "description": "The \"Client-ID\" header is required."}
--- no_error_log
[error]



=== TEST 2: headers are checked before the method (Zaqar's order)
--- config
    location / { msgbus; }
--- request
POST /v2/queues
--- error_code: 400
--- response_body chomp
{"title": "Missing header value", "description": "The \"Client-ID\" header is required."}



=== TEST 3: Client-ID values that are not UUIDs
--- config
    location / { msgbus; }
--- more_headers eval
["Client-ID: not-a-uuid\nX-Project-ID: p1",
 "Client-ID: \nX-Project-ID: p1",
 "Client-ID: 3381af92-2b9e-11e3-b191-71861300734\nX-Project-ID: p1",
 "Client-ID: 3381af92-2b9e-11e3-b191-71861300734cc\nX-Project-ID: p1",
 "Client-ID: 3381af92_2b9e-11e3-b191-71861300734c\nX-Project-ID: p1",
 "Client-ID: {3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: p1"]
--- request eval
["GET /v2/queues", "GET /v2/queues", "GET /v2/queues", "GET /v2/queues",
 "GET /v2/queues", "GET /v2/queues"]
--- error_code eval
[400, 400, 400, 400, 400, 400]
--- response_body eval
[('{"title": "Wrong UUID value", "description": "Malformed hexadecimal UUID."}') x 6]



=== TEST 4: the forms of UUID that Zaqar accepts
--- config
    location / { msgbus; }
--- more_headers eval
["Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: p1",
 "Client-ID: 3381AF922B9E11E3B19171861300734C\nX-Project-ID: p1",
 "Client-ID: {3381af92-2b9e-11e3-b191-71861300734c}\nX-Project-ID: p1",
 "Client-ID: urn:uuid:3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: p1"]
--- request eval
["GET /v2/queues", "GET /v2/queues", "GET /v2/queues", "GET /v2/queues"]
--- error_code eval
[200, 200, 200, 200]



=== TEST 5: msgbus_client_id relaxed takes 10 to 36 characters
--- config
    location / { msgbus; msgbus_client_id relaxed; }
--- more_headers eval
["Client-ID: 123456789\nX-Project-ID: p1",
 "Client-ID: 1234567890\nX-Project-ID: p1",
 "Client-ID: my-worker-host-42.example\nX-Project-ID: p1",
 "Client-ID: 1234567890123456789012345678901234567\nX-Project-ID: p1"]
--- request eval
["GET /v2/queues", "GET /v2/queues", "GET /v2/queues", "GET /v2/queues"]
--- error_code eval
[400, 200, 200, 400]



=== TEST 6: no X-Project-ID
--- config
    location / { msgbus; }
--- request
GET /v2/queues
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
--- error_code: 400
--- response_body chomp
{"title": "Project-Id Missing", "description": "The header X-PROJECT-ID was missing"}



=== TEST 7: an empty X-Project-ID
--- config
    location / { msgbus; }
--- request
GET /v2/queues
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID:
--- error_code: 400
--- response_body chomp
{"title": "Empty project header not allowed", "description": "X-PROJECT-ID cannot be an empty string. Specify the right header X-PROJECT-ID and retry."}



=== TEST 8: a project id of 257 characters is refused on queue paths
--- config
    location / { msgbus; }
--- request
GET /v2/queues/q1/stats
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: " . ("p" x 257)
--- error_code: 400
--- response_body chomp
{"title": "Invalid queue identification", "description": "The format of the submitted queue name or project id is not valid."}



=== TEST 9: ... and 256 characters pass
--- config
    location / { msgbus; }
--- request
GET /v2/queues/q1/stats
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: " . ("p" x 256)
--- error_code: 200
--- response_body chomp
{"messages": {"claimed": 0, "free": 0, "total": 0}}



=== TEST 10: bad queue names: a$b, 65 characters, non-ASCII, empty
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request eval
["GET /v2/queues/a\$b", "GET /v2/queues/" . ("a" x 65), "GET /v2/queues/a%24b/messages",
 "GET /v2/queues/%C3%A9", "GET /v2/queues/", "PUT /v2/queues/a%20b", "GET /v2/queues/a%2Fb/stats"]
--- error_code eval
[400, 400, 400, 400, 400, 400, 404]
--- response_body eval
[('{"title": "Invalid queue identification", "description": "The format of the submitted queue name or project id is not valid."}') x 6,
 '{"title": "404 Not Found"}']



=== TEST 11: good queue names: 64 characters, dots, dashes, underscores
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- request eval
["HEAD /v2/queues/" . ("a" x 64), "GET /v2/queues/a.b-c_D9/stats"]
--- error_code eval
[404, 200]



=== TEST 12: the queue name is checked before the method
--- config
    location / { msgbus; }
--- request
POST /v2/queues/a$b/stats
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: p1
--- error_code: 400
--- response_body_like chomp
Invalid queue identification



=== TEST 13: msgbus_project binds the project to a variable; the header cannot override it
--- config
    location / {
        set $tenant "";
        if ($http_authorization = "Bearer tenant-a") { set $tenant "a"; }
        msgbus_project $tenant;
        msgbus;
    }
--- more_headers eval
["Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nAuthorization: Bearer tenant-a\nX-Project-ID: b",
 "Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: b"]
--- request eval
["GET /v2/queues/q1/stats", "GET /v2/queues/q1/stats"]
--- error_code eval
[200, 400]
--- response_body eval
['{"messages": {"claimed": 0, "free": 0, "total": 0}}',
 '{"title": "Empty project header not allowed", "description": "X-PROJECT-ID cannot be an empty string. Specify the right header X-PROJECT-ID and retry."}']



=== TEST 14: ping and the documents need no headers
--- config
    location / { msgbus; }
--- request eval
["GET /v2/ping", "GET /", "GET /v2/"]
--- error_code eval
[204, 300, 200]



=== TEST 15: a form body is refused before anything else (Zaqar's first check)
--- config
    location / { msgbus; }
--- request
POST /v2/queues/q1/messages
a=1
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body chomp
{"title": "Invalid Content-Type", "description": "Endpoint does not accept `application/x-www-form-urlencoded` content; currently supported media type is `application/json`; specify proper client-side media type with the \"Content-Type\" header."}
