# Dead-letter queues (Zaqar 15's claims.py create): a queue whose metadata
# has _max_claim_count and _dead_letter_queue moves a message already
# claimed _max_claim_count times to the dead-letter queue (same project)
# when a claim wins it, instead of claiming it again; its ttl there is
# _dead_letter_queue_messages_ttl, else its own.  The move is once, also
# when it was cut short (the copy stored, the message still there).
# <ID:q:n> and <CLAIM:q:n>: t/lib/Msgbus/Store.pm; the store is read with
# t/util/mongo.py's dead-letter actions.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;
use Msgbus::Store;

$ENV{TEST_NGINX_PROJECT} = "t032-$$-" . time;

# a database of Zaqar's own driver (as t/025-interop.t)
($ENV{TEST_NGINX_ZAQAR_URI} = $ENV{TEST_NGINX_MONGODB_URI})
    =~ s{^(mongodb(?:\+srv)?://[^/?]+)(?:/([^?]*))?}{"$1/" . ($2 || 'zaqar') . "_t032_$$"}e
    or die "cannot read the database of $ENV{TEST_NGINX_MONGODB_URI}";

sub zaqar { Msgbus::Test::mongo($ENV{TEST_NGINX_ZAQAR_URI}, @_) }

sub claimed {
    my ($q, $n, $ttl, $body) = @_;
    return qq({"id": "<HEX>", "href": "/v2/queues/$q/messages/<HEX>)
           . qq(?claim_id=<HEX>", "ttl": $ttl, "age": <N>, "body": $body});
}

sub created {
    return main::re('{"messages": [' . join(', ', @_) . ']}');
}

# the claim counts (c.c) of a queue's live messages, in marker order
sub counts {
    return Msgbus::Test::mongo('claim-counts', $ENV{TEST_NGINX_PROJECT},
                               $_[0]);
}

# "L live, D deleted, C copies in DLQ": the queue's messages and their
# copies in the dead-letter queue (found by the ids a move gives them)
sub moved {
    return Msgbus::Test::mongo('dead-letter', $ENV{TEST_NGINX_PROJECT},
                               @_);
}

# "ttl T expires-in S marker K" of each live message of a queue
sub dead {
    return Msgbus::Test::mongo('dead-letter-docs',
                               $ENV{TEST_NGINX_PROJECT}, $_[0]);
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a queue with _max_claim_count 2 and a dead-letter queue that does not exist yet; a message, claimed once
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["PUT /v2/queues/dq\n{\"_max_claim_count\": 2, \"_dead_letter_queue\": \"dlq\", \"_dead_letter_queue_messages_ttl\": 7200}",
 "POST /v2/queues/dq/messages\n{\"messages\": [{\"ttl\": 3600, \"body\": \"m1\"}]}",
 "POST /v2/queues/dq/claims\n{\"ttl\": 100, \"grace\": 60}",
 "HEAD /v2/queues/dlq"]
--- error_code eval
[201, 201, 201, 404]
--- response_body_like eval
['^\z', '"resources"',
 main::created(main::claimed('dq', 0, 3600, '"m1"')), '^\z']
--- no_error_log
[error]



=== TEST 2: released, it is claimed a second time (count 1 is below 2)
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["DELETE /v2/queues/dq/claims/<CLAIM:dq:0>",
 "POST /v2/queues/dq/claims\n{\"ttl\": 100, \"grace\": 60}"]
--- error_code eval
[204, 201]
--- response_body_like eval
['^\z', main::created(main::claimed('dq', 0, 3600, '"m1"'))]
--- init
Test::More::is(main::counts('dq'), '1', 'TEST 2: claimed once');
--- no_error_log
[error]



=== TEST 3: released again, a third claim moves it (claimed 2 times: not claimed) and claims a newer message; it is gone from the queue, in the dead-letter queue with its ttl
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["DELETE /v2/queues/dq/claims/<CLAIM:dq:0>",
 "POST /v2/queues/dq/messages\n{\"messages\": [{\"ttl\": 600, \"body\": \"m2\"}]}",
 "POST /v2/queues/dq/claims\n{\"ttl\": 100, \"grace\": 60}",
 "GET /v2/queues/dq/messages?echo=true&include_claimed=true",
 "GET /v2/queues/dq/messages/<ID:dq:0>",
 "GET /v2/queues/dlq/messages?echo=true"]
--- error_code eval
[204, 201, 201, 200, 404, 200]
--- response_body_like eval
['^\z', '"resources"',
 '^\{"messages": \[\{"id": "[0-9a-f]{24}", "href": "/v2/queues/dq/messages/[0-9a-f]{24}\?claim_id=[0-9a-f]{24}", "ttl": 600, "age": \d+, "body": "m2"\}\]\}$',
 '^\{"messages": \[\{"id": "[0-9a-f]{24}", [^]]*"body": "m2"\}\], ',
 '"Not found"',
 '^\{"messages": \[\{"id": "[0-9a-f]{24}", "href": "/v2/queues/dlq/messages/[0-9a-f]{24}", "ttl": 7200, "age": \d+, "body": "m1"\}\], ']
--- init
Test::More::is(main::counts('dq'), '2', 'TEST 3: claimed twice before');
--- no_error_log
[error]



=== TEST 4: in the store: the message is a tombstone, its one copy lives 7200 s at the dead-letter queue's first marker; the dead-letter queue exists now; another claim moves nothing
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["DELETE /v2/queues/dq/claims/<CLAIM:dq:0>",
 "POST /v2/queues/dq/claims\n{\"ttl\": 100, \"grace\": 60}",
 "HEAD /v2/queues/dlq",
 "GET /v2/queues/dlq/stats"]
--- error_code eval
[204, 201, 204, 200]
--- response_body_like eval
['^\z', main::created(main::claimed('dq', 0, 600, '"m2"')), '^\z',
 '^\{"messages": \{"claimed": 0, "free": 1, "total": 1, ']
--- init
Test::More::is(main::moved('dq', 'dlq'), '1 live, 1 deleted, 1 copies in dlq',
               'TEST 4: moved once');
Test::More::like(main::dead('dlq'), qr/^ttl 7200 expires-in 71\d\d marker 1$/,
                 'TEST 4: the copy');
--- no_error_log
[error]



=== TEST 5: ... and still one copy after that claim
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204
--- init
Test::More::is(main::moved('dq', 'dlq'), '1 live, 1 deleted, 1 copies in dlq',
               'TEST 5: moved once');
Test::More::is(main::counts('dq'), '2', 'TEST 5: the other claimed twice');



=== TEST 6: a move cut short: a message claimed once of a queue with _max_claim_count 1 (no ttl for the dead letters)
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["PUT /v2/queues/hq\n{\"_max_claim_count\": 1, \"_dead_letter_queue\": \"hdlq\"}",
 "POST /v2/queues/hq/messages\n{\"messages\": [{\"ttl\": 3600, \"body\": {\"n\": 1}}]}",
 "POST /v2/queues/hq/claims\n{\"ttl\": 100, \"grace\": 60}"]
--- error_code eval
[201, 201, 201]
--- response_body_like eval
['^\z', '"resources"', main::created(main::claimed('hq', 0, 3600, '{"n":1}'))]
--- no_error_log
[error]



=== TEST 7: ... released
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request
DELETE /v2/queues/hq/claims/<CLAIM:hq:0>
--- error_code: 204
--- no_error_log
[error]



=== TEST 8: ... its copy already in the dead-letter queue (a move's first half), the message still in its queue: the next claim finishes the move
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request
POST /v2/queues/hq/claims
{"ttl": 100, "grace": 60}
--- error_code: 204
--- response_body
--- init
Msgbus::Test::mongo('dead-letter-copy', $ENV{TEST_NGINX_PROJECT}, 'hq', 'hdlq');
Test::More::is(main::moved('hq', 'hdlq'), '1 live, 0 deleted, 1 copies in hdlq',
               'TEST 8: half moved');
--- error_log
cut short, finishing it
--- no_error_log
[error]



=== TEST 9: ... one copy, with the message's own ttl; the message a tombstone
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["GET /v2/queues/hq/messages?echo=true&include_claimed=true",
 "GET /v2/queues/hdlq/messages?echo=true"]
--- error_code eval
[200, 200]
--- response_body_like eval
['^\{"messages": \[\]',
 '^\{"messages": \[\{"id": "[0-9a-f]{24}", "href": "/v2/queues/hdlq/messages/[0-9a-f]{24}", "ttl": 3600, "age": \d+, "body": \{"n":1\}\}\], ']
--- init
Test::More::is(main::moved('hq', 'hdlq'), '0 live, 1 deleted, 1 copies in hdlq',
               'TEST 9: moved once');
Test::More::like(main::dead('hdlq'), qr/^ttl 3600 expires-in \d+ marker 1$/,
                 'TEST 9: one copy');
--- no_error_log
[error]



=== TEST 10: without _dead_letter_queue nothing moves: claimed past _max_claim_count
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["PUT /v2/queues/nq\n{\"_max_claim_count\": 1}",
 "POST /v2/queues/nq/messages\n{\"messages\": [{\"ttl\": 3600, \"body\": 3}]}",
 "POST /v2/queues/nq/claims\n{\"ttl\": 100, \"grace\": 60}"]
--- error_code eval
[201, 201, 201]
--- response_body_like eval
['^\z', '"resources"', main::created(main::claimed('nq', 0, 3600, '3'))]
--- no_error_log
[error]



=== TEST 11: ... released, claimed again: 201, count 2
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["DELETE /v2/queues/nq/claims/<CLAIM:nq:0>",
 "POST /v2/queues/nq/claims\n{\"ttl\": 100, \"grace\": 60}"]
--- error_code eval
[204, 201]
--- response_body_like eval
['^\z', main::created(main::claimed('nq', 0, 3600, '3'))]
--- no_error_log
[error]



=== TEST 12: ... in the store: still there, claimed twice, no copy anywhere
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204
--- init
Test::More::is(main::counts('nq'), '2', 'TEST 12: claimed twice');
Test::More::is(main::moved('nq', 'dlq'), '1 live, 0 deleted, 0 copies in dlq',
               'TEST 12: not moved');



=== TEST 13: a message Zaqar's driver posted (its body as BSON) on a queue Zaqar created with _max_claim_count 0: the first claim moves it, its body as JSON text (as msgbus renders Zaqar's)
--- http_config
    msgbus_mongodb "$TEST_NGINX_ZAQAR_URI";
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/zq/claims\n{\"ttl\": 100, \"grace\": 60}",
 "GET /v2/queues/zdlq/messages?echo=true"]
--- error_code eval
[204, 200]
--- response_body_like eval
['^\z',
 '^\{"messages": \[\{"id": "[0-9a-f]{24}", "href": "/v2/queues/zdlq/messages/[0-9a-f]{24}", "ttl": 600, "age": \d+, "body": \{"a": \[1, 2\.5, null\], "b": "x"\}\}\], ']
--- init
main::zaqar('drop-databases');
main::zaqar('zaqar-create', $ENV{TEST_NGINX_PROJECT}, 'zq',
            '{"_max_claim_count": 0, "_dead_letter_queue": "zdlq", "_dead_letter_queue_messages_ttl": 600}');
main::zaqar('zaqar-post', $ENV{TEST_NGINX_PROJECT}, 'zq',
            '8f2a7a3e-2b9e-11e3-b191-71861300734c',
            '[{"body": {"a": [1, 2.5, null], "b": "x"}, "ttl": 300}]');
--- no_error_log
[error]



=== TEST 14: ... moved once
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204
--- init
Test::More::is(main::zaqar('dead-letter', $ENV{TEST_NGINX_PROJECT}, 'zq', 'zdlq'),
               '0 live, 1 deleted, 1 copies in zdlq', 'TEST 14: moved once');
main::zaqar('drop-databases');



=== TEST 15: a dead-letter queue's name as Zaqar takes it, a dot in it: the first claim (_max_claim_count 0) moves the message there
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["PUT /v2/queues/dot\n{\"_max_claim_count\": 0, \"_dead_letter_queue\": \"orders.dlq\"}",
 "POST /v2/queues/dot/messages\n{\"messages\": [{\"ttl\": 600, \"body\": \"d1\"}]}",
 "POST /v2/queues/dot/claims\n{\"ttl\": 100, \"grace\": 60}",
 "GET /v2/queues/orders.dlq/messages?echo=true"]
--- error_code eval
[201, 201, 204, 200]
--- response_body_like eval
['^\z', '"resources"', '^\z', '"body": "d1"']
--- no_error_log
[error]
