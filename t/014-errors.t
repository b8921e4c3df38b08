# Every error of a msgbus location is JSON: nginx's own error pages (a
# body, URI or header too large, a malformed request, a refusal, a
# failure) become Zaqar's {"title", "description"} in application/json,
# with Zaqar's size error for a body too large; a location without
# client_max_body_size takes msgbus's body limits; an Accept without
# JSON is Zaqar's 406.  Other locations and a user's error_page keep
# nginx's pages.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;

$ENV{TEST_NGINX_PROJECT} = "t014-$$-" . time;

sub err { Msgbus::Test::err(@_) }
sub sized { Msgbus::Test::sized(@_) }

# Test::Nginx's server sets client_max_body_size 30M: the blocks about
# msgbus's own body limits run msgbus in a server of their own, behind
# a proxy_pass of the test's server.
$ENV{TEST_NGINX_BACK_PORT} = Msgbus::Test::free_port();

sub back {
    my ($directives) = @_;
    return '    msgbus_mongodb "$TEST_NGINX_MONGODB_URI";
    server {
        listen 127.0.0.1:$TEST_NGINX_BACK_PORT;
        location / { msgbus; ' . $directives . '}
    }
';
}

our $Headers = "Client-ID: $Msgbus::Test::ClientId\n"
               . "X-Project-ID: $ENV{TEST_NGINX_PROJECT}\n"
               . "Content-Type: application/json";

our $NotAcceptable = err('406 Not Acceptable',
                         'Endpoint only serves `application/json`; specify '
                         . 'client-side media type support with the '
                         . '\"Accept\" header.');

repeat_each(2);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: a body over the user's client_max_body_size: 413, Zaqar's size error with that limit
--- config
    location / { msgbus; client_max_body_size 1k; }
--- more_headers eval
$main::Headers
--- request eval
["POST /v2/queues/q/messages\n" . main::sized(2000),
 "PUT /v2/queues/q\n{\"m\": \"" . ('x' x 2000) . "\"}"]
--- error_code eval
[413, 413]
--- response_headers eval
[("Content-Type: application/json") x 2]
--- response_body eval
[main::err('Invalid API request', 'Message collection size is too large. Max size 1024'),
 main::err('Invalid API request', 'Queue metadata is too large. Max size: 1024')]
--- error_log eval
qr/client intended to send too large body: 20\d\d bytes/



=== TEST 2: a chunked body over client_max_body_size: the same 413, while msgbus reads it
--- config
    location / { msgbus; client_max_body_size 1k; }
--- raw_request eval
"POST /v2/queues/q/messages HTTP/1.1\r
Host: localhost\r
Client-ID: $Msgbus::Test::ClientId\r
X-Project-ID: $ENV{TEST_NGINX_PROJECT}\r
Content-Type: application/json\r
Transfer-Encoding: chunked\r
Connection: close\r
\r
7d0\r
" . main::sized(2000) . "\r
0\r
\r
"
--- error_code: 413
--- response_headers
Content-Type: application/json
--- response_body eval
main::err('Invalid API request', 'Message collection size is too large. Max size 1024')
--- error_log
client intended to send too large chunked body



=== TEST 3: no client_max_body_size: a 1.5 MB post is taken under msgbus_max_messages_post_size 2m
--- http_config eval
main::back('msgbus_max_messages_post_size 2m; ')
--- config
    location / { proxy_pass http://127.0.0.1:$TEST_NGINX_BACK_PORT; }
--- more_headers eval
$main::Headers
--- request eval
"POST /v2/queues/big/messages\n" . main::sized(1536 * 1024)
--- error_code: 201
--- response_body_like chomp
^\{"resources": \["/v2/queues/big/messages/[0-9a-f]{24}"\]\}$
--- no_error_log
[error]



=== TEST 4: no client_max_body_size: above msgbus's limit (1100k, past nginx's 1m) a post gets Zaqar's 400, not nginx's 413
--- http_config eval
main::back('msgbus_max_messages_post_size 1100k; ')
--- config
    location / { proxy_pass http://127.0.0.1:$TEST_NGINX_BACK_PORT; }
--- more_headers eval
$main::Headers
--- request eval
"POST /v2/queues/big/messages\n" . main::sized(1536 * 1024)
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body eval
main::err('Invalid API request', 'Message collection size is too large. Max size 1126400')
--- error_log
client intended to send too large body: 1572864 bytes



=== TEST 5: no client_max_body_size and msgbus's default limits: 1.5 MB of metadata is Zaqar's 400 with the metadata limit
--- http_config eval
main::back('')
--- config
    location / { proxy_pass http://127.0.0.1:$TEST_NGINX_BACK_PORT; }
--- more_headers eval
$main::Headers
--- request eval
"PUT /v2/queues/q\n{\"m\": \"" . ('x' x (1536 * 1024)) . "\"}"
--- error_code: 400
--- response_body eval
main::err('Invalid API request', 'Queue metadata is too large. Max size: 65536')
--- error_log
client intended to send too large body



=== TEST 6: a URI nginx cannot decode (%00), before any location is chosen: 400 as JSON
--- config
    location / { msgbus; }
--- raw_request eval
"GET /v2/queues/q/claims/%00 HTTP/1.1\r
Host: localhost\r
Connection: close\r
\r
"
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body eval
main::err('400 Bad Request', 'The request is malformed.')
--- error_log
client sent invalid request



=== TEST 7: a URI longer than large_client_header_buffers: 414 as JSON
--- config
    large_client_header_buffers 2 1k;
    location /v2/ { msgbus; }
--- request eval
"GET /v2/queues/" . ('q' x 2000)
--- error_code: 414
--- response_headers
Content-Type: application/json
--- response_body eval
main::err('414 URI Too Long', 'The request URI is too long.')
--- error_log
client sent too long URI



=== TEST 8: a header larger than large_client_header_buffers: nginx's 494 is a JSON 431
--- config
    large_client_header_buffers 2 1k;
    location /v2/ { msgbus; }
--- more_headers eval
"X-Big: " . ('b' x 2000)
--- request
GET /v2/queues
--- error_code: 431
--- response_headers
Content-Type: application/json
--- response_body eval
main::err('431 Request Header Fields Too Large', "The request's header fields are too large.")
--- error_log
client sent too long header line



=== TEST 9: nginx's 500 (an auth_request that answers 404) in a msgbus location is msgbus's 500
--- config
    location / { msgbus; auth_request /auth; }
    location = /auth { internal; return 404; }
--- request
GET /v2/ping
--- error_code: 500
--- response_headers
Content-Type: application/json
--- response_body eval
main::err('Internal server error', 'The request could not be completed.')
--- error_log
auth request unexpected status: 404



=== TEST 10: a refusal of nginx's (limit_except, deny) is JSON too, in the status location as well
--- config
    location / {
        msgbus;
        limit_except GET { deny all; }
    }
    location = /msgbus_status { msgbus_status; deny all; }
--- more_headers eval
$main::Headers
--- request eval
["POST /v2/queues/q/messages\n" . main::sized(100), "GET /msgbus_status"]
--- error_code eval
[403, 403]
--- response_headers eval
[("Content-Type: application/json") x 2]
--- response_body eval
[(main::err('403 Forbidden', 'Access to the resource is forbidden.')) x 2]
--- error_log
access forbidden by rule



=== TEST 11: a return of an "if" block in a msgbus location is JSON; HEAD of it has the JSON's headers and no body
--- config
    location / {
        msgbus;
        if ($arg_down) { return 503; }
    }
--- request eval
["GET /v2/ping?down=1", "HEAD /v2/ping?down=1"]
--- error_code eval
[503, 503]
--- response_headers eval
[("Content-Type: application/json\nContent-Length: "
  . length(main::err('Service temporarily unavailable', 'Please try again in a few seconds.'))) x 2]
--- response_body eval
[main::err('Service temporarily unavailable', 'Please try again in a few seconds.'), ""]
--- no_error_log
[error]



=== TEST 12: a location that is not msgbus's keeps nginx's pages, before and after a location is chosen
--- config
    location / { msgbus; }
    location /files/ { return 404; }
--- request eval
["GET /files/a", "GET /files/%00", "GET /v2/%00"]
--- error_code eval
[404, 400, 400]
--- response_headers eval
["Content-Type: text/html", "Content-Type: text/html",
 "Content-Type: application/json"]
--- response_body_like eval
[qr{<title>404 Not Found</title>}, qr{<title>400 Bad Request</title>},
 qr{^\{"title": "400 Bad Request", "description": "The request is malformed\."\}$}]
--- no_error_log
[error]



=== TEST 13: the user's error_page wins
--- config
    location / {
        msgbus;
        client_max_body_size 1k;
        error_page 413 /too-large.html;
    }
    location = /too-large.html {
        internal;
        default_type text/html;
        return 200 "<p>too large</p>\n";
    }
--- more_headers eval
$main::Headers
--- request eval
"POST /v2/queues/q/messages\n" . main::sized(2000)
--- error_code: 413
--- response_headers
Content-Type: text/html
--- response_body
<p>too large</p>
--- error_log
client intended to send too large body: 2000 bytes



=== TEST 14: an Accept without JSON is Zaqar's 406, before the headers are checked
--- config
    location / { msgbus; }
--- more_headers eval
["Accept: application/xml\n$main::Headers",
 "Accept: application/json;q=0\n$main::Headers",
 "Accept: text/html, */*;q=0\n$main::Headers",
 "Accept: text\n$main::Headers",
 "Accept: application/xml",
 "Accept: text/event-stream\n$main::Headers",
 "Accept: application/json; q =0\n$main::Headers"]
--- request eval
["GET /v2/queues", "GET /v2/queues", "GET /v2/queues", "GET /v2/queues",
 "GET /v2/queues", "POST /v2/queues/q/messages\n" . main::sized(100),
 "GET /v2/queues"]
--- error_code eval
[406, 406, 406, 406, 406, 406, 406]
--- response_headers eval
[("Content-Type: application/json") x 7]
--- response_body eval
[($main::NotAcceptable) x 7]
--- no_error_log
[error]



=== TEST 15: Accept that takes JSON: none, */*, application/*, application/json with a q; an unknown path is 404 first
--- config
    location / { msgbus; }
--- more_headers eval
[$main::Headers,
 "Accept: */*\n$main::Headers",
 "Accept: application/*;q=0.2, text/html\n$main::Headers",
 "Accept: application/json;q=0.5\n$main::Headers",
 "Accept: text/html;q=0.9, APPLICATION/JSON; q=0.1\n$main::Headers",
 "Accept: application/xml"]
--- request eval
["GET /v2/queues", "GET /v2/queues", "GET /v2/queues", "GET /v2/queues",
 "GET /v2/queues", "GET /v2/nowhere"]
--- error_code eval
[200, 200, 200, 200, 200, 404]
--- no_error_log
[error]



=== TEST 16: text/event-stream still reaches a stream (a bad resume point is the stream's 400); the status location still speaks Prometheus
--- config
    location / { msgbus; }
    location = /msgbus_status { msgbus_status; }
--- more_headers eval
["Accept: text/event-stream\n$main::Headers",
 "Accept: text/plain"]
--- request eval
["GET /v2/queues/q/messages?last_event_id=bad", "GET /msgbus_status"]
--- error_code eval
[400, 200]
--- response_headers eval
["Content-Type: application/json",
 "Content-Type: text/plain; version=0.0.4"]
--- response_body_like eval
[qr/^\Q{"title": "Invalid API request", "description": "The last event id must be a message marker."}\E$/,
 qr/^# HELP msgbus_requests/]
--- no_error_log
[error]
