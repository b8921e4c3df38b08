# GET /v2/queues: pages sorted by name, markers, limits, detailed,
# name filter, count, and Zaqar's next links.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;

$ENV{TEST_NGINX_PROJECT} = "t011-$$-" . time;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: no queues: an empty page, no links
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues", "GET /v2/queues?with_count=true"]
--- error_code eval
[200, 200]
--- response_body eval
['{"queues": [], "links": []}', '{"queues": [], "links": []}']



=== TEST 2: five queues, in byte order of their names
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["PUT /v2/queues/b\n{\"q\": \"b\"}", "PUT /v2/queues/a", "PUT /v2/queues/c-1", "PUT /v2/queues/c.2", "PUT /v2/queues/_x",
 "GET /v2/queues"]
--- error_code eval
[201, 201, 201, 201, 201, 200]
--- response_body eval
["", "", "", "", "",
 '{"queues": [{"name": "_x", "href": "/v2/queues/_x"}, {"name": "a", "href": "/v2/queues/a"}, {"name": "b", "href": "/v2/queues/b"}, {"name": "c-1", "href": "/v2/queues/c-1"}, {"name": "c.2", "href": "/v2/queues/c.2"}], "links": [{"rel": "next", "href": "/v2/queues?marker=c.2"}]}']



=== TEST 3: paging with limit and marker; the next link keeps the parameters in order
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues?limit=2", "GET /v2/queues?marker=a&limit=2", "GET /v2/queues?limit=2&marker=c-1", "GET /v2/queues?marker=c.2"]
--- response_body eval
['{"queues": [{"name": "_x", "href": "/v2/queues/_x"}, {"name": "a", "href": "/v2/queues/a"}], "links": [{"rel": "next", "href": "/v2/queues?limit=2&marker=a"}]}',
 '{"queues": [{"name": "b", "href": "/v2/queues/b"}, {"name": "c-1", "href": "/v2/queues/c-1"}], "links": [{"rel": "next", "href": "/v2/queues?marker=c-1&limit=2"}]}',
 '{"queues": [{"name": "c.2", "href": "/v2/queues/c.2"}], "links": [{"rel": "next", "href": "/v2/queues?limit=2&marker=c.2"}]}',
 '{"queues": [], "links": []}']



=== TEST 4: detailed, with_count and the name filter (a substring)
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues?detailed=true&limit=1&marker=a", "GET /v2/queues?with_count=true&limit=1", "GET /v2/queues?name=c", "GET /v2/queues?name=.2&with_count=yes"]
--- response_body eval
['{"queues": [{"name": "b", "metadata": {"q": "b", "_max_messages_post_size": 262144, "_default_message_ttl": 3600, "_default_message_delay": 0, "_dead_letter_queue": null, "_dead_letter_queue_messages_ttl": null, "_max_claim_count": null, "_enable_encrypt_messages": false}, "href": "/v2/queues/b"}], "links": [{"rel": "next", "href": "/v2/queues?detailed=true&limit=1&marker=b"}]}',
 '{"queues": [{"name": "_x", "href": "/v2/queues/_x"}], "links": [{"rel": "next", "href": "/v2/queues?with_count=true&limit=1&marker=_x"}], "count": 5}',
 '{"queues": [{"name": "c-1", "href": "/v2/queues/c-1"}, {"name": "c.2", "href": "/v2/queues/c.2"}], "links": [{"rel": "next", "href": "/v2/queues?name=c&marker=c.2"}]}',
 '{"queues": [{"name": "c.2", "href": "/v2/queues/c.2"}], "links": [{"rel": "next", "href": "/v2/queues?name=.2&with_count=true&marker=c.2"}], "count": 5}']



=== TEST 5: bad parameters
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues?limit=0", "GET /v2/queues?limit=21", "GET /v2/queues?limit=-1", "GET /v2/queues?limit=x", "GET /v2/queues?limit=1.5",
 "GET /v2/queues?detailed=maybe", "GET /v2/queues?with_count=2"]
--- error_code eval
[400, 400, 400, 400, 400, 400, 400]
--- response_body eval
['{"title": "Invalid API request", "description": "Limit must be at least 1 and no greater than 20."}',
 '{"title": "Invalid API request", "description": "Limit must be at least 1 and no greater than 20."}',
 '{"title": "Invalid API request", "description": "Limit must be at least 1 and no greater than 20."}',
 '{"title": "Invalid parameter", "description": "The \"limit\" parameter is invalid. The value must be an integer."}',
 '{"title": "Invalid parameter", "description": "The \"limit\" parameter is invalid. The value must be an integer."}',
 '{"title": "Invalid parameter", "description": "The \"detailed\" parameter is invalid. The value of the parameter must be \"true\" or \"false\"."}',
 '{"title": "Invalid parameter", "description": "The \"with_count\" parameter is invalid. The value of the parameter must be \"true\" or \"false\"."}']



=== TEST 6: msgbus_max_queues_per_page changes the limit
--- config
    location / { msgbus; msgbus_max_queues_per_page 3; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request
GET /v2/queues?limit=4
--- error_code: 400
--- response_body chomp
{"title": "Invalid API request", "description": "Limit must be at least 1 and no greater than 3."}



=== TEST 7: other tenants, and projects that would be regex patterns, see nothing of these
--- config
    location / { msgbus; }
--- more_headers eval
["Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: other-$ENV{TEST_NGINX_PROJECT}",
 "Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: t011.*",
 "Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: ."]
--- request eval
["GET /v2/queues?with_count=true", "GET /v2/queues?with_count=true", "GET /v2/queues?with_count=true"]
--- response_body eval
['{"queues": [], "links": []}', '{"queues": [], "links": []}', '{"queues": [], "links": []}']



=== TEST 8: metadata filters: queues of another project to filter
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: f-$ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["PUT /v2/queues/m1\n{\"node\": 34, \"env\": \"prod\", \"tags\": [\"a\", \"b\"], \"deep\": {\"x\": \"y\"}}",
 "PUT /v2/queues/m2\n{\"node\": \"34\", \"env\": \"prod\"}",
 "PUT /v2/queues/m3\n{\"node\": 34.0, \"env\": \"dev\", \"flag\": true}",
 "PUT /v2/queues/m4\n{\"node\": 3000000000, \"env\": \"x y\"}",
 "PUT /v2/queues/m5"]
--- error_code eval
[201, 201, 201, 201, 201]



=== TEST 9: a filter compares m.<key> with $eq: a number where Python's int() reads one (34 is 34.0, not "34"), else the string
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: f-$ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues?node=34", "GET /v2/queues?node=%2B034%20", "GET /v2/queues?env=prod", "GET /v2/queues?node=3_000_000_000",
 "GET /v2/queues?env=x+y", "GET /v2/queues?env=x%20y", "GET /v2/queues?flag=true", "GET /v2/queues?node=3.4e1"]
--- response_body eval
['{"queues": [{"name": "m1", "href": "/v2/queues/m1"}, {"name": "m3", "href": "/v2/queues/m3"}], "links": [{"rel": "next", "href": "/v2/queues?node=34&marker=m3"}]}',
 '{"queues": [{"name": "m1", "href": "/v2/queues/m1"}, {"name": "m3", "href": "/v2/queues/m3"}], "links": [{"rel": "next", "href": "/v2/queues?node=%2B034%20&marker=m3"}]}',
 '{"queues": [{"name": "m1", "href": "/v2/queues/m1"}, {"name": "m2", "href": "/v2/queues/m2"}], "links": [{"rel": "next", "href": "/v2/queues?env=prod&marker=m2"}]}',
 '{"queues": [{"name": "m4", "href": "/v2/queues/m4"}], "links": [{"rel": "next", "href": "/v2/queues?node=3_000_000_000&marker=m4"}]}',
 '{"queues": [{"name": "m4", "href": "/v2/queues/m4"}], "links": [{"rel": "next", "href": "/v2/queues?env=x+y&marker=m4"}]}',
 '{"queues": [{"name": "m4", "href": "/v2/queues/m4"}], "links": [{"rel": "next", "href": "/v2/queues?env=x%20y&marker=m4"}]}',
 '{"queues": [], "links": []}',
 '{"queues": [], "links": []}']



=== TEST 10: filters combine with each other, with name, with detailed; arrays match an element, dotted names go inside
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: f-$ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues?env=prod&node=34", "GET /v2/queues?name=2&env=prod", "GET /v2/queues?tags=a", "GET /v2/queues?deep.x=y",
 "GET /v2/queues?detailed=true&env=dev"]
--- response_body eval
['{"queues": [{"name": "m1", "href": "/v2/queues/m1"}], "links": [{"rel": "next", "href": "/v2/queues?env=prod&node=34&marker=m1"}]}',
 '{"queues": [{"name": "m2", "href": "/v2/queues/m2"}], "links": [{"rel": "next", "href": "/v2/queues?name=2&env=prod&marker=m2"}]}',
 '{"queues": [{"name": "m1", "href": "/v2/queues/m1"}], "links": [{"rel": "next", "href": "/v2/queues?tags=a&marker=m1"}]}',
 '{"queues": [{"name": "m1", "href": "/v2/queues/m1"}], "links": [{"rel": "next", "href": "/v2/queues?deep.x=y&marker=m1"}]}',
 '{"queues": [{"name": "m3", "metadata": {"node": 34.0, "env": "dev", "flag": true, "_max_messages_post_size": 262144, "_default_message_ttl": 3600, "_default_message_delay": 0, "_dead_letter_queue": null, "_dead_letter_queue_messages_ttl": null, "_max_claim_count": null, "_enable_encrypt_messages": false}, "href": "/v2/queues/m3"}], "links": [{"rel": "next", "href": "/v2/queues?detailed=true&env=dev&marker=m3"}]}']



=== TEST 11: paging a filtered listing: the next link keeps the filters (Zaqar's drops them); with_count counts the project's queues, as Zaqar
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: f-$ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues?env=prod&limit=1&with_count=true", "GET /v2/queues?env=prod&limit=1&with_count=true&marker=m1",
 "GET /v2/queues?env=prod&limit=1&with_count=true&marker=m2"]
--- response_body eval
['{"queues": [{"name": "m1", "href": "/v2/queues/m1"}], "links": [{"rel": "next", "href": "/v2/queues?env=prod&limit=1&with_count=true&marker=m1"}], "count": 5}',
 '{"queues": [{"name": "m2", "href": "/v2/queues/m2"}], "links": [{"rel": "next", "href": "/v2/queues?env=prod&limit=1&with_count=true&marker=m2"}], "count": 5}',
 '{"queues": [], "links": [], "count": 5}']



=== TEST 12: parameters without a value filter nothing (falcon drops them)
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: f-$ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues?node=&env&limit=2", "GET /v2/queues?env=dev&env="]
--- response_body eval
['{"queues": [{"name": "m1", "href": "/v2/queues/m1"}, {"name": "m2", "href": "/v2/queues/m2"}], "links": [{"rel": "next", "href": "/v2/queues?limit=2&marker=m2"}]}',
 '{"queues": [{"name": "m3", "href": "/v2/queues/m3"}], "links": [{"rel": "next", "href": "/v2/queues?env=dev&marker=m3"}]}']



=== TEST 13: filters Zaqar fails on by accident (500, 503) are refused with 400
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: f-$ENV{TEST_NGINX_PROJECT}"
--- request eval
["GET /v2/queues?node=1,2", "GET /v2/queues?env=a&env=b", "GET /v2/queues?a..b=1", "GET /v2/queues?%24x=1", "GET /v2/queues?=1",
 "GET /v2/queues?node=9223372036854775808", "GET /v2/queues?env=%ff"]
--- error_code eval
[400, 400, 400, 400, 400, 400, 400]
--- response_body eval
['{"title": "Invalid parameter", "description": "The metadata filter \"node\" is invalid. A metadata filter takes one value."}',
 '{"title": "Invalid parameter", "description": "The metadata filter \"env\" is invalid. A metadata filter takes one value."}',
 '{"title": "Invalid parameter", "description": "The metadata filter \"a..b\" is invalid. The name is no metadata key."}',
 '{"title": "Invalid parameter", "description": "The metadata filter \"$x\" is invalid. The name is no metadata key."}',
 '{"title": "Invalid parameter", "description": "The metadata filter \"\" is invalid. The name is no metadata key."}',
 '{"title": "Invalid parameter", "description": "The metadata filter \"node\" is invalid. The value is out of range."}',
 '{"title": "Invalid parameter", "description": "The metadata filter \"env\" is invalid. It is no UTF-8."}']
