# PATCH /v2/queues/{q}: Zaqar's JSON-Patch subset on the metadata.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;

$ENV{TEST_NGINX_PROJECT} = "t012-$$-" . time;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: add, replace, remove, escaped keys; GET shows the result
--- config
    location / { msgbus; }
--- more_headers eval
["Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json",
 "Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/openstack-messaging-v2.0-json-patch",
 "Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"]
--- request eval
["PUT /v2/queues/pq\n{\"a\": 1, \"b\": 2}",
 "PATCH /v2/queues/pq\n" . '[{"op": "add", "path": "/metadata/c", "value": 3}, {"op": "replace", "path": "/metadata/a", "value": "A"}, {"op": "remove", "path": "/metadata/b"}, {"op": "add", "path": "/METADATA/ d~1e~0 ", "value": [1]}, {"op": "replace", "path": "/metadata/_max_claim_count", "value": 5}]',
 "GET /v2/queues/pq"]
--- error_code eval
[201, 200, 200]
--- response_body eval
["",
 '{"a": "A", "c": 3, "d/e~": [1], "_max_claim_count": 5, "_max_messages_post_size": 262144, "_default_message_ttl": 3600, "_default_message_delay": 0, "_dead_letter_queue": null, "_dead_letter_queue_messages_ttl": null, "_enable_encrypt_messages": false}',
 '{"a": "A", "c": 3, "d/e~": [1], "_max_claim_count": 5, "_max_messages_post_size": 262144, "_default_message_ttl": 3600, "_default_message_delay": 0, "_dead_letter_queue": null, "_dead_letter_queue_messages_ttl": null, "_enable_encrypt_messages": false}']



=== TEST 2: the media type must be Zaqar's: 415 with Accept-Patch
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json-patch+json"
--- request
PATCH /v2/queues/pq
[]
--- error_code: 415
--- response_headers
Accept-Patch: application/openstack-messaging-v2.0-json-patch
--- response_body chomp
{"title": "Accepted media type for PATCH: {'Accept-Patch': 'application/openstack-messaging-v2.0-json-patch'}."}



=== TEST 3: bad changes, each with Zaqar's text; nothing changes
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/openstack-messaging-v2.0-json-patch"
--- request eval
["PATCH /v2/queues/pq\n[1]",
 "PATCH /v2/queues/pq\n[{\"path\": \"/metadata/a\"}]",
 "PATCH /v2/queues/pq\n[{\"op\": \"move\", \"path\": \"/metadata/a\"}]",
 "PATCH /v2/queues/pq\n[{\"op\": \"add\", \"value\": 1}]",
 "PATCH /v2/queues/pq\n[{\"op\": \"add\", \"path\": \"metadata/a\", \"value\": 1}]",
 "PATCH /v2/queues/pq\n[{\"op\": \"add\", \"path\": \"/metadata//a\", \"value\": 1}]",
 "PATCH /v2/queues/pq\n[{\"op\": \"add\", \"path\": \"/metadata/a/\", \"value\": 1}]",
 "PATCH /v2/queues/pq\n[{\"op\": \"add\", \"path\": \"/metadata/a~2\", \"value\": 1}]",
 "PATCH /v2/queues/pq\n[{\"op\": \"add\", \"path\": \"/metadata\", \"value\": 1}]",
 "PATCH /v2/queues/pq\n[{\"op\": \"add\", \"path\": \"/metadata/a\"}]",
 "PATCH /v2/queues/pq\n[{\"op\": \"add\", \"path\": \"/meta/a\", \"value\": 1}]",
 "PATCH /v2/queues/pq\n[{\"op\": \"replace\", \"path\": \"/metadata/zz\", \"value\": 1}]",
 "PATCH /v2/queues/pq\n[{\"op\": \"remove\", \"path\": \"/metadata/zz\"}]",
 "PATCH /v2/queues/pq\n[{\"op\": \"add\", \"path\": \"/metadata/_default_message_ttl\", \"value\": 10}]",
 "PATCH /v2/queues/pq\n",
 "PATCH /v2/queues/pq\n{}",
 "PATCH /v2/queues/nonexist\n[]"]
--- error_code eval
[400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 409, 409, 400, 400, 400, 404]
--- response_body eval
['{"title": "Invalid request body", "description": "Operations must be JSON objects."}',
 '{"title": "Invalid request body", "description": "Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace."}',
 '{"title": "Invalid request body", "description": "Invalid operation: `move`. It must be one of the following: add, remove, replace."}',
 '{"title": "Invalid request body", "description": "Unable to find \'path\' in JSON Schema change"}',
 '{"title": "Invalid request body", "description": "Pointer `metadata/a` does not start with \"/\"."}',
 '{"title": "Invalid request body", "description": "Pointer `/metadata//a` contains adjacent \"/\"."}',
 '{"title": "Invalid request body", "description": "Pointer `/metadata/a/` end with \"/\"."}',
 '{"title": "Invalid request body", "description": "Pointer `/metadata/a~2` contains \"~\" not part of a recognized escape sequence."}',
 '{"title": "Invalid request body", "description": "Invalid JSON pointer for this resource: \'/metadata, e.g /metadata/key\'"}',
 '{"title": "Invalid request body", "description": "Operation \"add\" requires a member named \"value\"."}',
 '{"title": "Invalid request body", "description": "The root of path must be metadata, e.g /metadata/key."}',
 '{"title": "Resource conflict", "description": "Can\'t replace non-existent object zz."}',
 '{"title": "Resource conflict", "description": "Can\'t remove non-existent object zz."}',
 '{"title": "Invalid request body", "description": "_default_message_ttl can not exceed 1209600 seconds, and must be at least 60 seconds long."}',
 '{"title": "Invalid request body", "description": "PATCH body could not be empty for update."}',
 '{"title": "Invalid request body", "description": "Document type not supported."}',
 qr/^\{"title": "Not found", "description": "Queue nonexist does not exist for project t012-/]



=== TEST 4: ... the metadata is what TEST 1 left
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request
GET /v2/queues/pq
--- response_body chomp
{"a": "A", "c": 3, "d/e~": [1], "_max_claim_count": 5, "_max_messages_post_size": 262144, "_default_message_ttl": 3600, "_default_message_delay": 0, "_dead_letter_queue": null, "_dead_letter_queue_messages_ttl": null, "_enable_encrypt_messages": false}
