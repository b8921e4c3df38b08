# Messages (Zaqar v2): post, list, get by ids, get, delete one, delete
# by ids, pop, queue stats and purge; status, Content-Type and body of
# each, as zaqar/transport/wsgi/v2_0/messages.py answers.
#
# Message ids are random: a block that needs the ids of messages posted
# by an earlier block writes <ID:queue:n>, and answers with ids or ages
# are matched by re() (t/lib/Msgbus/Store.pm).

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;
use Msgbus::Store;

$ENV{TEST_NGINX_PROJECT} = "t020-$$-" . time;

our $Other = '5ac05a0a-2b9e-11e3-b191-71861300734c';   # another client

# a message as listed or got: id "<ID:q:n>" (n given) or any
sub msg {
    my ($q, $n, $ttl, $body) = @_;
    my $id = defined $n ? "<ID:$q:$n>" : '<HEX>';
    return qq({"id": "$id", "href": "/v2/queues/$q/messages/$id", )
           . qq("ttl": $ttl, "age": <N>, "body": $body});
}

# a popped message
sub popped {
    my ($q, $n, $ttl, $body) = @_;
    return qq({"id": "<ID:$q:$n>", "age": <N>, "ttl": $ttl, )
           . qq("claim_count": 0, "body": $body, "claim_id": null});
}

# a page of GET .../messages
sub page {
    my ($next, @msgs) = @_;
    return '{"messages": [], "links": []}' unless @msgs;
    return '{"messages": [' . join(', ', @msgs) . '], "links": '
           . qq([{"rel": "next", "href": "$next"}]});
}

# the 201 answer to a post of $n messages, and its Location
sub resources {
    my ($q, $n) = @_;
    return re('{"resources": ['
              . join(', ', map { qq("/v2/queues/$q/messages/<HEX>") } 1 .. $n)
              . ']}');
}

sub location {
    my ($q, $n) = @_;
    return "Content-Type: application/json\nLocation: /v2/queues/$q/messages"
           . '\?ids=' . join(',', ('[0-9a-f]{24}') x $n);
}

# $n well-formed ids of no message, for ?ids=
sub zeros {
    my ($n) = @_;
    return join ',', ('000000000000000000000000') x $n;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: POST to a queue that does not exist: 201, a resource per message, Location with their ids; the queue is created
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["HEAD /v2/queues/fifo",
 "POST /v2/queues/fifo/messages\n{\"messages\": [{\"body\": {\"n\": 1}}, {\"body\": {\"n\": 2}, \"ttl\": 120}]}",
 "HEAD /v2/queues/fifo",
 "GET /v2/queues"]
--- error_code eval
[404, 201, 204, 200]
--- response_headers_like eval
["", main::location('fifo', 2), "", "Content-Type: application/json"]
--- response_body_like eval
[main::re(''), main::resources('fifo', 2), main::re(''),
 main::re('{"queues": [{"name": "fifo", "href": "/v2/queues/fifo"}], "links": [{"rel": "next", "href": "/v2/queues?marker=fifo"}]}')]



=== TEST 2: the posting client does not see its own messages unless echo=true; the next link keeps echo, the marker last
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues/fifo/messages",
 "GET /v2/queues/fifo/messages?echo=false",
 "GET /v2/queues/fifo/messages?echo=true"]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["Content-Type: application/json", "Content-Type: application/json", "Content-Type: application/json"]
--- response_body_like eval
[main::re(main::page()),
 main::re(main::page()),
 main::re(main::page('/v2/queues/fifo/messages?echo=true&marker=2',
                     main::msg('fifo', 0, 3600, '{"n":1}'),
                     main::msg('fifo', 1, 120, '{"n":2}')))]



=== TEST 3: another client sees them in marker order; a given marker comes first in the next link; after the last one, nothing
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: $main::Other\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues/fifo/messages",
 "GET /v2/queues/fifo/messages?marker=1",
 "GET /v2/queues/fifo/messages?marker=2"]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["Content-Type: application/json", "Content-Type: application/json", "Content-Type: application/json"]
--- response_body_like eval
[main::re(main::page('/v2/queues/fifo/messages?marker=2',
                     main::msg('fifo', 0, 3600, '{"n":1}'),
                     main::msg('fifo', 1, 120, '{"n":2}'))),
 main::re(main::page('/v2/queues/fifo/messages?marker=2',
                     main::msg('fifo', 1, 120, '{"n":2}'))),
 main::re(main::page())]



=== TEST 4: five messages in one POST: five resources, in order
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/pages/messages\n{\"messages\": [{\"body\": 1}, {\"body\": 2}, {\"body\": 3}, {\"body\": 4}, {\"body\": 5}]}"]
--- error_code eval
[201]
--- response_headers_like eval
[main::location('pages', 5)]
--- response_body_like eval
[main::resources('pages', 5)]



=== TEST 5: paging by marker from the start gives every message once, in order; links keep Zaqar's parameter order
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues/pages/messages?limit=2&echo=true",
 "GET /v2/queues/pages/messages?marker=2&limit=2&echo=true",
 "GET /v2/queues/pages/messages?limit=2&echo=true&marker=4",
 "GET /v2/queues/pages/messages?echo=true&limit=2&marker=5",
 "GET /v2/queues/pages/messages?echo=true"]
--- error_code eval
[200, 200, 200, 200, 200]
--- response_body_like eval
[main::re(main::page('/v2/queues/pages/messages?limit=2&echo=true&marker=2',
                     main::msg('pages', 0, 3600, 1), main::msg('pages', 1, 3600, 2))),
 main::re(main::page('/v2/queues/pages/messages?marker=4&limit=2&echo=true',
                     main::msg('pages', 2, 3600, 3), main::msg('pages', 3, 3600, 4))),
 main::re(main::page('/v2/queues/pages/messages?marker=5&limit=2&echo=true',
                     main::msg('pages', 4, 3600, 5))),
 main::re(main::page()),
 main::re(main::page('/v2/queues/pages/messages?echo=true&marker=5',
                     map { main::msg('pages', $_ - 1, 3600, $_) } 1 .. 5))]



=== TEST 6: limit is 1 to 20; limit, echo and include_delayed must parse; a marker that is not an integer lists nothing
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues/pages/messages?echo=true&limit=1",
 "GET /v2/queues/pages/messages?echo=true&limit=20",
 "GET /v2/queues/pages/messages?echo=true&limit=0",
 "GET /v2/queues/pages/messages?echo=true&limit=21",
 "GET /v2/queues/pages/messages?echo=true&limit=-1",
 "GET /v2/queues/pages/messages?echo=true&limit=abc",
 "GET /v2/queues/pages/messages?echo=maybe",
 "GET /v2/queues/pages/messages?include_delayed=2",
 "GET /v2/queues/pages/messages?echo=true&marker=abc"]
--- error_code eval
[200, 200, 400, 400, 400, 400, 400, 400, 200]
--- response_headers eval
[("Content-Type: application/json") x 9]
--- response_body_like eval
[main::re(main::page('/v2/queues/pages/messages?limit=1&echo=true&marker=1',
                     main::msg('pages', 0, 3600, 1))),
 main::re(main::page('/v2/queues/pages/messages?limit=20&echo=true&marker=5',
                     map { main::msg('pages', $_ - 1, 3600, $_) } 1 .. 5)),
 main::re(main::err('Invalid API request', 'Limit must be at least 1 and may not be greater than 20.')),
 main::re(main::err('Invalid API request', 'Limit must be at least 1 and may not be greater than 20.')),
 main::re(main::err('Invalid API request', 'Limit must be at least 1 and may not be greater than 20.')),
 main::re(main::err('Invalid parameter', 'The \"limit\" parameter is invalid. The value must be an integer.')),
 main::re(main::err('Invalid parameter', 'The \"echo\" parameter is invalid. The value of the parameter must be \"true\" or \"false\".')),
 main::re(main::err('Invalid parameter', 'The \"include_delayed\" parameter is invalid. The value of the parameter must be \"true\" or \"false\".')),
 main::re(main::page())]



=== TEST 7: a delayed message is hidden unless include_delayed=true
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/delayed/messages\n{\"messages\": [{\"body\": \"later\", \"delay\": 60}, {\"body\": \"now\", \"delay\": 0}, {\"body\": \"default\"}]}",
 "GET /v2/queues/delayed/messages?echo=true",
 "GET /v2/queues/delayed/messages?echo=true&include_delayed=true"]
--- error_code eval
[201, 200, 200]
--- response_body_like eval
[main::resources('delayed', 3),
 main::re(main::page('/v2/queues/delayed/messages?echo=true&marker=3',
                     main::msg('delayed', undef, 3600, '"now"'),
                     main::msg('delayed', undef, 3600, '"default"'))),
 main::re(main::page('/v2/queues/delayed/messages?echo=true&include_delayed=true&marker=3',
                     main::msg('delayed', undef, 3600, '"later"'),
                     main::msg('delayed', undef, 3600, '"now"'),
                     main::msg('delayed', undef, 3600, '"default"')))]



=== TEST 8: ttl and delay at their bounds are taken; each message keeps its ttl
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/bounds/messages\n{\"messages\": [{\"body\": 1, \"ttl\": 60}, {\"body\": 2, \"ttl\": 1209600}, {\"body\": 3, \"delay\": 0}, {\"body\": 4, \"delay\": 900}]}",
 "GET /v2/queues/bounds/messages?echo=true&include_delayed=true"]
--- error_code eval
[201, 200]
--- response_body_like eval
[main::resources('bounds', 4),
 main::re(main::page('/v2/queues/bounds/messages?echo=true&include_delayed=true&marker=4',
                     main::msg('bounds', undef, 60, 1),
                     main::msg('bounds', undef, 1209600, 2),
                     main::msg('bounds', undef, 3600, 3),
                     main::msg('bounds', undef, 3600, 4)))]



=== TEST 9: bodies come back as the same JSON value, written compact: operators and dotted keys, nesting, unicode, escapes, numbers, null, booleans
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
['POST /v2/queues/bodies/messages
{"messages": [
  {"body": {"$date": 0}},
  {"body": {"a.b": 1, "$set": {"x.y": [1]}, "b": 2, "a": 3}},
  {"body": [[1, [2, [3, []]]], {}, [{"k": [null]}]]},
  {"body": "h\u00e9llo \u2603 \ud83d\ude00 żółw"},
  {"body": "q\"b\\\\s/n\nt\tc\u0001"},
  {"body": [0.1, 1e2, -0.5, 1.5e300, 2.5e-7, 0, -7, 9007199254740993, 1.0]},
  {"body": null},
  {"body": "text"},
  {"body": ""},
  {"body": true},
  {"body": false},
  {"body": {}}
]}',
 "GET /v2/queues/bodies/messages?echo=true&limit=20"]
--- error_code eval
[201, 200]
--- response_body_like eval
[main::resources('bodies', 12),
 main::re(main::page('/v2/queues/bodies/messages?limit=20&echo=true&marker=12',
     map { main::msg('bodies', undef, 3600, $_) }
     '{"$date":0}',
     '{"a.b":1,"$set":{"x.y":[1]},"b":2,"a":3}',
     '[[1,[2,[3,[]]]],{},[{"k":[null]}]]',
     '"héllo ☃ 😀 żółw"',
     '"q\"b\\\\s/n\nt\tc\u0001"',
     '[0.1,100.0,-0.5,1.5e+300,2.5e-07,0,-7,9007199254740993,1.0]',
     'null', '"text"', '""', 'true', 'false', '{}'))]



=== TEST 10: GET ?ids= gives the messages found (the client's own too), in order; unknown and malformed ids are left out
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues/fifo/messages?ids=<ID:fifo:0>,<ID:fifo:1>",
 "GET /v2/queues/fifo/messages?ids=<ID:fifo:1>",
 "GET /v2/queues/fifo/messages?ids=zzz,<ID:fifo:0>,000000000000000000000000",
 "GET /v2/queues/fifo/messages?ids=" . main::zeros(19) . ',<ID:fifo:1>']
--- error_code eval
[200, 200, 200, 200]
--- response_headers eval
[("Content-Type: application/json") x 4]
--- response_body_like eval
[main::re('{"messages": [' . main::msg('fifo', 0, 3600, '{"n":1}') . ', ' . main::msg('fifo', 1, 120, '{"n":2}') . ']}'),
 main::re('{"messages": [' . main::msg('fifo', 1, 120, '{"n":2}') . ']}'),
 main::re('{"messages": [' . main::msg('fifo', 0, 3600, '{"n":1}') . ']}'),
 main::re('{"messages": [' . main::msg('fifo', 1, 120, '{"n":2}') . ']}')]



=== TEST 11: GET ?ids=: none found is 404 naming the ids as Python does; more than 20 ids is 400
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues/fifo/messages?ids=000000000000000000000000,zzz",
 "GET /v2/queues/nowhere/messages?ids=<ID:fifo:0>",
 "GET /v2/queues/fifo/messages?ids=" . main::zeros(20) . ',<ID:fifo:0>']
--- error_code eval
[404, 404, 400]
--- response_headers eval
[("Content-Type: application/json") x 3]
--- response_body eval
[main::err('Not found', "No messages with IDs: ['000000000000000000000000', 'zzz'] found in the queue fifo for project $ENV{TEST_NGINX_PROJECT}."),
 main::err('Not found', "No messages with IDs: ['<ID:fifo:0>'] found in the queue nowhere for project $ENV{TEST_NGINX_PROJECT}."),
 main::err('Invalid API request', 'Limit must be at least 1 and may not be greater than 20.')]



=== TEST 12: GET of one message: the message object; unknown or malformed id 404
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues/fifo/messages/<ID:fifo:1>",
 "GET /v2/queues/fifo/messages/000000000000000000000000",
 "GET /v2/queues/fifo/messages/zzz",
 "GET /v2/queues/nowhere/messages/<ID:fifo:1>"]
--- error_code eval
[200, 404, 404, 404]
--- response_headers eval
[("Content-Type: application/json") x 4]
--- response_body_like eval
[main::re(main::msg('fifo', 1, 120, '{"n":2}')),
 main::re(main::err('Not found', "Message 000000000000000000000000 does not exist in queue fifo for project $ENV{TEST_NGINX_PROJECT}")),
 main::re(main::err('Not found', "Message zzz does not exist in queue fifo for project $ENV{TEST_NGINX_PROJECT}")),
 main::re(main::err('Not found', "Message <ID:fifo:1> does not exist in queue nowhere for project $ENV{TEST_NGINX_PROJECT}"))]



=== TEST 13: three messages to delete one by one
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/doomed/messages\n{\"messages\": [{\"body\": 0}, {\"body\": 1}, {\"body\": 2}]}"]
--- error_code eval
[201]
--- response_body_like eval
[main::resources('doomed', 3)]



=== TEST 14: DELETE of one message: 204, again 204, malformed id 204; a claim id that is not one, or on an unclaimed message, 400
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["DELETE /v2/queues/doomed/messages/<ID:doomed:0>",
 "DELETE /v2/queues/doomed/messages/<ID:doomed:0>",
 "GET /v2/queues/doomed/messages/<ID:doomed:0>",
 "DELETE /v2/queues/doomed/messages/zzz",
 "DELETE /v2/queues/doomed/messages/<ID:doomed:1>?claim_id=notanoid",
 "DELETE /v2/queues/doomed/messages/<ID:doomed:1>?claim_id=5f0000000000000000000000",
 "GET /v2/queues/doomed/messages?ids=<ID:doomed:0>,<ID:doomed:1>,<ID:doomed:2>"]
--- error_code eval
[204, 204, 404, 204, 400, 400, 200]
--- response_headers eval
["", "", "Content-Type: application/json", "", "Content-Type: application/json", "Content-Type: application/json", "Content-Type: application/json"]
--- response_body_like eval
[main::re(''), main::re(''),
 main::re(main::err('Not found', "Message <ID:doomed:0> does not exist in queue doomed for project $ENV{TEST_NGINX_PROJECT}")),
 main::re(''),
 main::re(main::err('Unable to delete', 'The specified claim does not exist or has expired.')),
 main::re(main::err('Unable to delete', 'A claim was specified, but the message is not currently claimed.')),
 main::re('{"messages": [' . main::msg('doomed', 1, 3600, 1) . ', ' . main::msg('doomed', 2, 3600, 2) . ']}')]



=== TEST 15: three messages to delete by ids
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/bulk/messages\n{\"messages\": [{\"body\": 0}, {\"body\": 1}, {\"body\": 2}]}"]
--- error_code eval
[201]
--- response_body_like eval
[main::resources('bulk', 3)]



=== TEST 16: DELETE ?ids=: 204 and they are gone, the others stay; again 204
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["DELETE /v2/queues/bulk/messages?ids=<ID:bulk:0>,<ID:bulk:1>",
 "GET /v2/queues/bulk/messages?ids=<ID:bulk:0>,<ID:bulk:1>",
 "GET /v2/queues/bulk/messages?echo=true",
 "DELETE /v2/queues/bulk/messages?ids=<ID:bulk:0>,<ID:bulk:1>"]
--- error_code eval
[204, 404, 200, 204]
--- response_body_like eval
[main::re(''),
 main::re(main::err('Not found', "No messages with IDs: ['<ID:bulk:0>', '<ID:bulk:1>'] found in the queue bulk for project $ENV{TEST_NGINX_PROJECT}.")),
 main::re(main::page('/v2/queues/bulk/messages?echo=true&marker=3', main::msg('bulk', 2, 3600, 2))),
 main::re('')]



=== TEST 17: DELETE of messages: the parameters' errors, and nothing is deleted by them
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["DELETE /v2/queues/bulk/messages?ids=" . main::zeros(20) . ',<ID:bulk:0>',
 "DELETE /v2/queues/bulk/messages?ids=<ID:bulk:0>&pop=1",
 "DELETE /v2/queues/bulk/messages",
 "DELETE /v2/queues/bulk/messages?pop=0",
 "DELETE /v2/queues/bulk/messages?pop=21",
 "DELETE /v2/queues/bulk/messages?pop=x",
 "DELETE /v2/queues/bulk/messages?ids=<ID:bulk:0>&pop=x",
 "GET /v2/queues/bulk/messages?ids=<ID:bulk:0>"]
--- error_code eval
[400, 400, 400, 400, 400, 400, 400, 200]
--- response_headers eval
[("Content-Type: application/json") x 8]
--- response_body_like eval
[main::re(main::err('Invalid API request', 'ids parameter should have at least 1 and not greater than 20 values.')),
 main::re(main::err('Invalid API request', 'pop and id params cannot be present together in the delete request.')),
 main::re(main::err('Invalid API request', 'The request should have either \"ids\" or \"pop\" parameter in the request, to be able to delete.')),
 main::re(main::err('Invalid API request', 'Pop value must be at least 1 and may not be greater than 20.')),
 main::re(main::err('Invalid API request', 'Pop value must be at least 1 and may not be greater than 20.')),
 main::re(main::err('Invalid parameter', 'The \"pop\" parameter is invalid. The value must be an integer.')),
 main::re(main::err('Invalid parameter', 'The \"pop\" parameter is invalid. The value must be an integer.')),
 main::re('{"messages": [' . main::msg('bulk', 0, 3600, 2) . ']}')]



=== TEST 18: three messages to pop
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/popq/messages\n{\"messages\": [{\"body\": \"a\"}, {\"body\": \"b\", \"ttl\": 300}, {\"body\": \"c\"}]}"]
--- error_code eval
[201]
--- response_body_like eval
[main::resources('popq', 3)]



=== TEST 19: DELETE ?pop=N: 200 with the oldest N, then the rest, then none; an unknown queue has none
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["DELETE /v2/queues/popq/messages?pop=2",
 "DELETE /v2/queues/popq/messages?pop=5",
 "DELETE /v2/queues/popq/messages?pop=1",
 "DELETE /v2/queues/nowhere/messages?pop=3",
 "GET /v2/queues/popq/messages?echo=true"]
--- error_code eval
[200, 200, 200, 200, 200]
--- response_headers eval
[("Content-Type: application/json") x 5]
--- response_body_like eval
[main::re('{"messages": [' . main::popped('popq', 0, 3600, '"a"') . ', ' . main::popped('popq', 1, 300, '"b"') . ']}'),
 main::re('{"messages": [' . main::popped('popq', 2, 3600, '"c"') . ']}'),
 main::re('{"messages": []}'),
 main::re('{"messages": []}'),
 main::re(main::page())]



=== TEST 20: stats: counts, oldest and newest; a queue that does not exist, or is empty, has zeros only
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues/fifo/stats",
 "GET /v2/queues/nowhere/stats",
 "GET /v2/queues/popq/stats"]
--- error_code eval
[200, 200, 200]
--- response_headers eval
[("Content-Type: application/json") x 3]
--- response_body_like eval
[main::re('{"messages": {"claimed": 0, "free": 2, "total": 2, '
          . '"oldest": {"age": <N>, "created": "<DATE>", "href": "/v2/queues/fifo/messages/<ID:fifo:0>"}, '
          . '"newest": {"age": <N>, "created": "<DATE>", "href": "/v2/queues/fifo/messages/<ID:fifo:1>"}}}'),
 main::re('{"messages": {"claimed": 0, "free": 0, "total": 0}}'),
 main::re('{"messages": {"claimed": 0, "free": 0, "total": 0}}')]



=== TEST 21: three queues of two messages to purge
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/purge1/messages\n{\"messages\": [{\"body\": 1}, {\"body\": 2}]}",
 "POST /v2/queues/purge2/messages\n{\"messages\": [{\"body\": 1}, {\"body\": 2}]}",
 "POST /v2/queues/purge3/messages\n{\"messages\": [{\"body\": 1}, {\"body\": 2}]}"]
--- error_code eval
[201, 201, 201]
--- response_body_like eval
[main::resources('purge1', 2), main::resources('purge2', 2), main::resources('purge3', 2)]



=== TEST 22: purge without a body, or of "messages", removes the messages; of "subscriptions" leaves them; a missing queue is 204 and not created
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/purge1/purge",
 "GET /v2/queues/purge1/stats",
 "POST /v2/queues/purge2/purge\n{\"resource_types\": [\"messages\"]}",
 "GET /v2/queues/purge2/messages?echo=true",
 "POST /v2/queues/purge3/purge\n{\"resource_types\": [\"subscriptions\"]}",
 "GET /v2/queues/purge3/messages?echo=true",
 "POST /v2/queues/nowhere/purge",
 "HEAD /v2/queues/nowhere"]
--- error_code eval
[204, 200, 204, 200, 204, 200, 204, 404]
--- response_body_like eval
[main::re(''),
 main::re('{"messages": {"claimed": 0, "free": 0, "total": 0}}'),
 main::re(''),
 main::re(main::page()),
 main::re(''),
 main::re(main::page('/v2/queues/purge3/messages?echo=true&marker=2',
                     main::msg('purge3', 0, 3600, 1), main::msg('purge3', 1, 3600, 2))),
 main::re(''),
 main::re('')]



=== TEST 23: purge with a bad body: 400, and the messages stay
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/purge3/purge\n{\"x\": 1}",
 "POST /v2/queues/purge3/purge\n{\"resource_types\": [\"foo\"]}",
 "POST /v2/queues/purge3/purge\n{\"resource_types\": [\"messages\", \"foo\"]}",
 "POST /v2/queues/purge3/purge\n{\"resource_types\": ",
 "GET /v2/queues/purge3/messages?echo=true"]
--- error_code eval
[400, 400, 400, 400, 200]
--- response_headers eval
[("Content-Type: application/json") x 5]
--- response_body_like eval
[main::re(main::err('Invalid API request', 'Post body must contain key \"resource_types\".')),
 main::re(main::err('Invalid API request', "Resource types must be a sub set of {'messages', 'subscriptions'}.")),
 main::re(main::err('Invalid API request', "Resource types must be a sub set of {'messages', 'subscriptions'}.")),
 main::re(main::err('Invalid request body', 'Request body could not be parsed.')),
 main::re(main::page('/v2/queues/purge3/messages?echo=true&marker=2',
                     main::msg('purge3', 0, 3600, 1), main::msg('purge3', 1, 3600, 2)))]
