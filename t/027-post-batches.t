# Group commit (ops/ngx_http_msgbus_post_batch.c): posts to one queue that
# arrive while its insert is in flight join the next batch.  On 2 workers:
# what a worker remembers of a queue's document follows the queue's
# changes made through this nginx (a PATCH of its defaults, a DELETE);
# clients that go away while their post waits in a batch: t/028.

use lib 't/lib';
use Test::Nginx::Socket;
use Msgbus::Test;

plan('no_plan');

$ENV{TEST_NGINX_PROJECT} = "t027-$$-" . time;

workers(2);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: a PATCH of the queue's default TTL reaches the next posts on both workers
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/openstack-messaging-v2.0-json-patch"
--- request eval
[(map { "POST /v2/queues/patched/messages\n{\"messages\": [{\"body\": $_}]}" } 1 .. 4),
 "PATCH /v2/queues/patched\n[{\"op\": \"add\", \"path\": \"/metadata/_default_message_ttl\", \"value\": 120}]",
 (map { "POST /v2/queues/patched/messages\n{\"messages\": [{\"body\": $_}]}" } 5 .. 10),
 "GET /v2/queues/patched/messages?echo=true&limit=10"]
--- error_code eval
[(201) x 4, 200, (201) x 6, 200]
--- response_body_like eval
[(qr/resources/) x 4, qr/"_default_message_ttl": 120/, (qr/resources/) x 6,
 qr/^(?!.*"ttl": 120.*"ttl": 3600)(?=(?:.*?"ttl": 3600){4})(?=(?:.*?"ttl": 120){6})/s]
--- no_error_log
[error]



=== TEST 2: a queue deleted while both workers remember it is created again by the next post
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
[(map { "POST /v2/queues/gone/messages\n{\"messages\": [{\"body\": $_}]}" } 1 .. 4),
 "DELETE /v2/queues/gone",
 (map { "POST /v2/queues/gone/messages\n{\"messages\": [{\"body\": $_}]}" } 5 .. 8),
 "GET /v2/queues/gone/stats",
 "GET /v2/queues?name=gone"]
--- error_code eval
[(201) x 4, 204, (201) x 4, 200, 200]
--- response_body_like eval
[(qr/resources/) x 4, qr/^$/, (qr/resources/) x 4,
 qr/"total": 4\b/, qr/"name": "gone"/]
--- no_error_log
[error]
