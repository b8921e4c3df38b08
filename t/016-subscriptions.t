# Subscriptions, as Zaqar 15: POST (the queue made if need be; a
# duplicate is its id again until confirmed, then 409), GET one and the
# list (paged by id, Zaqar's next link), PATCH, DELETE, PUT .../confirm,
# the purge's part; Zaqar's checks and texts, in Zaqar's order (the
# options' _retry_policy, and the queue metadata's); msgbus's own check
# of the subscriber (http and https only: mailto and trust+ are 501; a
# host name needs a resolver); the documents in the store (Zaqar's
# fields, and msgbus's mk, mo, ml); and Zaqar's confirmation messages
# (t/util/subscription_confirm.py).
#
# The http(s) subscribers of POST and PATCH need the webhooks' URL parser
# (adapter/ngx_http_msgbus_hook_http.c); the other blocks work on
# subscriptions written in the store (t/util/mongo.py insert-subscriptions).
#
# Ids are only known once made: the sections hold placeholders, filled in
# just before their block runs from %Id, which an earlier block's "---
# init" sets: @a@, @i0@ ..., and @project@ (the run's project), @other@
# (another project).

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;

# subscriptions: a database of its own (Msgbus::Test::own_database)
Msgbus::Test::own_database('t016');

$ENV{TEST_NGINX_PROJECT} = "t016-$$-" . time;

our %Id;

sub mongo { Msgbus::Test::mongo(@_) }

# subscriptions written in the store, as msgbus writes them, in order
# (their ids grow), each [NAME, SUBSCRIBER, TTL, OPTIONS (JSON)]: their ids
# as $Id{NAME}
sub fixture {
    my ($queue, @subs) = @_;
    my $json = '[' . join(', ', map {
        sprintf '{"u": "%s", "t": %d, "o": %s}', $_->[1], $_->[2] // 600,
                $_->[3] // '{}' } @subs) . ']';
    my @ids = split /\n/, mongo('insert-subscriptions',
                                $ENV{TEST_NGINX_PROJECT}, $queue, $json);
    @Id{map { $_->[0] } @subs} = @ids;
}

# the queue's subscriptions in the store, one JSON line each
sub docs { mongo('subscription-docs', $ENV{TEST_NGINX_PROJECT}, @_) }

sub fill {
    my ($text) = @_;
    return [map { fill($_) } @$text] if ref $text eq 'ARRAY';
    $text =~ s/\@(\w+)\@/$1 eq 'project' ? $ENV{TEST_NGINX_PROJECT}
                         : $1 eq 'other' ? "$ENV{TEST_NGINX_PROJECT}-other"
                         : $Id{$1} \/\/ "<no $1>"/ge;
    return $text;
}

add_block_preprocessor(sub {
    my $block = shift;
    for my $section (qw(request more_headers response_body
                        response_body_like response_headers error_log)) {
        next unless defined $block->$section;
        $block->set_value($section, fill($block->$section));
    }
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: POST creates a subscription: 201 {"subscription_id"}, Location the collection's path; the queue is made
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['POST /v2/queues/fruit/subscriptions
{"subscriber": "http://127.0.0.1:9/a", "ttl": 600, "options": {"post_headers": {"X-A": "1"}, "n": [1, 2.5]}}',
 'POST /v2/queues/fruit/subscriptions
{"subscriber": "https://127.0.0.1:9/b"}',
 'HEAD /v2/queues/fruit']
--- error_code eval
[201, 201, 204]
--- response_headers eval
["Location: /v2/queues/fruit/subscriptions", "Location: /v2/queues/fruit/subscriptions", ""]
--- response_body_like eval
['^\{"subscription_id": "[0-9a-f]{24}"\}$', '^\{"subscription_id": "[0-9a-f]{24}"\}$', '^$']
--- no_error_log
[error]



=== TEST 2: ... stored as Zaqar's documents (s, u, t, e, o, p, c false), msgbus's mk (Int64: the queue's last marker, 0), mo and ml (no lease yet, or a worker's already); no ttl: msgbus_default_subscription_ttl
--- init
my @docs = split /\n/, main::docs('fruit');
Test::More::is(scalar @docs, 2, 'TEST 2: two subscriptions of fruit');
Test::More::like($docs[0] // '', qr/^\{"s": "fruit", "u": "http:\/\/127.0.0.1:9\/a", "t": 600, "o": \{"post_headers": \{"X-A": "1"\}, "n": \[1, 2.5\]\}, "p": "\Q$ENV{TEST_NGINX_PROJECT}\E", "c": false, "mk": 0, "mo": "(?:|[0-9a-f]{24})", "ml": \d+, "types": \{"t": "int", "e": "datetime", "mk": "Int64", "ml": "Int64"\}, "e_in": (59\d|600)\}$/,
                 'TEST 2: the first document');
Test::More::like($docs[1] // '', qr/^\{"s": "fruit", "u": "https:\/\/127.0.0.1:9\/b", "t": 3600, "o": \{\}, .*"c": false, "mk": 0, "mo": "(?:|[0-9a-f]{24})", "ml": \d+, .*"e_in": (359\d|3600)\}$/,
                 'TEST 2: the second document: the default ttl, options {}');
($main::Id{a}, $main::Id{b}) = split /\n/, main::mongo('subscription-ids', $ENV{TEST_NGINX_PROJECT}, 'fruit');
# fixtures for the blocks below (written in the store)
main::fixture('items', ['i0', 'http://127.0.0.1:9/i0', 600, '{"k": "v", "_retry_policy": {"retries_with_no_delay": 1}}'],
              ['i1', 'http://127.0.0.1:9/i1', 700]);
$main::Id{I1} = uc $main::Id{i1};    # an id in capitals is the same id
main::fixture('paged', map { ["p$_", "http://127.0.0.1:9/p$_"] } 0 .. 4);
main::fixture('purged', ['g0', 'http://127.0.0.1:9/g0'], ['g1', 'http://127.0.0.1:9/g1']);
main::fixture('purged2', ['h0', 'http://127.0.0.1:9/h0']);
main::fixture('confirmed', ['c0', 'http://127.0.0.1:9/c0']);
main::fixture('unsub', ['u0', 'http://127.0.0.1:9/u0']);
main::fixture('notified', ['n0', 'http://127.0.0.1:9/n0']);
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204



=== TEST 3: POST of the same subscriber again, not confirmed: 201 with its id (Zaqar sends the confirmation again)
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request
POST /v2/queues/fruit/subscriptions
{"subscriber": "http://127.0.0.1:9/a", "ttl": 900}
--- error_code: 201
--- response_headers
Location: /v2/queues/fruit/subscriptions
--- response_body chomp
{"subscription_id": "@a@"}



=== TEST 4: GET one: Zaqar's _basic_subscription; another project's, another queue's, a bad id: 404
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['GET /v2/queues/items/subscriptions/@i0@',
 'GET /v2/queues/fruit/subscriptions/@i0@',
 'GET /v2/queues/items/subscriptions/nope',
 'GET /v2/queues/items/subscriptions/@I1@']
--- error_code eval
[200, 404, 404, 200]
--- response_body_like eval
['^\{"id": "@i0@", "source": "items", "subscriber": "http://127.0.0.1:9/i0", "ttl": 600, "age": \d+, "options": \{"k": "v", "_retry_policy": \{"retries_with_no_delay": 1\}\}, "confirmed": false\}$',
 '^\{"title": "Not found", "description": "Subscription @i0@ does not exist"\}$',
 '^\{"title": "Not found", "description": "Subscription nope does not exist"\}$',
 '^\{"id": "@i1@", "source": "items", "subscriber": "http://127.0.0.1:9/i1", "ttl": 700, "age": \d+, "options": \{\}, "confirmed": false\}$']
--- no_error_log
[error]



=== TEST 5: another project sees none of them
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @other@
--- request eval
['GET /v2/queues/items/subscriptions/@i0@', 'GET /v2/queues/items/subscriptions',
 'DELETE /v2/queues/items/subscriptions/@i0@', 'PATCH /v2/queues/items/subscriptions/@i0@
{"ttl": 100}',
 'PUT /v2/queues/items/subscriptions/@i0@/confirm
{"confirmed": true}']
--- error_code eval
[404, 200, 204, 404, 404]
--- response_body eval
['{"title": "Not found", "description": "Subscription @i0@ does not exist"}', '{"subscriptions": [], "links": []}', '',
 '{"title": "Not found", "description": "Subscription @i0@ does not exist"}',
 '{"title": "Not found", "description": "Subscription @i0@ does not exist"}']



=== TEST 6: the list: by id, with the next link (the page's last id)
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request
GET /v2/queues/items/subscriptions
--- response_body_like chomp
^\{"subscriptions": \[\{"id": "@i0@", "source": "items", "subscriber": "http://127.0.0.1:9/i0", "ttl": 600, "age": \d+, "options": \{"k": "v", "_retry_policy": \{"retries_with_no_delay": 1\}\}, "confirmed": false\}, \{"id": "@i1@", "source": "items", "subscriber": "http://127.0.0.1:9/i1", "ttl": 700, "age": \d+, "options": \{\}, "confirmed": false\}\], "links": \[\{"rel": "next", "href": "/v2/queues/items/subscriptions\?marker=@i1@"\}\]\}$



=== TEST 7: paging: limit and marker, the next link's parameters in Zaqar's order (a given marker first, else after the limit, whatever the request's order); an empty page has no link; a marker that is no id lists nothing
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['GET /v2/queues/paged/subscriptions?limit=2', 'GET /v2/queues/paged/subscriptions?marker=@p1@&limit=2',
 'GET /v2/queues/paged/subscriptions?limit=2&marker=@p3@', 'GET /v2/queues/paged/subscriptions?marker=@p4@',
 'GET /v2/queues/paged/subscriptions?marker=zz', 'GET /v2/queues/paged/subscriptions?marker=&limit=']
--- response_body_like eval
['^\{"subscriptions": \[\{"id": "@p0@", .*\{"id": "@p1@", [^{]*\{\}, "confirmed": false\}\], "links": \[\{"rel": "next", "href": "/v2/queues/paged/subscriptions\?limit=2&marker=@p1@"\}\]\}$',
 '^\{"subscriptions": \[\{"id": "@p2@", .*\{"id": "@p3@", [^{]*\{\}, "confirmed": false\}\], "links": \[\{"rel": "next", "href": "/v2/queues/paged/subscriptions\?marker=@p3@&limit=2"\}\]\}$',
 '^\{"subscriptions": \[\{"id": "@p4@", [^{]*\{\}, "confirmed": false\}\], "links": \[\{"rel": "next", "href": "/v2/queues/paged/subscriptions\?marker=@p4@&limit=2"\}\]\}$',
 '^\{"subscriptions": \[\], "links": \[\]\}$',
 '^\{"subscriptions": \[\], "links": \[\]\}$',
 '^\{"subscriptions": \[\{"id": "@p0@", .*"@p4@".*\], "links": \[\{"rel": "next", "href": "/v2/queues/paged/subscriptions\?marker=@p4@"\}\]\}$']



=== TEST 8: limit: falcon's integer, then Zaqar's range 1..msgbus_max_subscriptions_per_page
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['GET /v2/queues/paged/subscriptions?limit=0', 'GET /v2/queues/paged/subscriptions?limit=21',
 'GET /v2/queues/paged/subscriptions?limit=-1', 'GET /v2/queues/paged/subscriptions?limit=x',
 'GET /v2/queues/paged/subscriptions?limit=1.5']
--- error_code eval
[400, 400, 400, 400, 400]
--- response_body eval
['{"title": "Invalid API request", "description": "Limit must be at least 1 and may not be greater than 20."}',
 '{"title": "Invalid API request", "description": "Limit must be at least 1 and may not be greater than 20."}',
 '{"title": "Invalid API request", "description": "Limit must be at least 1 and may not be greater than 20."}',
 '{"title": "Invalid parameter", "description": "The \"limit\" parameter is invalid. The value must be an integer."}',
 '{"title": "Invalid parameter", "description": "The \"limit\" parameter is invalid. The value must be an integer."}']



=== TEST 9: msgbus_max_subscriptions_per_page 3: the range, and the default page (Zaqar's 10, or this if lower)
--- config
    location / { msgbus; msgbus_max_subscriptions_per_page 3; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['GET /v2/queues/paged/subscriptions?limit=4', 'GET /v2/queues/paged/subscriptions']
--- error_code eval
[400, 200]
--- response_body_like eval
['^\{"title": "Invalid API request", "description": "Limit must be at least 1 and may not be greater than 3."\}$',
 '^\{"subscriptions": \[\{"id": "@p0@", .*"@p1@".*\{"id": "@p2@", [^{]*\{\}, "confirmed": false\}\], "links": \[\{"rel": "next", "href": "/v2/queues/paged/subscriptions\?marker=@p2@"\}\]\}$']



=== TEST 10: PUT .../confirm: Zaqar's checks; then 204 with Location; Zaqar's confirm() selects by id and project only (another queue's path confirms it)
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['PUT /v2/queues/confirmed/subscriptions/@c0@/confirm',
 'PUT /v2/queues/confirmed/subscriptions/@c0@/confirm
{}',
 'PUT /v2/queues/confirmed/subscriptions/@c0@/confirm
{"confirmed": "yes"}',
 'PUT /v2/queues/confirmed/subscriptions/@c0@/confirm
{"confirmed": 1}',
 'PUT /v2/queues/confirmed/subscriptions/@c0@/confirm
[1]',
 'PUT /v2/queues/confirmed/subscriptions/nope/confirm
{"confirmed": true}',
 'PUT /v2/queues/confirmed/subscriptions/@c0@/confirm
{"confirmed": true}',
 'GET /v2/queues/confirmed/subscriptions/@c0@',
 'PUT /v2/queues/fruit/subscriptions/@c0@/confirm
{"confirmed": false}',
 'GET /v2/queues/confirmed/subscriptions/@c0@',
 'PUT /v2/queues/fruit/subscriptions/@c0@/confirm
{"confirmed": true}',
 'GET /v2/queues/confirmed/subscriptions/@c0@']
--- error_code eval
[400, 400, 400, 400, 400, 404, 204, 200, 404, 200, 204, 200]
--- response_headers eval
['', '', '', '', '', '', 'Location: /v2/queues/confirmed/subscriptions/@c0@/confirm', '', '', '', 'Location: /v2/queues/fruit/subscriptions/@c0@/confirm', '']
--- response_body_like eval
['^\{"title": "Invalid API request", "description": "The \'confirmed\' should be boolean."\}$',
 '^\{"title": "Invalid API request", "description": "The \'confirmed\' should be boolean."\}$',
 '^\{"title": "Invalid API request", "description": "The \'confirmed\' should be boolean."\}$',
 '^\{"title": "Invalid API request", "description": "The \'confirmed\' should be boolean."\}$',
 '^\{"title": "Unable to confirm subscription", "description": "Subscription @c0@ could not be confirmed."\}$',
 '^\{"title": "Not found", "description": "Subscription nope does not exist"\}$',
 '^$',
 '"confirmed": true\}$',
 '^\{"title": "Not found", "description": "Subscription @c0@ does not exist"\}$',
 '"confirmed": false\}$',
 '^$',
 '"confirmed": true\}$']
--- no_error_log
[error]



=== TEST 11: POST of a confirmed subscriber: 409 with Zaqar's text and Location
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request
POST /v2/queues/confirmed/subscriptions
{"subscriber": "http://127.0.0.1:9/c0"}
--- error_code: 409
--- response_headers
Location: /v2/queues/confirmed/subscriptions
--- response_body chomp
{"title": "Resource conflict", "description": "Such subscription already exists.Subscriptions are unique by project + queue + subscriber URI."}



=== TEST 12: PATCH ttl and options: 204 with Location; read back; a field null is not changed
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['PATCH /v2/queues/items/subscriptions/@i1@
{"ttl": 1200, "options": {"post_data": {"x": 1}}}',
 'GET /v2/queues/items/subscriptions/@i1@',
 'PATCH /v2/queues/items/subscriptions/@i1@
{"options": null, "ttl": 1300}',
 'GET /v2/queues/items/subscriptions/@i1@']
--- error_code eval
[204, 200, 204, 200]
--- response_headers eval
['Location: /v2/queues/items/subscriptions/@i1@', '', 'Location: /v2/queues/items/subscriptions/@i1@', '']
--- response_body_like eval
['^$',
 '^\{"id": "@i1@", "source": "items", "subscriber": "http://127.0.0.1:9/i1", "ttl": 1200, "age": \d+, "options": \{"post_data": \{"x": 1\}\}, "confirmed": false\}$',
 '^$',
 '^\{"id": "@i1@", "source": "items", "subscriber": "http://127.0.0.1:9/i1", "ttl": 1300, "age": \d+, "options": \{"post_data": \{"x": 1\}\}, "confirmed": false\}$']
--- no_error_log
[error]



=== TEST 13: ... a ttl moves e; mk, mo and ml are not touched
--- init
my @docs = split /\n/, main::docs('items');
Test::More::like($docs[1] // '', qr/"t": 1300, .*"mk": 0, "mo": "(?:|[0-9a-f]{24})", "ml": \d+, .*"e_in": (129\d|1300)\}$/,
                 'TEST 13: the patched document');
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204



=== TEST 14: PATCH: Zaqar's checks and texts in its order; where its update() fails, its catch-all 400; the id, project and queue select (404)
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['PATCH /v2/queues/items/subscriptions/@i1@',
 'PATCH /v2/queues/items/subscriptions/@i1@
[]',
 'PATCH /v2/queues/items/subscriptions/@i1@
[1]',
 'PATCH /v2/queues/items/subscriptions/@i1@
{"ttl": 59}',
 'PATCH /v2/queues/items/subscriptions/@i1@
{"ttl": "60"}',
 'PATCH /v2/queues/items/subscriptions/@i1@
{"ttl": 60.5}',
 'PATCH /v2/queues/items/subscriptions/@i1@
{"ttl": 9223372036854775807}',
 'PATCH /v2/queues/items/subscriptions/@i1@
{"options": [1]}',
 'PATCH /v2/queues/items/subscriptions/@i1@
{"subscriber": "ftp://x", "ttl": 5}',
 'PATCH /v2/queues/items/subscriptions/@i1@
{"foo": 1}',
 'PATCH /v2/queues/items/subscriptions/@i1@
{"ttl": null, "subscriber": null}',
 'PATCH /v2/queues/items/subscriptions/@i1@
{"ttl": ""}',
 'PATCH /v2/queues/items/subscriptions/@i1@
{"project": "x", "ttl": 100}',
 'PATCH /v2/queues/items/subscriptions/@i1@
{"subscriber": 5}',
 'PATCH /v2/queues/items/subscriptions/nope
{"ttl": 100}',
 'PATCH /v2/queues/fruit/subscriptions/@i1@
{"ttl": 100}']
--- error_code eval
[400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 404, 404]
--- response_body eval
['{"title": "Invalid API request", "description": "No subscription to create."}',
 '{"title": "Invalid API request", "description": "No subscription to create."}',
 '{"title": "Invalid API request", "description": "Subscriptions must be a dict."}',
 '{"title": "Invalid API request", "description": "The TTL for a subscription must be at least 60 seconds long."}',
 '{"title": "Invalid API request", "description": "TTL must be an integer."}',
 '{"title": "Invalid API request", "description": "TTL must be an integer."}',
 '{"title": "Invalid API request", "description": "The TTL seconds for a subscription plus current time must be less than 9999-12-31 23:59:59.999999."}',
 '{"title": "Invalid API request", "description": "Options must be a dict."}',
 '{"title": "Invalid API request", "description": "The subscriber type of subscription must be supported in the list [\'http\', \'https\', \'mailto\', \'trust+http\', \'trust+https\']."}',
 '{"title": "Unable to update subscription", "description": "Subscription @i1@ could not be updated."}',
 '{"title": "Unable to update subscription", "description": "Subscription @i1@ could not be updated."}',
 '{"title": "Unable to update subscription", "description": "Subscription @i1@ could not be updated."}',
 '{"title": "Unable to update subscription", "description": "Subscription @i1@ could not be updated."}',
 '{"title": "Unable to update subscription", "description": "Subscription @i1@ could not be updated."}',
 '{"title": "Not found", "description": "Subscription nope does not exist"}',
 '{"title": "Not found", "description": "Subscription @i1@ does not exist"}']
--- no_error_log
[error]



=== TEST 15: PATCH of the subscriber: msgbus's check (mailto and trust+ are 501); another's subscriber is 409
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['PATCH /v2/queues/items/subscriptions/@i1@
{"subscriber": "mailto:ops@example.com"}',
 'PATCH /v2/queues/items/subscriptions/@i1@
{"subscriber": "trust+http://127.0.0.1:9/x"}',
 'PATCH /v2/queues/items/subscriptions/@i1@
{"subscriber": "http://hooks.example.com/x"}',
 'PATCH /v2/queues/items/subscriptions/@i1@
{"subscriber": "http://127.0.0.1:9/i0"}',
 'PATCH /v2/queues/items/subscriptions/@i1@
{"subscriber": "http://127.0.0.1:9/i1-new"}',
 'GET /v2/queues/items/subscriptions/@i1@']
--- error_code eval
[501, 501, 400, 409, 204, 200]
--- response_body_like eval
['^\{"title": "Not implemented", "description": "msgbus delivers to http and https subscribers only: the subscriber type mailto is not implemented."\}$',
 '^\{"title": "Not implemented", "description": "msgbus delivers to http and https subscribers only: the subscriber type trust\+http is not implemented."\}$',
 '^\{"title": "Invalid API request", "description": "The subscriber\'s host hooks.example.com cannot be resolved: msgbus needs a `resolver` in the http block to reach it."\}$',
 '^\{"title": "Resource conflict", "description": "Such subscription already exists. Subscriptions are unique by project \+ queue \+ subscriber URI."\}$',
 '^$',
 '"subscriber": "http://127.0.0.1:9/i1-new", ']



=== TEST 16: POST: Zaqar's checks and texts in its order (its 503s for a body that is no object, a subscriber that is no text, a ttl null are 400 here)
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['POST /v2/queues/checks/subscriptions',
 'POST /v2/queues/checks/subscriptions
{}',
 'POST /v2/queues/checks/subscriptions
[1]',
 'POST /v2/queues/checks/subscriptions
{"subscriber": 5}',
 'POST /v2/queues/checks/subscriptions
{"subscriber": "ftp://127.0.0.1/x", "ttl": 5}',
 'POST /v2/queues/checks/subscriptions
{"subscriber": "Ht\ttp://127.0.0.1/x", "options": 5}',
 'POST /v2/queues/checks/subscriptions
{"subscriber": "mailto:ops@example.com", "ttl": 5}',
 'POST /v2/queues/checks/subscriptions
{"subscriber": "", "ttl": 59}',
 'POST /v2/queues/checks/subscriptions
{"subscriber": "", "ttl": 60}',
 'POST /v2/queues/checks/subscriptions
{"subscriber": null}',
 'POST /v2/queues/checks/subscriptions
{"subscriber": "mailto:ops@example.com", "ttl": null}',
 'POST /v2/queues/checks/subscriptions
{"subscriber": "mailto:ops@example.com", "ttl": true}',
 'POST /v2/queues/checks/subscriptions
{"subscriber": "mailto:ops@example.com", "ttl": 100000000000000}',
 'POST /v2/queues/checks/subscriptions
{"subscriber": "mailto:ops@example.com", "options": {"_retry_policy": [1]}}',
 'POST /v2/queues/checks/subscriptions
{"subscriber": "mailto:ops@example.com", "options": {"_retry_policy": {"maximum_delay": 4}}}',
 'POST /v2/queues/checks/subscriptions
{"subscriber": "mailto:ops@example.com"}',
 'POST /v2/queues/checks/subscriptions
{"subscriber": "trust+https://127.0.0.1/x"}',
 'POST /v2/queues/checks/subscriptions
{"a": "',
 'GET /v2/queues/checks/subscriptions']
--- error_code eval
[400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 501, 501, 400, 200]
--- response_body eval
['{"title": "Invalid API request", "description": "Missing parameter subscriber in body."}',
 '{"title": "Invalid API request", "description": "Missing parameter subscriber in body."}',
 '{"title": "Invalid API request", "description": "Subscriptions must be a dict."}',
 '{"title": "Invalid API request", "description": "The subscriber of a subscription must be a string."}',
 '{"title": "Invalid API request", "description": "The subscriber type of subscription must be supported in the list [\'http\', \'https\', \'mailto\', \'trust+http\', \'trust+https\']."}',
 '{"title": "Invalid API request", "description": "Options must be a dict."}',
 '{"title": "Invalid API request", "description": "The TTL for a subscription must be at least 60 seconds long."}',
 '{"title": "Invalid API request", "description": "The TTL for a subscription must be at least 60 seconds long."}',
 '{"title": "Invalid API request", "description": "The subscriber type of subscription must be supported in the list [\'http\', \'https\', \'mailto\', \'trust+http\', \'trust+https\']."}',
 '{"title": "Invalid API request", "description": "The subscriber of a subscription must be a string."}',
 '{"title": "Invalid API request", "description": "TTL must be an integer."}',
 '{"title": "Invalid API request", "description": "The TTL for a subscription must be at least 60 seconds long."}',
 '{"title": "Invalid API request", "description": "The TTL seconds for a subscription plus current time must be less than 9999-12-31 23:59:59.999999."}',
 '{"title": "Invalid API request", "description": "retry_policy must be a dict."}',
 '{"title": "Invalid API request", "description": "minimum_delay must less than maximum_delay."}',
 '{"title": "Not implemented", "description": "msgbus delivers to http and https subscribers only: the subscriber type mailto is not implemented."}',
 '{"title": "Not implemented", "description": "msgbus delivers to http and https subscribers only: the subscriber type trust+https is not implemented."}',
 '{"title": "Invalid request body", "description": "Request body could not be parsed."}',
 '{"subscriptions": [], "links": []}']
--- no_error_log
[error]



=== TEST 17: a POST its checks refuse still makes the queue (Zaqar's on_post makes it first); a body over msgbus_max_queue_metadata is refused unread
--- config
    location / { msgbus; msgbus_max_queue_metadata 100; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['HEAD /v2/queues/made-by-post', 'POST /v2/queues/made-by-post/subscriptions
{"ttl": 60}', 'HEAD /v2/queues/made-by-post',
 'POST /v2/queues/big/subscriptions
{"subscriber": "http://127.0.0.1:9/' . ('x' x 100) . '"}', 'HEAD /v2/queues/big']
--- error_code eval
[404, 400, 204, 400, 404]
--- response_body eval
['', '{"title": "Invalid API request", "description": "Missing parameter subscriber in body."}', '',
 '{"title": "Invalid request body", "description": "Subscription is too large. Max size: 100"}', '']



=== TEST 18: POST of a subscriber msgbus cannot post to: a host name without a resolver, a malformed http URL (400)
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['POST /v2/queues/checks/subscriptions
{"subscriber": "https://hooks.example.com/x"}',
 'POST /v2/queues/checks/subscriptions
{"subscriber": "http://"}',
 'POST /v2/queues/checks/subscriptions
{"subscriber": "http://127.0.0.1:99999/x"}',
 'GET /v2/queues/checks/subscriptions']
--- error_code eval
[400, 400, 400, 200]
--- response_body eval
['{"title": "Invalid API request", "description": "The subscriber\'s host hooks.example.com cannot be resolved: msgbus needs a `resolver` in the http block to reach it."}',
 '{"title": "Invalid API request", "description": "The subscriber http:// is not a valid http or https URL."}',
 '{"title": "Invalid API request", "description": "The subscriber http://127.0.0.1:99999/x is not a valid http or https URL."}',
 '{"subscriptions": [], "links": []}']



=== TEST 19: DELETE: 204 always (another queue's path deletes nothing); gone after
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['DELETE /v2/queues/fruit/subscriptions/@i0@', 'GET /v2/queues/items/subscriptions/@i0@',
 'DELETE /v2/queues/items/subscriptions/@i0@', 'GET /v2/queues/items/subscriptions/@i0@',
 'DELETE /v2/queues/items/subscriptions/@i0@', 'DELETE /v2/queues/items/subscriptions/nope']
--- error_code eval
[204, 200, 204, 404, 204, 204]
--- response_body_like eval
['^$', '"id": "@i0@"', '^$', '^\{"title": "Not found", "description": "Subscription @i0@ does not exist"\}$', '^$', '^$']
--- no_error_log
[error]



=== TEST 20: purge: "messages" keeps the subscriptions; "subscriptions" removes them; no body removes both
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['POST /v2/queues/purged/messages
{"messages": [{"body": 1}]}',
 'POST /v2/queues/purged/purge
{"resource_types": ["messages"]}',
 'GET /v2/queues/purged/subscriptions',
 'POST /v2/queues/purged/purge
{"resource_types": ["subscriptions"]}',
 'GET /v2/queues/purged/subscriptions',
 'POST /v2/queues/purged2/messages
{"messages": [{"body": 1}]}',
 'POST /v2/queues/purged2/purge',
 'GET /v2/queues/purged2/subscriptions',
 'GET /v2/queues/purged2/stats']
--- error_code eval
[201, 204, 200, 204, 200, 201, 204, 200, 200]
--- response_body_like eval
['resources', '^$', '^\{"subscriptions": \[\{"id": "@g0@", .*\{"id": "@g1@", .*\], "links"',
 '^$', '^\{"subscriptions": \[\], "links": \[\]\}$',
 'resources', '^$', '^\{"subscriptions": \[\], "links": \[\]\}$',
 '^\{"messages": \{"claimed": 0, "free": 0, "total": 0\}\}$']
--- no_error_log
[error]



=== TEST 21: a queue's _retry_policy (PUT and PATCH), as Zaqar's _validate_retry_policy
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['PUT /v2/queues/rp
{"_retry_policy": "x"}',
 'PUT /v2/queues/rp
{"_retry_policy": {"retries_with_no_delay": "1"}}',
 'PUT /v2/queues/rp
{"_retry_policy": {"minimum_delay_retries": 1.5}}',
 'PUT /v2/queues/rp
{"_retry_policy": {"maximum_delay_retries": [1]}}',
 'PUT /v2/queues/rp
{"_retry_policy": {"retry_backoff_function": 1}}',
 'PUT /v2/queues/rp
{"_retry_policy": {"retry_backoff_function": "cubic"}}',
 'PUT /v2/queues/rp
{"_retry_policy": {"ignore_subscription_override": 1}}',
 'PUT /v2/queues/rp
{"_retry_policy": {"minimum_delay": 30, "maximum_delay": 20}}',
 'PUT /v2/queues/rp
{"_retry_policy": {"minimum_delay": 21}}',
 'PUT /v2/queues/rp
{"_retry_policy": {"minimum_delay": null}}',
 'PUT /v2/queues/rp
{"_default_message_ttl": 10, "_retry_policy": 5}',
 'HEAD /v2/queues/rp',
 'PUT /v2/queues/rp
{"_retry_policy": {"retries_with_no_delay": 0, "minimum_delay": 20, "maximum_delay": 30, "retry_backoff_function": "geometric", "ignore_subscription_override": true, "other": "x"}}',
 'PUT /v2/queues/rp2
{"_retry_policy": {}}']
--- error_code eval
[400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 404, 201, 201]
--- response_body eval
['{"title": "Invalid API request", "description": "retry_policy must be a dict."}',
 '{"title": "Invalid API request", "description": "Retry policy: retries_with_no_delay must be a integer."}',
 '{"title": "Invalid API request", "description": "Retry policy: minimum_delay_retries must be a integer."}',
 '{"title": "Invalid API request", "description": "Retry policy: maximum_delay_retries must be a integer."}',
 '{"title": "Invalid API request", "description": "retry_backoff_function must be a string."}',
 '{"title": "Invalid API request", "description": "invalid retry_backoff_function."}',
 '{"title": "Invalid API request", "description": "ignore_subscription_override must be a boolean."}',
 '{"title": "Invalid API request", "description": "minimum_delay must less than maximum_delay."}',
 '{"title": "Invalid API request", "description": "invalid minimum_delay and maximum_delay."}',
 '{"title": "Invalid API request", "description": "Retry policy: minimum_delay must be a integer."}',
 '{"title": "Invalid API request", "description": "_default_message_ttl can not exceed 1209600 seconds, and must be at least 60 seconds long."}',
 '', '', '']



=== TEST 22: ... PATCH of a queue: the same checks on the metadata the patch makes (Zaqar's "Invalid request body")
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
Content-Type: application/openstack-messaging-v2.0-json-patch
--- request eval
['PATCH /v2/queues/rp
[{"op": "replace", "path": "/metadata/_retry_policy", "value": {"minimum_delay": 29}}]',
 'PATCH /v2/queues/rp
[{"op": "add", "path": "/metadata/_retry_policy", "value": {"retry_backoff_function": "linear", "maximum_delay": 60}}]']
--- error_code eval
[400, 200]
--- response_body_like eval
['^\{"title": "Invalid request body", "description": "invalid minimum_delay and maximum_delay."\}$',
 '"_retry_policy": \{"retry_backoff_function": "linear", "maximum_delay": 60\}']



=== TEST 23: mk is the queue's last marker when the subscription is made (3 messages posted: 3)
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['POST /v2/queues/counted/messages
{"messages": [{"body": 1}, {"body": 2}]}',
 'POST /v2/queues/counted/messages
{"messages": [{"body": 3}]}',
 'GET /v2/queues/counted/messages?echo=true&limit=1',
 'POST /v2/queues/counted/subscriptions
{"subscriber": "http://127.0.0.1:9/counted"}']
--- error_code eval
[201, 201, 200, 201]
--- response_body_like eval
['resources', 'resources', 'messages', 'subscription_id']



=== TEST 24: ... in the store
--- init
Test::More::like(main::docs('counted'), qr/"mk": 3, "mo": "(?:|[0-9a-f]{24})", "ml": \d+, /, 'TEST 24: mk 3');
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204



=== TEST 25: msgbus_default_subscription_ttl gives the ttl of a POST without one
--- config
    location / { msgbus; msgbus_default_subscription_ttl 120s; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['POST /v2/queues/short/subscriptions
{"subscriber": "http://127.0.0.1:9/short"}']
--- error_code: 201
--- response_body_like chomp
subscription_id



=== TEST 26: ... in the store: t 120, e 120 s ahead
--- init
Test::More::like(main::docs('short'), qr/"t": 120, .*"e_in": (11\d|120)\}$/, 'TEST 26: ttl 120');
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204



=== TEST 27: msgbus_subscription_confirmation off (the default): an unsubscription sends nothing
--- config
    location / { msgbus; msgbus_signed_url_key "k3y"; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request
PUT /v2/queues/unsub/subscriptions/@u0@/confirm
{"confirmed": false}
--- error_code: 204
--- no_error_log
msgbus subscriptions: confirmation to
[error]



=== TEST 28: confirmation on, no msgbus_signed_url_key: logged as Zaqar logs it, nothing sent, the answer as always
--- http_config
    msgbus_mongodb "$TEST_NGINX_MONGODB_URI";
    msgbus_subscription_confirmation on;
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request
PUT /v2/queues/unsub/subscriptions/@u0@/confirm
{"confirmed": false}
--- error_code: 204
--- error_log
cannot send the confirmation of a subscription: msgbus_signed_url_key is not set
--- no_error_log
msgbus subscriptions: confirmation to



=== TEST 29: confirmation on: Zaqar's messages, signed as python3-zaqar signs them, and their signed URLs confirm (t/util/subscription_confirm.py)
--- http_config
    msgbus_mongodb "$TEST_NGINX_MONGODB_URI";
    msgbus_subscription_confirmation on;
--- config
    location / { msgbus; msgbus_signed_url_key "k3y"; }
    location = /verdict { root html; }
--- init
my $log = ($ENV{TEST_NGINX_SERVROOT} || 't/servroot') . '/logs/error.log';
Msgbus::Test::script('t/util/subscription_confirm.py',
                     'http://127.0.0.1:' . Test::Nginx::Socket::server_port(),
                     $ENV{TEST_NGINX_PROJECT}, $log, 'k3y', 'notified', $main::Id{n0});
--- request
GET /verdict
--- response_body
ok - unsubscribe: 204
ok - unsubscribe: the message is handed over
ok - unsubscribe: Zaqar's fields in Zaqar's order
ok - unsubscribe: type, text, method, path, project, bodies
ok - unsubscribe: the URL expires after the ttl
ok - unsubscribe: python3-zaqar's signature
ok - unsubscribe: an altered signature is refused
ok - unsubscribe: the signed URL confirms
ok - unsubscribe: confirmed
ok - unsubscribe: msgbus's query arguments sign it too
ok - subscribe: 201
ok - subscribe: the message is handed over
ok - subscribe: Zaqar's fields in Zaqar's order
ok - subscribe: type, text, method, path, project, bodies
ok - subscribe: the URL expires after the ttl
ok - subscribe: python3-zaqar's signature
ok - subscribe: an altered signature is refused
ok - subscribe: the signed URL confirms
ok - subscribe: confirmed
ok - the scenario runs to its end without an error
