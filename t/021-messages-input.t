# POST /v2/queues/{q}/messages with bad input: each a 400 with Zaqar's
# JSON error, and the store unchanged.  Every block posts to "kept" (two
# messages, stored by TEST 1) and to "absent" (never created); the next
# block's init counts kept's messages in the store, and each block ends
# with HEAD of absent: 404.  Parse and type errors are "Invalid request
# body", range, empty and size errors "Invalid API request".

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;

$ENV{TEST_NGINX_PROJECT} = "t021-$$-" . time;

# the number of messages of a queue of ours in the store
sub count { Msgbus::Test::count_messages($ENV{TEST_NGINX_PROJECT}, $_[0]) }

sub err { Msgbus::Test::err(@_) }
sub sized { Msgbus::Test::sized(@_) }

# a body of $depth nested arrays
sub nested {
    my ($depth) = @_;
    return '{"messages": [{"body": ' . ('[' x $depth) . (']' x $depth) . '}]}';
}

# $n ids for ?ids= that are no ObjectIds
sub bad_ids {
    my ($n) = @_;
    return join ',', map { "bad$_" } 1 .. $n;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the queue "kept" gets two messages
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1}, {\"body\": 2}]}",
 "HEAD /v2/queues/absent"]
--- error_code eval
[201, 404]



=== TEST 2: malformed JSON: "Request body could not be parsed."
--- config
    location / { msgbus; }
--- init
Test::More::is(main::count('kept'), 2, 'TEST 2: kept has its two messages');
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/kept/messages\n{\"messages\": [",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1}]",
 "POST /v2/queues/kept/messages\nnot json",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1},]}",
 "POST /v2/queues/kept/messages\n{'messages': [{'body': 1}]}",
 "POST /v2/queues/kept/messages\n\"a string\"",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1}]} {}",
 "POST /v2/queues/absent/messages\n{\"messages\": [",
 "HEAD /v2/queues/absent"]
--- error_code eval
[400, 400, 400, 400, 400, 400, 400, 400, 404]
--- response_headers eval
[("Content-Type: application/json") x 8, ""]
--- response_body eval
[(main::err('Invalid request body', 'Request body could not be parsed.')) x 8, ""]



=== TEST 3: ttl and delay of the wrong type: 'The value of the "ttl" field must be a int.'
--- config
    location / { msgbus; }
--- init
Test::More::is(main::count('kept'), 2, 'TEST 3: malformed JSON stored nothing');
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1, \"ttl\": \"60\"}]}",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1, \"ttl\": 60.5}]}",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1, \"ttl\": null}]}",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1, \"ttl\": [60]}]}",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1}, {\"body\": 2, \"ttl\": \"60\"}]}",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1, \"delay\": \"60\"}]}",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1, \"delay\": 60.5}]}",
 "POST /v2/queues/absent/messages\n{\"messages\": [{\"body\": 1, \"ttl\": \"60\"}]}",
 "HEAD /v2/queues/absent"]
--- error_code eval
[400, 400, 400, 400, 400, 400, 400, 400, 404]
--- response_headers eval
[("Content-Type: application/json") x 8, ""]
--- response_body eval
[(main::err('Invalid request body', 'The value of the \"ttl\" field must be a int.')) x 5,
 (main::err('Invalid request body', 'The value of the \"delay\" field must be a int.')) x 2,
 main::err('Invalid request body', 'The value of the \"ttl\" field must be a int.'),
 ""]



=== TEST 4: ttl out of range: 59, 1209601, -1, true (1); 2^63 and 1e309 do not parse
--- config
    location / { msgbus; }
--- init
Test::More::is(main::count('kept'), 2, 'TEST 4: wrong types stored nothing');
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1, \"ttl\": 59}]}",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1, \"ttl\": 1209601}]}",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1, \"ttl\": -1}]}",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1, \"ttl\": true}]}",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1, \"ttl\": 60}, {\"body\": 2, \"ttl\": 59}]}",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1, \"ttl\": 9223372036854775808}]}",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1, \"ttl\": -9223372036854775809}]}",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1, \"ttl\": 1e309}]}",
 "POST /v2/queues/absent/messages\n{\"messages\": [{\"body\": 1, \"ttl\": 59}]}",
 "HEAD /v2/queues/absent"]
--- error_code eval
[400, 400, 400, 400, 400, 400, 400, 400, 400, 404]
--- response_headers eval
[("Content-Type: application/json") x 9, ""]
--- response_body eval
[(main::err('Invalid API request', 'The TTL for a message may not exceed 1209600 seconds, and must be at least 60 seconds long.')) x 5,
 (main::err('Invalid request body', 'JSON contains integer that is too large.')) x 2,
 main::err('Invalid request body', 'Request body could not be parsed.'),
 main::err('Invalid API request', 'The TTL for a message may not exceed 1209600 seconds, and must be at least 60 seconds long.'),
 ""]



=== TEST 5: delay out of range: -1, 901 (Zaqar's text lacks a space after the comma)
--- config
    location / { msgbus; }
--- init
Test::More::is(main::count('kept'), 2, 'TEST 5: ttl out of range stored nothing');
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1, \"delay\": -1}]}",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1, \"delay\": 901}]}",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1, \"delay\": 0}, {\"body\": 2, \"delay\": 901}]}",
 "POST /v2/queues/absent/messages\n{\"messages\": [{\"body\": 1, \"delay\": 901}]}",
 "HEAD /v2/queues/absent"]
--- error_code eval
[400, 400, 400, 400, 404]
--- response_headers eval
[("Content-Type: application/json") x 4, ""]
--- response_body eval
[(main::err('Invalid API request', 'The Delay TTL for a message may not exceed 900 seconds,and must be at least 0 seconds long.')) x 4,
 ""]



=== TEST 6: the document's shape: no body, no messages, messages not a list of objects
--- config
    location / { msgbus; }
--- init
Test::More::is(main::count('kept'), 2, 'TEST 6: delay out of range stored nothing');
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/kept/messages\n{\"messages\": [{\"ttl\": 60}]}",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1}, {\"ttl\": 60}]}",
 "POST /v2/queues/kept/messages\n{\"messages\": []}",
 "POST /v2/queues/kept/messages\n[{\"body\": 1}]",
 "POST /v2/queues/kept/messages\n{\"body\": 1}",
 "POST /v2/queues/kept/messages\n{\"messages\": {\"body\": 1}}",
 "POST /v2/queues/kept/messages\n{\"messages\": \"x\"}",
 "POST /v2/queues/kept/messages\n{\"messages\": null}",
 "POST /v2/queues/kept/messages\n{\"messages\": [1]}",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": 1}, [{\"body\": 2}]]}",
 "POST /v2/queues/absent/messages\n{\"messages\": []}",
 "POST /v2/queues/absent/messages\n{\"messages\": [{\"ttl\": 60}]}",
 "HEAD /v2/queues/absent"]
--- error_code eval
[400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 404]
--- response_headers eval
[("Content-Type: application/json") x 12, ""]
--- response_body eval
[(main::err('Invalid request body', 'Missing \"body\" field.')) x 2,
 main::err('Invalid API request', 'No messages to enqueu.'),
 (main::err('Invalid API request', 'No messages were found in the request body.')) x 2,
 (main::err('Invalid request body', 'Document type not supported.')) x 5,
 main::err('Invalid API request', 'No messages to enqueu.'),
 main::err('Invalid request body', 'Missing \"body\" field.'),
 ""]



=== TEST 7: one byte over 262144 is too large; exactly 262144 is taken (in the queue "big")
--- config
    location / { msgbus; }
--- init
Test::More::is(main::count('kept'), 2, 'TEST 7: bad shapes stored nothing');
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/kept/messages\n" . main::sized(262145),
 "POST /v2/queues/absent/messages\n" . main::sized(262145),
 "HEAD /v2/queues/absent",
 "POST /v2/queues/big/messages\n" . main::sized(262144)]
--- error_code eval
[400, 400, 404, 201]
--- response_headers eval
["Content-Type: application/json", "Content-Type: application/json", "", "Content-Type: application/json"]
--- response_body_like eval
[quotemeta(main::err('Invalid API request', 'Message collection size is too large. Max size 262144')),
 quotemeta(main::err('Invalid API request', 'Message collection size is too large. Max size 262144')),
 '^$',
 '^\{"resources": \["/v2/queues/big/messages/[0-9a-f]{24}"\]\}$']



=== TEST 8: a queue's _max_messages_post_size is its limit, as Zaqar words it
--- config
    location / { msgbus; }
--- init
Test::More::is(main::count('kept'), 2, 'TEST 8: too large stored nothing');
Test::More::is(main::count('big'), 1, 'TEST 8: 262144 bytes were stored');
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["PUT /v2/queues/small\n{\"_max_messages_post_size\": 100}",
 "POST /v2/queues/small/messages\n" . main::sized(101),
 "POST /v2/queues/small/messages\n" . main::sized(100)]
--- error_code eval
[201, 400, 201]
--- response_body_like eval
['^$',
 quotemeta(main::err('Invalid API request', 'Message collection size is too large. The max size for current queue is 100. It is calculated by max size = min(max_messages_post_size_config: 262144, max_messages_post_size_queue: 100).')),
 '^\{"resources": \["/v2/queues/small/messages/[0-9a-f]{24}"\]\}$']



=== TEST 9: bytes that are not UTF-8 do not parse
--- config
    location / { msgbus; }
--- init
Test::More::is(main::count('small'), 1, 'TEST 9: small took the post of its size only');
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": \"\xff\"}]}",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": \"\xc0\xaf\"}]}",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": \"\xed\xa0\x80\"}]}",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": \"\xe2\x82\"}]}",
 "POST /v2/queues/kept/messages\n{\"messages\": [{\"body\": {\"k\xfe\": 1}}]}",
 "POST /v2/queues/absent/messages\n{\"messages\": [{\"body\": \"\xff\"}]}",
 "HEAD /v2/queues/absent"]
--- error_code eval
[400, 400, 400, 400, 400, 400, 404]
--- response_headers eval
[("Content-Type: application/json") x 6, ""]
--- response_body eval
[(main::err('Invalid request body', 'Request body could not be parsed.')) x 6, ""]



=== TEST 10: nesting deeper than the limits: 3000 arrays do not parse, 1100 are too deep for a body
--- config
    location / { msgbus; }
--- init
Test::More::is(main::count('kept'), 2, 'TEST 10: bytes not UTF-8 stored nothing');
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/kept/messages\n" . main::nested(3000),
 "POST /v2/queues/kept/messages\n" . main::nested(1100),
 "POST /v2/queues/absent/messages\n" . main::nested(3000),
 "POST /v2/queues/absent/messages\n" . main::nested(1100),
 "HEAD /v2/queues/absent"]
--- error_code eval
[400, 400, 400, 400, 404]
--- response_headers eval
[("Content-Type: application/json") x 4, ""]
--- response_body eval
[main::err('Invalid request body', 'Request body could not be parsed.'),
 main::err('Invalid request body', 'Message body is nested more than 1024 levels deep.'),
 main::err('Invalid request body', 'Request body could not be parsed.'),
 main::err('Invalid request body', 'Message body is nested more than 1024 levels deep.'),
 ""]



=== TEST 11: an empty body: "Request body can not be empty"
--- config
    location / { msgbus; }
--- init
Test::More::is(main::count('kept'), 2, 'TEST 11: too deep stored nothing');
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/kept/messages",
 "POST /v2/queues/absent/messages",
 "HEAD /v2/queues/absent"]
--- error_code eval
[400, 400, 404]
--- response_headers eval
["Content-Type: application/json", "Content-Type: application/json", ""]
--- response_body eval
[main::err('Invalid request body', 'Request body can not be empty'),
 main::err('Invalid request body', 'Request body can not be empty'),
 ""]



=== TEST 12: malformed ids in GET ?ids=, in DELETE ?ids= and in the item routes: 404 or 204, never a 5xx
--- config
    location / { msgbus; }
--- init
Test::More::is(main::count('kept'), 2, 'TEST 12: an empty body stored nothing');
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues/kept/messages?ids=zzz",
 "GET /v2/queues/kept/messages?ids=0000000000000000000000000,00000000000000000000000g,000000000000000000000000",
 "GET /v2/queues/kept/messages?ids=" . main::bad_ids(21),
 "GET /v2/queues/kept/messages/zzz",
 "GET /v2/queues/kept/messages/0000000000000000000000000",
 "DELETE /v2/queues/kept/messages?ids=zzz,0000000000000000000000000",
 "DELETE /v2/queues/kept/messages?ids=" . main::bad_ids(21),
 "DELETE /v2/queues/kept/messages/zzz",
 "DELETE /v2/queues/kept/messages/00000000000000000000000g",
 "DELETE /v2/queues/kept/messages/000000000000000000000000"]
--- error_code eval
[404, 404, 400, 404, 404, 204, 400, 204, 204, 204]
--- response_body eval
[main::err('Not found', "No messages with IDs: ['zzz'] found in the queue kept for project $ENV{TEST_NGINX_PROJECT}."),
 main::err('Not found', "No messages with IDs: ['0000000000000000000000000', '00000000000000000000000g', '000000000000000000000000'] found in the queue kept for project $ENV{TEST_NGINX_PROJECT}."),
 main::err('Invalid API request', 'Limit must be at least 1 and may not be greater than 20.'),
 main::err('Not found', "Message zzz does not exist in queue kept for project $ENV{TEST_NGINX_PROJECT}"),
 main::err('Not found', "Message 0000000000000000000000000 does not exist in queue kept for project $ENV{TEST_NGINX_PROJECT}"),
 "",
 main::err('Invalid API request', 'ids parameter should have at least 1 and not greater than 20 values.'),
 "", "", ""]



=== TEST 13: ?ids= is read as falcon reads a list: URL-decoded, empty items dropped; the 404 quotes the ids as Python's repr()
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues/kept/messages?ids=it's",
 "GET /v2/queues/kept/messages?ids=%7A%7A",
 "GET /v2/queues/kept/messages?ids=zzz,,yyy",
 "GET /v2/queues/kept/messages?ids=,",
 "DELETE /v2/queues/kept/messages?ids=,"]
--- error_code eval
[404, 404, 404, 400, 400]
--- response_body eval
[main::err('Not found', "No messages with IDs: [\\\"it's\\\"] found in the queue kept for project $ENV{TEST_NGINX_PROJECT}."),
 main::err('Not found', "No messages with IDs: ['zz'] found in the queue kept for project $ENV{TEST_NGINX_PROJECT}."),
 main::err('Not found', "No messages with IDs: ['zzz', 'yyy'] found in the queue kept for project $ENV{TEST_NGINX_PROJECT}."),
 main::err('Invalid API request', 'Limit must be at least 1 and may not be greater than 20.'),
 main::err('Invalid API request', 'ids parameter should have at least 1 and not greater than 20 values.')]



=== TEST 14: after all of it: kept has its two messages, big and small one each, and absent was never created
--- config
    location / { msgbus; }
--- init
Test::More::is(main::count('kept'), 2, 'TEST 14: kept has its two messages');
Test::More::is(main::count('absent'), 0, 'TEST 14: absent has no messages');
Test::More::is(main::count('big'), 1, 'TEST 14: big has one');
Test::More::is(main::count('small'), 1, 'TEST 14: small has one');
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues", "HEAD /v2/queues/absent"]
--- error_code eval
[200, 404]
--- response_body eval
['{"queues": [{"name": "big", "href": "/v2/queues/big"}, {"name": "kept", "href": "/v2/queues/kept"}, {"name": "small", "href": "/v2/queues/small"}], "links": [{"rel": "next", "href": "/v2/queues?marker=small"}]}',
 ""]
