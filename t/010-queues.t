# Queues: create (PUT), exists (HEAD), metadata (GET), delete, on the
# store, in Zaqar's "queues" collection.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;

# each run has its own tenant, so the store may keep earlier runs' data
$ENV{TEST_NGINX_PROJECT} = "t010-$$-" . time;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: PUT creates a queue: 201, then 204 when it exists, both with Location (as Zaqar)
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["PUT /v2/queues/fruit\n{\"kind\": \"apple\", \"n\": [1, 2.5, null, {\"ok\": true}]}",
 "PUT /v2/queues/fruit\n{\"kind\": \"pear\"}"]
--- error_code eval
[201, 204]
--- response_headers eval
["Location: /v2/queues/fruit", "Location: /v2/queues/fruit"]
--- response_body eval
["", ""]
--- no_error_log
[error]



=== TEST 2: GET shows the stored metadata (first PUT wins) and the reserved defaults
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request
GET /v2/queues/fruit
--- error_code: 200
--- response_headers
Content-Type: application/json
--- response_body chomp
{"kind": "apple", "n": [1, 2.5, null, {"ok": true}], "_max_messages_post_size": 262144, "_default_message_ttl": 3600, "_default_message_delay": 0, "_dead_letter_queue": null, "_dead_letter_queue_messages_ttl": null, "_max_claim_count": null, "_enable_encrypt_messages": false}



=== TEST 3: reserved keys keep their place; a false-like value shows the default (as Zaqar); floats as repr()
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["PUT /v2/queues/reserved\n{\"_max_claim_count\": 0, \"_dead_letter_queue\": \"\", \"x\": 1e100, \"y\": null, \"f\": [5.9604644775390625e-08, 1e16, 1e15, 0.0001, 1e-5, 2.5, 123456789012345678.0]}",
 "GET /v2/queues/reserved"]
--- error_code eval
[201, 200]
--- response_body eval
["", '{"_max_claim_count": null, "_dead_letter_queue": null, "x": 1e+100, "y": null, "f": [5.960464477539063e-08, 1e+16, 1000000000000000.0, 0.0001, 1e-05, 2.5, 1.2345678901234568e+17], "_max_messages_post_size": 262144, "_default_message_ttl": 3600, "_default_message_delay": 0, "_dead_letter_queue_messages_ttl": null, "_enable_encrypt_messages": false}']



=== TEST 4: a queue that does not exist: GET gives the defaults (Zaqar 15), HEAD 404
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues/nothing-here", "HEAD /v2/queues/nothing-here", "HEAD /v2/queues/fruit"]
--- error_code eval
[200, 404, 204]
--- response_body eval
['{"_max_messages_post_size": 262144, "_default_message_ttl": 3600, "_default_message_delay": 0, "_dead_letter_queue": null, "_dead_letter_queue_messages_ttl": null, "_max_claim_count": null, "_enable_encrypt_messages": false}', "", ""]



=== TEST 5: PUT without a body creates a queue with no metadata
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["PUT /v2/queues/bare", "HEAD /v2/queues/bare"]
--- error_code eval
[201, 204]



=== TEST 6: DELETE is idempotent
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["DELETE /v2/queues/bare", "HEAD /v2/queues/bare", "DELETE /v2/queues/bare", "PUT /v2/queues/bare"]
--- error_code eval
[204, 404, 204, 201]



=== TEST 7: bad metadata: not JSON, not an object, too large; nothing is created
--- config
    location / { msgbus; msgbus_max_queue_metadata 100; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["PUT /v2/queues/bad\n{\"a\":", "PUT /v2/queues/bad\n[1, 2]", "PUT /v2/queues/bad\n\"text\"",
 "PUT /v2/queues/bad\n{\"a\": 99999999999999999999}",
 "PUT /v2/queues/bad\n{\"a\": \"" . ("x" x 100) . "\"}",
 "HEAD /v2/queues/bad"]
--- error_code eval
[400, 400, 400, 400, 400, 404]
--- response_body eval
['{"title": "Invalid request body", "description": "Request body could not be parsed."}',
 '{"title": "Invalid request body", "description": "Document type not supported."}',
 '{"title": "Invalid request body", "description": "Request body could not be parsed."}',
 '{"title": "Invalid request body", "description": "JSON contains integer that is too large."}',
 '{"title": "Invalid API request", "description": "Queue metadata is too large. Max size: 100"}',
 ""]



=== TEST 8: reserved metadata is checked as Zaqar checks it
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["PUT /v2/queues/r1\n{\"_default_message_ttl\": 59}",
 "PUT /v2/queues/r1\n{\"_default_message_ttl\": 1209601}",
 "PUT /v2/queues/r1\n{\"_default_message_ttl\": \"60\"}",
 "PUT /v2/queues/r1\n{\"_default_message_ttl\": 60.5}",
 "PUT /v2/queues/r1\n{\"_default_message_ttl\": true}",
 "PUT /v2/queues/r1\n{\"_max_messages_post_size\": 0}",
 "PUT /v2/queues/r1\n{\"_max_claim_count\": \"x\"}",
 "PUT /v2/queues/r1\n{\"_dead_letter_queue_messages_ttl\": 30}",
 "PUT /v2/queues/r1\n{\"_default_message_delay\": 901}",
 "PUT /v2/queues/r1\n{\"_enable_encrypt_messages\": 1}",
 "PUT /v2/queues/r1\n{\"_default_message_ttl\": 59, \"_default_message_delay\": 901}",
 "HEAD /v2/queues/r1",
 "PUT /v2/queues/r1\n{\"_default_message_ttl\": 60, \"_max_claim_count\": -5, \"_enable_encrypt_messages\": 0, \"_dead_letter_queue\": 5}"]
--- error_code eval
[400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 404, 201]
--- response_body eval
['{"title": "Invalid API request", "description": "_default_message_ttl can not exceed 1209600 seconds, and must be at least 60 seconds long."}',
 '{"title": "Invalid API request", "description": "_default_message_ttl can not exceed 1209600 seconds, and must be at least 60 seconds long."}',
 '{"title": "Invalid API request", "description": "_default_message_ttl must be integer."}',
 '{"title": "Invalid API request", "description": "_default_message_ttl must be integer."}',
 '{"title": "Invalid API request", "description": "_default_message_ttl can not exceed 1209600 seconds, and must be at least 60 seconds long."}',
 '{"title": "Invalid API request", "description": "_max_messages_post_size can not exceed 262144,  and must be at least greater than 0."}',
 '{"title": "Invalid API request", "description": "_max_claim_count must be integer."}',
 '{"title": "Invalid API request", "description": "The TTL for a message may not exceed 1209600 seconds, and must be at least 60 seconds long."}',
 '{"title": "Invalid API request", "description": "The TTL can not exceed 900 seconds, and must be at least 0 seconds long."}',
 '{"title": "Invalid API request", "description": "_enable_encrypt_messages must be boolean."}',
 '{"title": "Invalid API request", "description": "_default_message_ttl can not exceed 1209600 seconds, and must be at least 60 seconds long."}',
 "", ""]



=== TEST 9: tenants are isolated: another project sees none of these queues
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: other-$ENV{TEST_NGINX_PROJECT}"
--- request eval
["HEAD /v2/queues/fruit", "DELETE /v2/queues/fruit"]
--- error_code eval
[404, 204]



=== TEST 10: ... and the owner still has its queue
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request
HEAD /v2/queues/fruit
--- error_code: 204



=== TEST 11: the store is down: 503 with Zaqar's description
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:1/msgbus_test?connectTimeoutMS=300";
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["PUT /v2/queues/x", "GET /v2/queues/x", "DELETE /v2/queues/x"]
--- error_code eval
[503, 503, 503]
--- response_body eval
['{"title": "Service temporarily unavailable", "description": "Queue could not be created. Please try again in a few seconds."}',
 '{"title": "Service temporarily unavailable", "description": "Queue metadata could not be retrieved. Please try again in a few seconds."}',
 '{"title": "Service temporarily unavailable", "description": "Queue could not be deleted. Please try again in a few seconds."}']
--- error_log
msgbus mongo: cannot connect to 127.0.0.1:1 (111: Connection refused)



=== TEST 12: the message limit directives set the defaults shown and the checks of reserved metadata
--- config
    location / {
        msgbus;
        msgbus_max_messages_post_size 1k;
        msgbus_default_message_ttl 2m;
        msgbus_max_message_ttl 600;
        msgbus_max_message_delay 30;
    }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues/limits",
 "PUT /v2/queues/limits\n{\"_default_message_ttl\": 601}",
 "PUT /v2/queues/limits\n{\"_max_messages_post_size\": 1025}",
 "PUT /v2/queues/limits\n{\"_default_message_delay\": 31}",
 "PUT /v2/queues/limits\n{\"_default_message_ttl\": 600, \"_max_messages_post_size\": 1024, \"_default_message_delay\": 30}"]
--- error_code eval
[200, 400, 400, 400, 201]
--- response_body eval
['{"_max_messages_post_size": 1024, "_default_message_ttl": 120, "_default_message_delay": 0, "_dead_letter_queue": null, "_dead_letter_queue_messages_ttl": null, "_max_claim_count": null, "_enable_encrypt_messages": false}',
 '{"title": "Invalid API request", "description": "_default_message_ttl can not exceed 600 seconds, and must be at least 60 seconds long."}',
 '{"title": "Invalid API request", "description": "_max_messages_post_size can not exceed 1024,  and must be at least greater than 0."}',
 '{"title": "Invalid API request", "description": "The TTL can not exceed 30 seconds, and must be at least 0 seconds long."}',
 ""]



=== TEST 13: a default TTL above the maximum is refused at configuration time
--- config
    location / { msgbus; msgbus_default_message_ttl 2h; msgbus_max_message_ttl 1h; }
--- must_die
--- error_log
msgbus_default_message_ttl must be at least 60 seconds and at most msgbus_max_message_ttl
