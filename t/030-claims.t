# Claims (Zaqar v2): create, get, renew (PATCH), release (DELETE), and
# deleting a claimed message with and without its claim id; status,
# headers and body of each, as zaqar/transport/wsgi/v2_0/claims.py and
# messages.py answer.  Ids come from the store (t/lib/Msgbus/Store.pm):
# <ID:q:n> is the nth live message of queue q when the block starts,
# <CLAIM:q:n> the claim that holds it.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;
use Msgbus::Store;

$ENV{TEST_NGINX_PROJECT} = "t030-$$-" . time;

# a message as a claim shows it: its href names the claim
sub claimed {
    my ($q, $n, $claim, $ttl, $body) = @_;
    return qq({"id": "<ID:$q:$n>", "href": "/v2/queues/$q/messages/<ID:$q:$n>)
           . qq(?claim_id=$claim", "ttl": $ttl, "age": <N>, "body": $body});
}

sub created {
    return main::re('{"messages": [' . join(', ', @_) . ']}');
}

# GET .../claims/<CLAIM:q:n>
sub claim {
    my ($q, $n, $ttl, @msgs) = @_;
    return main::re(qq({"age": <N>, "ttl": $ttl, "messages": [)
                    . join(', ', @msgs)
                    . qq(], "href": "/v2/queues/$q/claims/<CLAIM:$q:$n>"}));
}

# the claim counts (c.c) of a queue's messages, in marker order
sub counts {
    my ($q) = @_;
    return Msgbus::Test::mongo('claim-counts', $ENV{TEST_NGINX_PROJECT}, $q);
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a claim on a queue that does not exist: 204, nothing created
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/nowhere/claims\n{\"ttl\": 100, \"grace\": 60}",
 "POST /v2/queues/nowhere/claims",
 "HEAD /v2/queues/nowhere"]
--- error_code eval
[204, 204, 404]
--- response_body eval
["", "", ""]
--- no_error_log
[error]



=== TEST 2: three messages to claim
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request
POST /v2/queues/cq/messages
{"messages": [{"ttl": 300, "body": 1}, {"ttl": 3600, "body": {"a": 2}}, {"ttl": 600, "body": "three"}]}
--- error_code: 201



=== TEST 3: a claim takes the first ones, up to ?limit: 201, Location, each message's href names the claim
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request
POST /v2/queues/cq/claims?limit=2
{"ttl": 120, "grace": 60}
--- error_code: 201
--- response_headers_like
Content-Type: application/json
Location: /v2/queues/cq/claims/[0-9a-f]{24}
--- response_body_like eval
main::created(main::claimed('cq', 0, '<HEX>', 300, '1'),
              main::claimed('cq', 1, '<HEX>', 3600, '{"a":2}'))
--- no_error_log
[error]



=== TEST 4: the claim: GET, listings (include_claimed), stats; claim count 1 in the store
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["GET /v2/queues/cq/claims/<CLAIM:cq:0>",
 "GET /v2/queues/cq/messages?echo=true",
 "GET /v2/queues/cq/messages?echo=true&include_claimed=true",
 "GET /v2/queues/cq/messages/<ID:cq:0>",
 "GET /v2/queues/cq/stats"]
--- error_code eval
[200, 200, 200, 200, 200]
--- response_body_like eval
[main::claim('cq', 0, 120,
             main::claimed('cq', 0, '<CLAIM:cq:0>', 300, '1'),
             main::claimed('cq', 1, '<CLAIM:cq:0>', 3600, '{"a":2}')),
 main::re('{"messages": [{"id": "<ID:cq:2>", "href": "/v2/queues/cq/messages/<ID:cq:2>", "ttl": 600, "age": <N>, "body": "three"}], "links": [{"rel": "next", "href": "/v2/queues/cq/messages?echo=true&marker=3"}]}'),
 main::re('{"messages": ['
          . main::claimed('cq', 0, '<CLAIM:cq:0>', 300, '1') . ', '
          . main::claimed('cq', 1, '<CLAIM:cq:0>', 3600, '{"a":2}')
          . ', {"id": "<ID:cq:2>", "href": "/v2/queues/cq/messages/<ID:cq:2>", "ttl": 600, "age": <N>, "body": "three"}], "links": [{"rel": "next", "href": "/v2/queues/cq/messages?echo=true&include_claimed=true&marker=3"}]}'),
 main::re(main::claimed('cq', 0, '<CLAIM:cq:0>', 300, '1')),
 main::re('{"messages": {"claimed": 2, "free": 1, "total": 3, "oldest": {"age": <N>, "created": "<DATE>", "href": "/v2/queues/cq/messages/<ID:cq:0>"}, "newest": {"age": <N>, "created": "<DATE>", "href": "/v2/queues/cq/messages/<ID:cq:2>"}}}')]
--- response_headers eval
[("Content-Type: application/json") x 5]
--- init
Test::More::is(main::counts('cq'), '1 1 0', 'TEST 4: claim counts');



=== TEST 5: a claim without a body takes the defaults (ttl 300, grace 60: the message's 600 s suffice); then nothing is left: 204; pop takes only unclaimed messages
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/cq/claims",
 "POST /v2/queues/cq/claims?limit=5\n{}",
 "DELETE /v2/queues/cq/messages?pop=5"]
--- error_code eval
[201, 204, 200]
--- response_body_like eval
[main::created(main::claimed('cq', 2, '<HEX>', 600, '"three"')),
 '^\z',
 '^\{"messages": \[\]\}\z']
--- no_error_log
[error]



=== TEST 6: the claim of a message that would expire first keeps it alive until the claim's end plus its grace
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/short/messages\n{\"messages\": [{\"ttl\": 60, \"body\": null}]}",
 "POST /v2/queues/short/claims\n{\"ttl\": 600, \"grace\": 120}"]
--- error_code eval
[201, 201]
--- response_body_like eval
['',
 main::re('{"messages": [{"id": "<HEX>", "href": "/v2/queues/short/messages/<HEX>?claim_id=<HEX>", "ttl": 720, "age": <N>, "body": null}]}')]



=== TEST 7: ... as the store says: expires 720 s on, ttl 720, the claim's fields
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request
GET /v2/queues/short/claims/<CLAIM:short:0>
--- error_code: 200
--- response_body_like eval
main::claim('short', 0, 600, main::claimed('short', 0, '<CLAIM:short:0>', 720, 'null'))
--- init
Test::More::like(Msgbus::Test::mongo('claim-doc', $ENV{TEST_NGINX_PROJECT}, 'short'),
                 qr/^ttl 720 expires-in 7(?:1\d|20) claim-ttl 600 claim-expires-in (?:59\d|600) count 1$/,
                 'TEST 7: the message in the store');



=== TEST 8: renew (PATCH): 204; the claim's ttl and its messages' lives move, the count stays
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["PATCH /v2/queues/cq/claims/<CLAIM:cq:0>\n{\"ttl\": 1000, \"grace\": 100}",
 "GET /v2/queues/cq/claims/<CLAIM:cq:0>"]
--- error_code eval
[204, 200]
--- response_body_like eval
['^\z',
 main::claim('cq', 0, 1000,
             main::claimed('cq', 0, '<CLAIM:cq:0>', 1100, '1'),
             main::claimed('cq', 1, '<CLAIM:cq:0>', 3600, '{"a":2}'))]
--- init
Test::More::is(main::counts('cq'), '1 1 1', 'TEST 8: claim counts before');



=== TEST 9: deleting a claimed message: 403 without a claim id or with another claim's, 400 with a malformed one, 204 with its own
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["DELETE /v2/queues/cq/messages/<ID:cq:0>",
 "DELETE /v2/queues/cq/messages/<ID:cq:0>?claim_id=<CLAIM:cq:2>",
 "DELETE /v2/queues/cq/messages/<ID:cq:0>?claim_id=nonsense",
 "DELETE /v2/queues/cq/messages/<ID:cq:0>?claim_id=<CLAIM:cq:0>",
 "GET /v2/queues/cq/messages/<ID:cq:0>"]
--- error_code eval
[403, 403, 400, 204, 404]
--- response_body_like eval
[main::re(main::err('Unable to delete', 'This message is claimed; it cannot be deleted without a valid claim ID.')),
 main::re(main::err('Unable to delete', 'This message is claimed; it cannot be deleted without a valid claim ID.')),
 main::re(main::err('Unable to delete', 'The specified claim does not exist or has expired.')),
 '^\z',
 main::re(main::err('Not found', "Message <ID:cq:0> does not exist in queue cq for project $ENV{TEST_NGINX_PROJECT}"))]
--- init
Test::More::is(main::counts('cq'), '1 1 1', 'TEST 9: the renew kept the counts');



=== TEST 10: release (DELETE): 204; the claim is gone, its message claimable at once, its count kept; deleting with the released claim: 400
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["DELETE /v2/queues/cq/claims/<CLAIM:cq:0>",
 "GET /v2/queues/cq/claims/<CLAIM:cq:0>",
 "DELETE /v2/queues/cq/messages/<ID:cq:0>?claim_id=<CLAIM:cq:0>",
 "DELETE /v2/queues/cq/claims/<CLAIM:cq:0>",
 "POST /v2/queues/cq/claims\n{\"ttl\": 100}"]
--- error_code eval
[204, 404, 400, 204, 201]
--- response_body_like eval
['^\z',
 main::re(main::err('Not found', "Claim <CLAIM:cq:0> does not exist in queue cq for project $ENV{TEST_NGINX_PROJECT}")),
 main::re(main::err('Unable to delete', 'A claim was specified, but the message is not currently claimed.')),
 '^\z',
 main::created(main::claimed('cq', 0, '<HEX>', 3600, '{"a":2}'))]
--- init
Test::More::is(main::counts('cq'), '1 1', 'TEST 10: claim counts before');



=== TEST 11: ... the message's second claim counts 2
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204
--- init
Test::More::is(main::counts('cq'), '2 1', 'TEST 11: claim counts');



=== TEST 12: POST errors, in Zaqar's order: the limit's type, the body, then ttl, limit, grace
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/cq/claims?limit=abc\n{\"ttl\": 1}",
 "POST /v2/queues/cq/claims?limit=0\n{\"ttl\": 1}",
 "POST /v2/queues/cq/claims?limit=0\n{\"grace\": 1}",
 "POST /v2/queues/cq/claims?limit=21",
 "POST /v2/queues/cq/claims?limit=-1",
 "POST /v2/queues/cq/claims\n{\"ttl\": 59}",
 "POST /v2/queues/cq/claims\n{\"ttl\": 43201}",
 "POST /v2/queues/cq/claims\n{\"ttl\": true}",
 "POST /v2/queues/cq/claims\n{\"grace\": 59}",
 "POST /v2/queues/cq/claims\n{\"grace\": 43201}",
 "POST /v2/queues/cq/claims\n{\"ttl\": \"100\"}",
 "POST /v2/queues/cq/claims\n{\"ttl\": 100.5}",
 "POST /v2/queues/cq/claims\n{\"grace\": null}",
 "POST /v2/queues/cq/claims\n[]",
 "POST /v2/queues/cq/claims\n{\"ttl\": 100",
 "POST /v2/queues/cq/claims\n{\"ttl\": 1e400}",
 "POST /v2/queues/cq/claims\n{\"ttl\": 99999999999999999999999}"]
--- error_code eval
[(400) x 17]
--- response_body eval
[main::err('Invalid parameter', 'The \"limit\" parameter is invalid. The value must be an integer.'),
 main::err('Invalid API request', 'The TTL for a claim may not exceed 43200 seconds, and must be at least 60 seconds long.'),
 main::err('Invalid API request', 'Limit must be at least 1 and may not be greater than 20.'),
 main::err('Invalid API request', 'Limit must be at least 1 and may not be greater than 20.'),
 main::err('Invalid API request', 'Limit must be at least 1 and may not be greater than 20.'),
 main::err('Invalid API request', 'The TTL for a claim may not exceed 43200 seconds, and must be at least 60 seconds long.'),
 main::err('Invalid API request', 'The TTL for a claim may not exceed 43200 seconds, and must be at least 60 seconds long.'),
 main::err('Invalid API request', 'The TTL for a claim may not exceed 43200 seconds, and must be at least 60 seconds long.'),
 main::err('Invalid API request', 'The grace for a claim may not exceed 43200 seconds, and must be at least 60 seconds long.'),
 main::err('Invalid API request', 'The grace for a claim may not exceed 43200 seconds, and must be at least 60 seconds long.'),
 main::err('Invalid request body', 'The value of the \"ttl\" field must be a int.'),
 main::err('Invalid request body', 'The value of the \"ttl\" field must be a int.'),
 main::err('Invalid request body', 'The value of the \"grace\" field must be a int.'),
 main::err('Invalid request body', 'Document type not supported.'),
 main::err('Invalid request body', 'Request body could not be parsed.'),
 main::err('Invalid request body', 'Request body could not be parsed.'),
 main::err('Invalid request body', 'JSON contains integer that is too large.')]
--- response_headers eval
[("Content-Type: application/json") x 17]
--- init
Test::More::is(main::counts('cq'), '2 1', 'TEST 12: nothing claimed');



=== TEST 13: GET, PATCH and DELETE of claims that are not there; PATCH's body errors come first
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["GET /v2/queues/cq/claims/000000000000000000000000",
 "GET /v2/queues/cq/claims/nonsense",
 "GET /v2/queues/nowhere/claims/000000000000000000000000",
 "PATCH /v2/queues/cq/claims/000000000000000000000000\n{\"ttl\": 100}",
 "PATCH /v2/queues/cq/claims/nonsense\n{\"ttl\": 100}",
 "PATCH /v2/queues/cq/claims/nonsense\n{\"ttl\": 10}",
 "PATCH /v2/queues/cq/claims/<CLAIM:cq:0>",
 "PATCH /v2/queues/cq/claims/<CLAIM:cq:0>\n[1]",
 "PATCH /v2/queues/cq/claims/<CLAIM:cq:0>\n{\"ttl\": 43201}",
 "PATCH /v2/queues/cq/claims/<CLAIM:cq:0>\n{\"grace\": -1}",
 "PATCH /v2/queues/cq/claims/<CLAIM:cq:0>\n{\"ttl\": \"x\"}",
 "DELETE /v2/queues/cq/claims/000000000000000000000000",
 "DELETE /v2/queues/cq/claims/nonsense"]
--- error_code eval
[404, 404, 404, 404, 404, 400, 400, 400, 400, 400, 400, 204, 204]
--- response_body eval
[main::err('Not found', "Claim 000000000000000000000000 does not exist in queue cq for project $ENV{TEST_NGINX_PROJECT}"),
 main::err('Not found', "Claim nonsense does not exist in queue cq for project $ENV{TEST_NGINX_PROJECT}"),
 main::err('Not found', "Claim 000000000000000000000000 does not exist in queue nowhere for project $ENV{TEST_NGINX_PROJECT}"),
 main::err('Not found', "Claim 000000000000000000000000 does not exist in queue cq for project $ENV{TEST_NGINX_PROJECT}"),
 main::err('Not found', "Claim nonsense does not exist in queue cq for project $ENV{TEST_NGINX_PROJECT}"),
 main::err('Invalid API request', 'The TTL for a claim may not exceed 43200 seconds, and must be at least 60 seconds long.'),
 main::err('Invalid request body', 'Request body can not be empty'),
 main::err('Invalid request body', 'Document type not supported.'),
 main::err('Invalid API request', 'The TTL for a claim may not exceed 43200 seconds, and must be at least 60 seconds long.'),
 main::err('Invalid API request', 'The grace for a claim may not exceed 43200 seconds, and must be at least 60 seconds long.'),
 main::err('Invalid request body', 'The value of the \"ttl\" field must be a int.'),
 '', '']
--- init
Test::More::is(main::counts('cq'), '2 1', 'TEST 13: nothing changed');



=== TEST 14: the claim limits are directives; msgbus_min_claim_ttl and msgbus_min_claim_grace go below Zaqar's 60 s
--- config
    location / {
        msgbus;
        msgbus_min_claim_ttl 1s;
        msgbus_min_claim_grace 0;
        msgbus_max_claim_ttl 1h;
        msgbus_max_claim_grace 2m;
        msgbus_default_claim_ttl 90s;
        msgbus_max_messages_per_claim_or_pop 3;
    }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/mini/messages\n{\"messages\": [{\"body\": 7}]}",
 "POST /v2/queues/mini/claims\n{\"ttl\": 0}",
 "POST /v2/queues/mini/claims\n{\"ttl\": 3601}",
 "POST /v2/queues/mini/claims\n{\"grace\": -1}",
 "POST /v2/queues/mini/claims?limit=4\n{\"grace\": 121}",
 "POST /v2/queues/mini/claims?limit=4",
 "POST /v2/queues/mini/claims\n{\"ttl\": 1, \"grace\": 0}"]
--- error_code eval
[201, 400, 400, 400, 400, 400, 201]
--- response_body_like eval
['',
 main::re(main::err('Invalid API request', 'The TTL for a claim may not exceed 3600 seconds, and must be at least 1 seconds long.')),
 main::re(main::err('Invalid API request', 'The TTL for a claim may not exceed 3600 seconds, and must be at least 1 seconds long.')),
 main::re(main::err('Invalid API request', 'The grace for a claim may not exceed 120 seconds, and must be at least 0 seconds long.')),
 main::re(main::err('Invalid API request', 'Limit must be at least 1 and may not be greater than 3.')),
 main::re(main::err('Invalid API request', 'Limit must be at least 1 and may not be greater than 3.')),
 main::re('{"messages": [{"id": "<HEX>", "href": "/v2/queues/mini/messages/<HEX>?claim_id=<HEX>", "ttl": 3600, "age": <N>, "body": 7}]}')]



=== TEST 15: a default claim ttl outside its limits is a configuration error
--- config
    location / {
        msgbus;
        msgbus_default_claim_ttl 30s;
    }
--- must_die
--- error_log
msgbus_default_claim_ttl must be within msgbus_min_claim_ttl (at least 1 second) and msgbus_max_claim_ttl



=== TEST 16: ... and so is a default grace outside its limits
--- config
    location / {
        msgbus;
        msgbus_max_claim_grace 30s;
        msgbus_min_claim_grace 0;
    }
--- must_die
--- error_log
msgbus_default_claim_grace must be within msgbus_min_claim_grace and msgbus_max_claim_grace



=== TEST 17: another project sees none of it: its claims are not found, its deletes with them are refused as unknown
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: other
Content-Type: application/json
--- request eval
["GET /v2/queues/cq/claims/<CLAIM:cq:1>",
 "PATCH /v2/queues/cq/claims/<CLAIM:cq:1>\n{\"ttl\": 100}",
 "DELETE /v2/queues/cq/claims/<CLAIM:cq:1>",
 "POST /v2/queues/cq/claims"]
--- error_code eval
[404, 404, 204, 204]
--- response_body_like eval
[main::re(main::err('Not found', 'Claim <CLAIM:cq:1> does not exist in queue cq for project other')),
 main::re(main::err('Not found', 'Claim <CLAIM:cq:1> does not exist in queue cq for project other')),
 '^\z', '^\z']



=== TEST 18: ... and its claim still holds the message
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request
GET /v2/queues/cq/claims/<CLAIM:cq:1>
--- error_code: 200
--- response_body_like eval
main::claim('cq', 1, 300, main::claimed('cq', 1, '<CLAIM:cq:1>', 600, '"three"'))
--- init
Test::More::is(main::counts('cq'), '2 1', 'TEST 18: the counts are untouched');
