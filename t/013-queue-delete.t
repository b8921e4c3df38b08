# DELETE /v2/queues/{q} removes the queue's messages from its partition
# (<database>_messages_p<crc32(project + queue) % 2>) as Zaqar does; the
# messages are written the way Zaqar's driver writes them (t/util/mongo.py).

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;

$ENV{TEST_NGINX_PROJECT} = "t013-$$-" . time;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a queue with Zaqar's messages, and a neighbour queue
--- config
    location / { msgbus; }
--- init
Msgbus::Test::mongo('insert-messages', $ENV{TEST_NGINX_PROJECT}, 'doomed', 3);
Msgbus::Test::mongo('insert-messages', $ENV{TEST_NGINX_PROJECT}, 'neighbour', 2);
Msgbus::Test::mongo('insert-messages', "other-$ENV{TEST_NGINX_PROJECT}", 'doomed', 1);
Test::More::is(Msgbus::Test::mongo('count-messages', $ENV{TEST_NGINX_PROJECT}, 'doomed'), 3, 'TEST 1: 3 messages stored');
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}"
--- request eval
["PUT /v2/queues/doomed", "DELETE /v2/queues/doomed", "HEAD /v2/queues/doomed"]
--- error_code eval
[201, 204, 404]



=== TEST 2: ... its messages are gone; the neighbour's and the other project's stay
--- config
    location / { msgbus; }
--- init
Test::More::is(Msgbus::Test::mongo('count-messages', $ENV{TEST_NGINX_PROJECT}, 'doomed'), 0, 'TEST 2: the queue has no messages left');
Test::More::is(Msgbus::Test::mongo('count-messages', $ENV{TEST_NGINX_PROJECT}, 'neighbour'), 2, 'TEST 2: its neighbour keeps its messages');
Test::More::is(Msgbus::Test::mongo('count-messages', "other-$ENV{TEST_NGINX_PROJECT}", 'doomed'), 1, 'TEST 2: the other project keeps its messages');
--- request
GET /
--- error_code: 300



=== TEST 3: msgbus_message_partitions must be 1 to 1024
--- http_config
    msgbus_mongodb "$TEST_NGINX_MONGODB_URI";
    msgbus_message_partitions 0;
--- config
    location / { msgbus; }
--- must_die
--- error_log
msgbus_message_partitions must be 1 to 1024



=== TEST 4: a queue created again goes on above the markers of the one deleted
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/again/messages\n{\"messages\": [{\"body\": 1}, {\"body\": 2}, {\"body\": 3}]}",
 "DELETE /v2/queues/again",
 "POST /v2/queues/again/messages\n{\"messages\": [{\"body\": 4}]}",
 "GET /v2/queues/again/messages?echo=true",
 "DELETE /v2/queues/again",
 "PUT /v2/queues/again",
 "POST /v2/queues/again/messages\n{\"messages\": [{\"body\": 5}]}",
 "GET /v2/queues/again/messages?echo=true"]
--- error_code eval
[201, 204, 201, 200, 204, 201, 201, 200]
--- response_body_like eval
[qr/resources/, qr/^$/, qr/resources/,
 qr/^\{"messages": \[\{[^\]]*"body": 4\}\], "links": \[\{"rel": "next", "href": "\/v2\/queues\/again\/messages\?echo=true&marker=4"\}\]\}$/,
 qr/^$/, qr/^$/, qr/resources/,
 qr/^\{"messages": \[\{[^\]]*"body": 5\}\], "links": \[\{"rel": "next", "href": "\/v2\/queues\/again\/messages\?echo=true&marker=5"\}\]\}$/]
--- no_error_log
[error]
