# A store Zaqar wrote: messages posted by Zaqar's own MongoDB driver
# (Debian's python3-zaqar, Zaqar 15, through t/util/mongo.py) are listed,
# fetched, deleted, popped and counted by msgbus, their BSON bodies
# rendered as Zaqar renders them; msgbus's markers continue above Zaqar's
# and Zaqar's above msgbus's; Zaqar's driver reads what msgbus wrote; and
# concurrent posts get distinct markers on the indexes Zaqar created.
# Blocks 15-22: the same with Zaqar's mongodb.fifo driver, whose message
# databases msgbus_message_collections fifo names (expiry purge included),
# and in blocks 25-26 its dead-letter move.
# Blocks 23-24: Zaqar's own GET /v2/queues and msgbus's list the same
# queues for the same metadata filters.  Blocks 27-31: subscriptions
# Zaqar's SubscriptionController makes, msgbus shows as the controller
# does, and the other way round.
#
# The blocks use a database of their own, which Zaqar's driver creates
# first (collections and indexes), as in a deployment msgbus takes over
# from Zaqar.
#
# Message ids are only known once Zaqar's driver has posted, so the
# sections below hold placeholders, filled in just before their block
# runs: @m0@ ... the ids of the messages Zaqar posted (in order), @z9@ the
# one it posts later, @project@ the project.  In "response_body_like" the
# text is matched literally from start to end, with @age@ (a number),
# @created@ (a date) and @id@ (any message id) as the only patterns, but
# for the values of %Id named zre_*: patterns (zaqar_like) of what Zaqar's
# SubscriptionController returned.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;

$ENV{TEST_NGINX_PROJECT} = "t025-$$-" . time;

($ENV{TEST_NGINX_ZAQAR_URI} = $ENV{TEST_NGINX_MONGODB_URI})
    =~ s{^(mongodb(?:\+srv)?://[^/?]+)(?:/([^?]*))?}{"$1/" . ($2 || 'zaqar') . "_t025_$$"}e
    or die "cannot read the database of $ENV{TEST_NGINX_MONGODB_URI}";

# a database where only the expiry blocks write
($ENV{TEST_NGINX_PURGE_URI} = $ENV{TEST_NGINX_ZAQAR_URI})
    =~ s{^(mongodb(?:\+srv)?://[^/?]+)/([^?]*)}{$1/$2p};

# Zaqar's client; msgbus's requests come from 3381af92-... (Msgbus::Test)
our $Zaqar = '8f2a7a3e-2b9e-11e3-b191-71861300734c';

# what Zaqar's driver posts; every BSON type a JSON body maps to
our $Messages = <<'EOF';
[{"ttl": 300, "body": {"dict": {"nested": [1, 2.5, {"deep": [true, null, "x"]}], "empty": {}, "list": []}, "flag": false}},
 {"ttl": 300, "body": "ünïcødé ✓ 😀 \"q\" \\ \n\t\u0001 </script>"},
 {"ttl": 300, "body": 42},
 {"ttl": 300, "body": 1099511627776},
 {"ttl": 300, "body": -3.25},
 {"ttl": 300, "body": 0.1},
 {"ttl": 300, "body": true},
 {"ttl": 300, "body": null},
 {"ttl": 300, "body": [1, "two", {"three": 3.0}]}]
EOF

our %Id;

sub mongo { Msgbus::Test::mongo($ENV{TEST_NGINX_ZAQAR_URI}, @_) }

# $n single-message posts to $queue, all sent before any answer is read;
# returns {status => count}
sub post_burst {
    my ($queue, $n) = @_;
    my @socks;
    for my $i (1 .. $n) {
        my $body = qq({"messages": [{"body": $i, "ttl": 300}]});
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => Test::Nginx::Socket::server_port())
            or die "cannot connect to nginx: $!";
        print $s "POST /v2/queues/$queue/messages HTTP/1.0\r\n"
            . "Host: localhost\r\nClient-ID: $Msgbus::Test::ClientId\r\n"
            . "X-Project-ID: $ENV{TEST_NGINX_PROJECT}\r\n"
            . "Content-Type: application/json\r\n"
            . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
        push @socks, $s;
    }
    my %status;
    for my $s (@socks) {
        my $answer = do { local $/; <$s> } // '';
        my ($code) = $answer =~ m{^HTTP/1\.\d (\d+)};
        $status{$code // 0}++;
    }
    return \%status;
}

sub fill {
    my ($text, $like) = @_;

    return [map { fill($_, $like) } @$text] if ref $text eq 'ARRAY';

    my %any = (age => '\d+', id => '[0-9a-f]{24}',
               created => '\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ');
    my $value = sub {
        my ($name) = @_;
        return $ENV{TEST_NGINX_PROJECT} if $name eq 'project';
        return $Id{$name} // "<no $name>" unless $any{$name};
        die "\@$name\@ is only for response_body_like" unless $like;
        return $any{$name};
    };

    return $text =~ s/\@(\w+)\@/$value->($1)/ger unless $like;

    $text =~ s/\s+\z//;
    my @parts = split /\@(\w+)\@/, $text, -1;
    my $re = '';
    while (@parts) {
        $re .= quotemeta shift @parts;
        $re .= $value->(shift @parts) if @parts;
    }
    return "\\A$re\\z";
}

# what Zaqar's controller printed (t/util/mongo.py zaqar-subscription, its
# "age" as N) as a pattern: the same text, any age
sub zaqar_like {
    my ($text) = @_;
    return join '"age": \d+', map { quotemeta } split /"age": N/, $text, -1;
}

# Zaqar's page of a queue's subscriptions as its GET answers it
# (its next link: the path, $query, the marker)
sub zaqar_page {
    my ($queue, $query, @lines) = @_;
    my ($marker) = (pop @lines) =~ /^marker: (\w+)$/;
    return quotemeta('{"subscriptions": [], "links": []}') unless @lines;
    return quotemeta('{"subscriptions": [') . join(quotemeta(', '),
           map { zaqar_like($_) } @lines)
           . quotemeta("], \"links\": [{\"rel\": \"next\", \"href\": "
                       . "\"/v2/queues/$queue/subscriptions?${query}marker="
                       . "$marker\"}]}");
}

add_block_preprocessor(sub {
    my $block = shift;
    for my $section (qw(request more_headers response_body
                        response_body_like)) {
        next unless $block->can($section) && defined $block->$section;
        $block->set_value($section, fill($block->$section,
                                         $section eq 'response_body_like'));
    }
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: Zaqar's driver creates a queue with metadata and posts 9 messages
--- http_config
    msgbus_mongodb "$TEST_NGINX_ZAQAR_URI";
--- config
    location / { msgbus; }
    location = /verdict { root html; }
--- init
main::mongo('drop-databases');
main::mongo('zaqar-create', $ENV{TEST_NGINX_PROJECT}, 'interop',
            '{"from": "zaqar", "n": [1, 2]}');
my @ids = split /\n/, main::mongo('zaqar-post', $ENV{TEST_NGINX_PROJECT},
                                  'interop', $main::Zaqar, $main::Messages);
Test::More::is(scalar @ids, 9, 'TEST 1: Zaqar posted 9 messages');
@main::Id{map { "m$_" } 0 .. $#ids} = @ids;
Test::More::is(main::mongo('markers', $ENV{TEST_NGINX_PROJECT}, 'interop'),
               '1 2 3 4 5 6 7 8 9', "TEST 1: Zaqar's markers");
Test::More::is(main::mongo('counter', $ENV{TEST_NGINX_PROJECT}, 'interop'),
               10, "TEST 1: Zaqar's counter");
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request
GET /v2/queues/interop
--- error_code: 200
--- response_body chomp
{"from": "zaqar", "n": [1, 2], "_max_messages_post_size": 262144, "_default_message_ttl": 3600, "_default_message_delay": 0, "_dead_letter_queue": null, "_dead_letter_queue_messages_ttl": null, "_max_claim_count": null, "_enable_encrypt_messages": false}



=== TEST 2: GET messages, echo: Zaqar's bodies as Zaqar renders them
--- more_headers
Client-ID: 8f2a7a3e-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request
GET /v2/queues/interop/messages?echo=true&limit=20
--- error_code: 200
--- response_body_like
{"messages": [{"id": "@m0@", "href": "/v2/queues/interop/messages/@m0@", "ttl": 300, "age": @age@, "body": {"dict": {"nested": [1, 2.5, {"deep": [true, null, "x"]}], "empty": {}, "list": []}, "flag": false}}, {"id": "@m1@", "href": "/v2/queues/interop/messages/@m1@", "ttl": 300, "age": @age@, "body": "ünïcødé ✓ 😀 \"q\" \\ \n\t\u0001 </script>"}, {"id": "@m2@", "href": "/v2/queues/interop/messages/@m2@", "ttl": 300, "age": @age@, "body": 42}, {"id": "@m3@", "href": "/v2/queues/interop/messages/@m3@", "ttl": 300, "age": @age@, "body": 1099511627776}, {"id": "@m4@", "href": "/v2/queues/interop/messages/@m4@", "ttl": 300, "age": @age@, "body": -3.25}, {"id": "@m5@", "href": "/v2/queues/interop/messages/@m5@", "ttl": 300, "age": @age@, "body": 0.1}, {"id": "@m6@", "href": "/v2/queues/interop/messages/@m6@", "ttl": 300, "age": @age@, "body": true}, {"id": "@m7@", "href": "/v2/queues/interop/messages/@m7@", "ttl": 300, "age": @age@, "body": null}, {"id": "@m8@", "href": "/v2/queues/interop/messages/@m8@", "ttl": 300, "age": @age@, "body": [1, "two", {"three": 3.0}]}], "links": [{"rel": "next", "href": "/v2/queues/interop/messages?limit=20&echo=true&marker=9"}]}



=== TEST 3: without echo, Zaqar's client does not see the messages it posted (u, a UUID)
--- more_headers
Client-ID: 8f2a7a3e2b9e11e3b19171861300734c
X-Project-ID: @project@
--- request
GET /v2/queues/interop/messages?limit=4
--- error_code: 200
--- response_body chomp
{"messages": [], "links": []}



=== TEST 4: another client pages through them on Zaqar's markers
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['GET /v2/queues/interop/messages?limit=4',
 'GET /v2/queues/interop/messages?limit=4&marker=4',
 'GET /v2/queues/interop/messages?limit=4&marker=8',
 'GET /v2/queues/interop/messages?limit=4&marker=9']
--- error_code eval
[200, 200, 200, 200]
--- response_body_like eval
['{"messages": [{"id": "@m0@", "href": "/v2/queues/interop/messages/@m0@", "ttl": 300, "age": @age@, "body": {"dict": {"nested": [1, 2.5, {"deep": [true, null, "x"]}], "empty": {}, "list": []}, "flag": false}}, {"id": "@m1@", "href": "/v2/queues/interop/messages/@m1@", "ttl": 300, "age": @age@, "body": "ünïcødé ✓ 😀 \"q\" \\\\ \n\t\u0001 </script>"}, {"id": "@m2@", "href": "/v2/queues/interop/messages/@m2@", "ttl": 300, "age": @age@, "body": 42}, {"id": "@m3@", "href": "/v2/queues/interop/messages/@m3@", "ttl": 300, "age": @age@, "body": 1099511627776}], "links": [{"rel": "next", "href": "/v2/queues/interop/messages?limit=4&marker=4"}]}',
 '{"messages": [{"id": "@m4@", "href": "/v2/queues/interop/messages/@m4@", "ttl": 300, "age": @age@, "body": -3.25}, {"id": "@m5@", "href": "/v2/queues/interop/messages/@m5@", "ttl": 300, "age": @age@, "body": 0.1}, {"id": "@m6@", "href": "/v2/queues/interop/messages/@m6@", "ttl": 300, "age": @age@, "body": true}, {"id": "@m7@", "href": "/v2/queues/interop/messages/@m7@", "ttl": 300, "age": @age@, "body": null}], "links": [{"rel": "next", "href": "/v2/queues/interop/messages?marker=8&limit=4"}]}',
 '{"messages": [{"id": "@m8@", "href": "/v2/queues/interop/messages/@m8@", "ttl": 300, "age": @age@, "body": [1, "two", {"three": 3.0}]}], "links": [{"rel": "next", "href": "/v2/queues/interop/messages?marker=9&limit=4"}]}',
 '{"messages": [], "links": []}']



=== TEST 5: GET ?ids= (in marker order) and GET /messages/{id}
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['GET /v2/queues/interop/messages?ids=@m5@,@m1@',
 'GET /v2/queues/interop/messages/@m0@']
--- error_code eval
[200, 200]
--- response_body_like eval
['{"messages": [{"id": "@m1@", "href": "/v2/queues/interop/messages/@m1@", "ttl": 300, "age": @age@, "body": "ünïcødé ✓ 😀 \"q\" \\\\ \n\t\u0001 </script>"}, {"id": "@m5@", "href": "/v2/queues/interop/messages/@m5@", "ttl": 300, "age": @age@, "body": 0.1}]}',
 '{"id": "@m0@", "href": "/v2/queues/interop/messages/@m0@", "ttl": 300, "age": @age@, "body": {"dict": {"nested": [1, 2.5, {"deep": [true, null, "x"]}], "empty": {}, "list": []}, "flag": false}}']



=== TEST 6: DELETE /messages/{id} removes Zaqar's message
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['DELETE /v2/queues/interop/messages/@m0@',
 'GET /v2/queues/interop/messages/@m0@']
--- error_code eval
[204, 404]
--- response_body eval
['',
 '{"title": "Not found", "description": "Message @m0@ does not exist in queue interop for project @project@"}']



=== TEST 7: ... it is gone from the store; the stats count the 8 left
--- init
Test::More::is(main::mongo('count-messages', $ENV{TEST_NGINX_PROJECT}, 'interop'),
               8, 'TEST 7: 8 messages in the store');
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request
GET /v2/queues/interop/stats
--- error_code: 200
--- response_body_like
{"messages": {"claimed": 0, "free": 8, "total": 8, "oldest": {"age": @age@, "created": "@created@", "href": "/v2/queues/interop/messages/@m1@"}, "newest": {"age": @age@, "created": "@created@", "href": "/v2/queues/interop/messages/@m8@"}}}



=== TEST 8: pop takes the oldest two
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request
DELETE /v2/queues/interop/messages?pop=2
--- error_code: 200
--- response_body_like
{"messages": [{"id": "@m1@", "age": @age@, "ttl": 300, "claim_count": 0, "body": "ünïcødé ✓ 😀 \"q\" \\ \n\t\u0001 </script>", "claim_id": null}, {"id": "@m2@", "age": @age@, "ttl": 300, "claim_count": 0, "body": 42, "claim_id": null}]}



=== TEST 9: msgbus posts to Zaqar's queue
--- init
Test::More::is(main::mongo('count-messages', $ENV{TEST_NGINX_PROJECT}, 'interop'),
               6, 'TEST 9: 6 messages in the store after the pop');
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
Content-Type: application/json
--- request
POST /v2/queues/interop/messages
{"messages": [{"body": {"from": "msgbus"}, "ttl": 300}, {"body": [1, {"two": 2}], "ttl": 300}]}
--- error_code: 201
--- response_body_like
{"resources": ["/v2/queues/interop/messages/@id@", "/v2/queues/interop/messages/@id@"]}



=== TEST 10: ... above Zaqar's markers; then Zaqar's driver posts above msgbus's
--- init
Test::More::is(main::mongo('markers', $ENV{TEST_NGINX_PROJECT}, 'interop'),
               '4 5 6 7 8 9 10 11', "TEST 10: msgbus's markers follow Zaqar's");
my $counter = main::mongo('counter', $ENV{TEST_NGINX_PROJECT}, 'interop');
Test::More::cmp_ok($counter, '>=', 12, "TEST 10: msgbus moved Zaqar's counter above its markers");
($main::Id{z9}) = split /\n/, main::mongo('zaqar-post', $ENV{TEST_NGINX_PROJECT},
                                          'interop', $main::Zaqar,
                                          '[{"ttl": 300, "body": "zaqar again"}]');
Test::More::is(main::mongo('markers', $ENV{TEST_NGINX_PROJECT}, 'interop'),
               "4 5 6 7 8 9 10 11 $counter", "TEST 10: Zaqar's next marker follows msgbus's");
--- more_headers
Client-ID: 8f2a7a3e-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request
GET /v2/queues/interop/messages?marker=9
--- error_code: 200
--- response_body_like
{"messages": [{"id": "@id@", "href": "/v2/queues/interop/messages/@id@", "ttl": 300, "age": @age@, "body": {"from":"msgbus"}}, {"id": "@id@", "href": "/v2/queues/interop/messages/@id@", "ttl": 300, "age": @age@, "body": [1,{"two":2}]}], "links": [{"rel": "next", "href": "/v2/queues/interop/messages?marker=11"}]}



=== TEST 11: Zaqar's driver reads what msgbus wrote (its bodies are not Zaqar's BSON)
--- init
my @lines = split /\n/, main::mongo('zaqar-list', $ENV{TEST_NGINX_PROJECT},
                                    'interop', $main::Zaqar);
Test::More::is(scalar @lines, 9, "TEST 11: Zaqar's driver lists the 9 messages");
Test::More::note("TEST 11: Zaqar's driver reads: $_") for @lines;
Test::More::like($lines[-1], qr/"id": "\Q$main::Id{z9}\E"/,
                 "TEST 11: ... in marker order");
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request
GET /v2/queues/interop/messages/@z9@
--- error_code: 200
--- response_body_like
{"id": "@z9@", "href": "/v2/queues/interop/messages/@z9@", "ttl": 300, "age": @age@, "body": "zaqar again"}



=== TEST 12: msgbus deletes Zaqar's queue and all the messages
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request
DELETE /v2/queues/interop
--- error_code: 204



=== TEST 13: ... none is left in the store
--- init
Msgbus::Test::verdict('messages of interop in the store: '
    . main::mongo('count-messages', $ENV{TEST_NGINX_PROJECT}, 'interop'));
--- request
GET /verdict
--- response_body
messages of interop in the store: 0



=== TEST 14: concurrent posts to a queue of Zaqar's: every message its own marker
(the indexes of the partition are Zaqar's: its queue_marker is not unique)
--- init
main::mongo('zaqar-create', $ENV{TEST_NGINX_PROJECT}, 'burst', '{}');
my $status = main::post_burst('burst', 20);
Test::More::is($status->{201} // 0, 20, 'TEST 14: 20 posts answered 201');
my @k = split ' ', main::mongo('markers', $ENV{TEST_NGINX_PROJECT}, 'burst');
my %seen;
Test::More::is(scalar(grep { !$seen{$_}++ } @k), 20,
               'TEST 14: 20 distinct markers') or Test::More::diag("markers: @k");
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request
DELETE /v2/queues/burst
--- error_code: 204



=== TEST 15: Zaqar's mongodb.fifo driver posts to its own message databases (<database>_messages_fifo_p<N>); msgbus_message_collections fifo counts them
--- init
main::mongo('zaqar-create', $ENV{TEST_NGINX_PROJECT}, 'fifo', '{}');
my @ids = split /\n/, main::mongo('fifo-zaqar-post', $ENV{TEST_NGINX_PROJECT},
                                  'fifo', $main::Zaqar,
                                  '[{"ttl": 300, "body": {"fifo": 1}}, {"ttl": 300, "body": "two"}, {"ttl": 300, "body": [3]}]');
Test::More::is(scalar @ids, 3, "TEST 15: Zaqar's FIFO driver posted 3 messages");
@main::Id{map { "f$_" } 0 .. $#ids} = @ids;
Test::More::is(main::mongo('fifo-markers', $ENV{TEST_NGINX_PROJECT}, 'fifo'),
               '1 2 3', "TEST 15: in the FIFO driver's databases");
Test::More::is(main::mongo('markers', $ENV{TEST_NGINX_PROJECT}, 'fifo'),
               '', "TEST 15: none in the default driver's");
--- http_config
    msgbus_mongodb "$TEST_NGINX_ZAQAR_URI";
    msgbus_message_collections fifo;
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request
GET /v2/queues/fifo/stats
--- error_code: 200
--- response_body_like
{"messages": {"claimed": 0, "free": 3, "total": 3, "oldest": {"age": @age@, "created": "@created@", "href": "/v2/queues/fifo/messages/@id@"}, "newest": {"age": @age@, "created": "@created@", "href": "/v2/queues/fifo/messages/@id@"}}}



=== TEST 16: ... and lists them, in Zaqar's order
--- http_config
    msgbus_mongodb "$TEST_NGINX_ZAQAR_URI";
    msgbus_message_collections fifo;
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request
GET /v2/queues/fifo/messages
--- error_code: 200
--- response_body_like
{"messages": [{"id": "@f0@", "href": "/v2/queues/fifo/messages/@f0@", "ttl": 300, "age": @age@, "body": {"fifo": 1}}, {"id": "@f1@", "href": "/v2/queues/fifo/messages/@f1@", "ttl": 300, "age": @age@, "body": "two"}, {"id": "@f2@", "href": "/v2/queues/fifo/messages/@f2@", "ttl": 300, "age": @age@, "body": [3]}], "links": [{"rel": "next", "href": "/v2/queues/fifo/messages?marker=3"}]}



=== TEST 17: msgbus (fifo) posts, pops and deletes there
--- http_config
    msgbus_mongodb "$TEST_NGINX_ZAQAR_URI";
    msgbus_message_collections fifo;
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
Content-Type: application/json
--- request eval
['POST /v2/queues/fifo/messages
{"messages": [{"body": {"from": "msgbus"}, "ttl": 300}, {"body": 5, "ttl": 300}]}',
 'DELETE /v2/queues/fifo/messages?pop=1',
 'DELETE /v2/queues/fifo/messages/@f1@']
--- error_code eval
[201, 200, 204]
--- response_body_like eval
['{"resources": ["/v2/queues/fifo/messages/@id@", "/v2/queues/fifo/messages/@id@"]}',
 '{"messages": [{"id": "@f0@", "age": @age@, "ttl": 300, "claim_count": 0, "body": {"fifo": 1}, "claim_id": null}]}',
 '']



=== TEST 18: ... Zaqar's FIFO driver reads what msgbus left, in marker order; msgbus with the default names sees none of it
--- init
Test::More::is(main::mongo('fifo-markers', $ENV{TEST_NGINX_PROJECT}, 'fifo'),
               '3 4 5', 'TEST 18: the FIFO databases hold markers 3, 4 and 5');
Test::More::is(main::mongo('markers', $ENV{TEST_NGINX_PROJECT}, 'fifo'),
               '', 'TEST 18: the default databases none');
my @lines = split /\n/, main::mongo('fifo-zaqar-list', $ENV{TEST_NGINX_PROJECT},
                                    'fifo', $main::Zaqar);
Test::More::note("TEST 18: Zaqar's FIFO driver reads: $_") for @lines;
Test::More::is(scalar @lines, 3, "TEST 18: Zaqar's FIFO driver lists 3 messages");
Test::More::like($lines[0], qr/"id": "\Q$main::Id{f2}\E"/,
                 'TEST 18: ... its own first');
Test::More::like($lines[1] // '', qr/msgbus/, "TEST 18: ... then msgbus's two");
Test::More::like($lines[2] // '', qr/b'5'/, 'TEST 18: ... in marker order');
--- http_config
    msgbus_mongodb "$TEST_NGINX_ZAQAR_URI";
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request
GET /v2/queues/fifo/messages
--- error_code: 200
--- response_body chomp
{"messages": [], "links": []}



=== TEST 19: msgbus's expiry purge with msgbus_message_collections fifo deletes in the FIFO databases
(a database of its own where nothing posts: no TTL index races the purge)
--- init
Msgbus::Test::mongo($ENV{TEST_NGINX_PURGE_URI}, 'drop-databases');
Msgbus::Test::mongo($ENV{TEST_NGINX_PURGE_URI}, 'fifo-insert-messages',
                    $ENV{TEST_NGINX_PROJECT}, 'exp', 2, -120, 1);
Msgbus::Test::mongo($ENV{TEST_NGINX_PURGE_URI}, 'fifo-insert-messages',
                    $ENV{TEST_NGINX_PROJECT}, 'exp', 1, 3600, 3);
Msgbus::Test::mongo($ENV{TEST_NGINX_PURGE_URI}, 'insert-messages',
                    $ENV{TEST_NGINX_PROJECT}, 'exp', 2, -120, 1);
--- http_config
    msgbus_mongodb "$TEST_NGINX_PURGE_URI";
    msgbus_message_collections fifo;
    msgbus_expiry_purge_interval 500ms;
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204
--- wait: 1.5
--- error_log eval
qr/msgbus: expiry purge removed 2 expired messages/



=== TEST 20: ... the live one stays, the default databases are not touched
--- init
Test::More::is(Msgbus::Test::mongo($ENV{TEST_NGINX_PURGE_URI}, 'fifo-count-messages',
                                   $ENV{TEST_NGINX_PROJECT}, 'exp'),
               1, 'TEST 20: the expired messages are gone, the live one stays');
Test::More::is(Msgbus::Test::mongo($ENV{TEST_NGINX_PURGE_URI}, 'count-messages',
                                   $ENV{TEST_NGINX_PROJECT}, 'exp'),
               2, 'TEST 20: the default databases keep theirs');
Msgbus::Test::mongo($ENV{TEST_NGINX_PURGE_URI}, 'drop-databases');
--- http_config
    msgbus_mongodb "$TEST_NGINX_ZAQAR_URI";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204



=== TEST 21: msgbus (fifo) deletes the queue
--- http_config
    msgbus_mongodb "$TEST_NGINX_ZAQAR_URI";
    msgbus_message_collections fifo;
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request
DELETE /v2/queues/fifo
--- error_code: 204



=== TEST 22: ... none of its messages is left in the FIFO databases; msgbus_message_collections takes default or fifo
--- init
Test::More::is(main::mongo('fifo-count-messages', $ENV{TEST_NGINX_PROJECT}, 'fifo'),
               0, 'TEST 22: no message of fifo in the FIFO databases');
--- http_config
    msgbus_mongodb "$TEST_NGINX_ZAQAR_URI";
    msgbus_message_collections lifo;
--- config
    location / { msgbus; }
--- must_die
--- error_log
invalid value "lifo"



=== TEST 23: metadata filters on the queue listing: Zaqar's own GET /v2/queues answers (the same queues as below)
--- init
my $p = "$ENV{TEST_NGINX_PROJECT}-q";
main::mongo('zaqar-create', $p, 'q1', '{"node": 34, "env": "prod"}');
main::mongo('zaqar-create', $p, 'q2', '{"node": "34"}');
main::mongo('zaqar-create', $p, 'q3', '{"node": 34.0, "tags": ["a", "b"]}');
main::mongo('zaqar-create', $p, 'q4', '{"deep": {"x": "y"}, "flag": true}');
my %zaqar = (
 'node=34' => '{"queues": [{"name": "q1", "href": "/v2/queues/q1"}, {"name": "q3", "href": "/v2/queues/q3"}], "links": [{"rel": "next", "href": "/v2/queues?marker=q3"}]}',
 'node=%2B034%20' => '{"queues": [{"name": "q1", "href": "/v2/queues/q1"}, {"name": "q3", "href": "/v2/queues/q3"}], "links": [{"rel": "next", "href": "/v2/queues?marker=q3"}]}',
 'env=prod&node=34' => '{"queues": [{"name": "q1", "href": "/v2/queues/q1"}], "links": [{"rel": "next", "href": "/v2/queues?marker=q1"}]}',
 'tags=a' => '{"queues": [{"name": "q3", "href": "/v2/queues/q3"}], "links": [{"rel": "next", "href": "/v2/queues?marker=q3"}]}',
 'deep.x=y' => '{"queues": [{"name": "q4", "href": "/v2/queues/q4"}], "links": [{"rel": "next", "href": "/v2/queues?marker=q4"}]}',
 'flag=true' => '{"queues": [], "links": []}',
 'node=34&name=3' => '{"queues": [{"name": "q3", "href": "/v2/queues/q3"}], "links": [{"rel": "next", "href": "/v2/queues?name=3&marker=q3"}]}',
 'node=34&limit=1&with_count=true' => '{"queues": [{"name": "q1", "href": "/v2/queues/q1"}], "links": [{"rel": "next", "href": "/v2/queues?limit=1&with_count=true&marker=q1"}], "count": 4}',
);
for my $q (sort keys %zaqar) {
    Test::More::is(main::mongo('zaqar-queues', $p, $q), $zaqar{$q},
                   "TEST 23: Zaqar answers GET /v2/queues?$q");
}
--- http_config
    msgbus_mongodb "$TEST_NGINX_ZAQAR_URI";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204



=== TEST 24: ... msgbus lists the same queues (its next links keep the filters)
--- http_config
    msgbus_mongodb "$TEST_NGINX_ZAQAR_URI";
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@-q
--- request eval
['GET /v2/queues?node=34', 'GET /v2/queues?node=%2B034%20', 'GET /v2/queues?env=prod&node=34', 'GET /v2/queues?tags=a',
 'GET /v2/queues?deep.x=y', 'GET /v2/queues?flag=true', 'GET /v2/queues?node=34&name=3', 'GET /v2/queues?node=34&limit=1&with_count=true']
--- response_body eval
['{"queues": [{"name": "q1", "href": "/v2/queues/q1"}, {"name": "q3", "href": "/v2/queues/q3"}], "links": [{"rel": "next", "href": "/v2/queues?node=34&marker=q3"}]}',
 '{"queues": [{"name": "q1", "href": "/v2/queues/q1"}, {"name": "q3", "href": "/v2/queues/q3"}], "links": [{"rel": "next", "href": "/v2/queues?node=%2B034%20&marker=q3"}]}',
 '{"queues": [{"name": "q1", "href": "/v2/queues/q1"}], "links": [{"rel": "next", "href": "/v2/queues?env=prod&node=34&marker=q1"}]}',
 '{"queues": [{"name": "q3", "href": "/v2/queues/q3"}], "links": [{"rel": "next", "href": "/v2/queues?tags=a&marker=q3"}]}',
 '{"queues": [{"name": "q4", "href": "/v2/queues/q4"}], "links": [{"rel": "next", "href": "/v2/queues?deep.x=y&marker=q4"}]}',
 '{"queues": [], "links": []}',
 '{"queues": [{"name": "q3", "href": "/v2/queues/q3"}], "links": [{"rel": "next", "href": "/v2/queues?node=34&name=3&marker=q3"}]}',
 '{"queues": [{"name": "q1", "href": "/v2/queues/q1"}], "links": [{"rel": "next", "href": "/v2/queues?node=34&limit=1&with_count=true&marker=q1"}], "count": 4}']



=== TEST 25: msgbus (fifo) moves a message Zaqar's FIFO driver posted to a dead-letter queue, in the FIFO databases (a queue Zaqar created with _max_claim_count 0)
--- init
main::mongo('zaqar-create', $ENV{TEST_NGINX_PROJECT}, 'fq',
            '{"_max_claim_count": 0, "_dead_letter_queue": "fdlq", "_dead_letter_queue_messages_ttl": 600}');
main::mongo('fifo-zaqar-post', $ENV{TEST_NGINX_PROJECT}, 'fq', $main::Zaqar,
            '[{"body": {"dead": true}, "ttl": 300}]');
--- http_config
    msgbus_mongodb "$TEST_NGINX_ZAQAR_URI";
    msgbus_message_collections fifo;
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
Content-Type: application/json
--- request eval
['POST /v2/queues/fq/claims
{"ttl": 100, "grace": 60}',
 'GET /v2/queues/fdlq/messages?echo=true']
--- error_code eval
[204, 200]
--- response_body_like eval
['',
 '{"messages": [{"id": "@id@", "href": "/v2/queues/fdlq/messages/@id@", "ttl": 600, "age": @age@, "body": {"dead": true}}], "links": [{"rel": "next", "href": "/v2/queues/fdlq/messages?echo=true&marker=1"}]}']



=== TEST 26: ... the copy is in the FIFO databases, none in the default ones
--- init
Test::More::is(main::mongo('fifo-count-messages', $ENV{TEST_NGINX_PROJECT}, 'fdlq'),
               1, 'TEST 26: the copy in the FIFO databases');
Test::More::is(main::mongo('fifo-count-messages', $ENV{TEST_NGINX_PROJECT}, 'fq'),
               0, 'TEST 26: the message moved (a tombstone)');
Test::More::is(main::mongo('count-messages', $ENV{TEST_NGINX_PROJECT}, 'fdlq'),
               0, 'TEST 26: nothing in the default databases');
--- http_config
    msgbus_mongodb "$TEST_NGINX_ZAQAR_URI";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204



=== TEST 27: Zaqar's SubscriptionController makes two subscriptions and confirms one; msgbus takes its indexes
--- init
my $p = $ENV{TEST_NGINX_PROJECT};
$main::Id{z0} = main::mongo('zaqar-subscribe', $p, 'zsubs', 'http://127.0.0.1:9/z0', 600, '{"post_data": {"a": [1, 2.5, null]}}');
$main::Id{z1} = main::mongo('zaqar-subscribe', $p, 'zsubs', 'http://127.0.0.1:9/z1', 3600, '{}');
main::mongo('zaqar-subscription-confirm', $p, 'zsubs', $main::Id{z1}, 'true');
$main::Id{zre_get0} = main::zaqar_like(main::mongo('zaqar-subscription', $p, 'zsubs', $main::Id{z0}));
$main::Id{zre_get1} = main::zaqar_like(main::mongo('zaqar-subscription', $p, 'zsubs', $main::Id{z1}));
$main::Id{zre_list} = main::zaqar_page('zsubs', '', split /\n/, main::mongo('zaqar-subscriptions', $p, 'zsubs'));
$main::Id{zre_page} = main::zaqar_page('zsubs', 'limit=1&', split /\n/, main::mongo('zaqar-subscriptions', $p, 'zsubs', 1));
--- http_config
    msgbus_mongodb "$TEST_NGINX_ZAQAR_URI";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204



=== TEST 28: ... msgbus shows them as the controller returns them (GET one, the list, a page of one); it patches and deletes them
--- http_config
    msgbus_mongodb "$TEST_NGINX_ZAQAR_URI";
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['GET /v2/queues/zsubs/subscriptions/@z0@', 'GET /v2/queues/zsubs/subscriptions/@z1@',
 'GET /v2/queues/zsubs/subscriptions', 'GET /v2/queues/zsubs/subscriptions?limit=1',
 'PATCH /v2/queues/zsubs/subscriptions/@z0@
{"ttl": 900}',
 'DELETE /v2/queues/zsubs/subscriptions/@z1@']
--- error_code eval
[200, 200, 200, 200, 204, 204]
--- response_body_like eval
['@zre_get0@', '@zre_get1@', '@zre_list@', '@zre_page@', '', '']
--- no_error_log
[error]



=== TEST 29: msgbus makes two subscriptions (one confirmed) on the indexes Zaqar made
--- http_config
    msgbus_mongodb "$TEST_NGINX_ZAQAR_URI";
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['POST /v2/queues/msubs/subscriptions
{"subscriber": "http://127.0.0.1:9/m0", "ttl": 300, "options": {"post_headers": {"X-M": "0"}, "f": 0.1}}',
 'POST /v2/queues/msubs/subscriptions
{"subscriber": "https://127.0.0.1:9/m1"}']
--- error_code eval
[201, 201]
--- response_body_like eval
['{"subscription_id": "@id@"}', '{"subscription_id": "@id@"}']
--- no_error_log
[error]



=== TEST 30: ... Zaqar's controller confirms one, finds the other a duplicate, leaves msgbus's fields, and returns them
--- init
my $p = $ENV{TEST_NGINX_PROJECT};
my @ids = split /\n/, main::mongo('subscription-ids', $p, 'msubs');
Test::More::is(scalar @ids, 2, 'TEST 30: msgbus made two');
if (@ids == 2) {
    @main::Id{qw(m0 m1)} = @ids;
    main::mongo('zaqar-subscription-confirm', $p, 'msubs', $main::Id{m1}, 'true');
    $main::Id{zre_m0} = main::zaqar_like(main::mongo('zaqar-subscription', $p, 'msubs', $main::Id{m0}));
    $main::Id{zre_m1} = main::zaqar_like(main::mongo('zaqar-subscription', $p, 'msubs', $main::Id{m1}));
}
Test::More::is(main::mongo('zaqar-subscribe', $p, 'msubs', 'http://127.0.0.1:9/m0', 60, '{}'),
               'None',
               'TEST 30: Zaqar\'s create() finds msgbus\'s subscription a duplicate');
$main::Id{zre_mlist} = main::zaqar_page('msubs', '', split /\n/, main::mongo('zaqar-subscriptions', $p, 'msubs'));
Test::More::like(main::mongo('subscription-docs', $p, 'msubs'),
                 qr/"c": true, "mk": 0, "mo": "(?:|[0-9a-f]{24})", "ml": \d+, /, 'TEST 30: msgbus\'s fields kept');
--- http_config
    msgbus_mongodb "$TEST_NGINX_ZAQAR_URI";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204



=== TEST 31: ... and msgbus shows them as Zaqar's controller returned them
--- http_config
    msgbus_mongodb "$TEST_NGINX_ZAQAR_URI";
--- config
    location / { msgbus; }
--- more_headers
Client-ID: 3381af92-2b9e-11e3-b191-71861300734c
X-Project-ID: @project@
--- request eval
['GET /v2/queues/msubs/subscriptions/@m0@', 'GET /v2/queues/msubs/subscriptions/@m1@',
 'GET /v2/queues/msubs/subscriptions']
--- response_body_like eval
['@zre_m0@', '@zre_m1@', '@zre_mlist@']
--- no_error_log
[error]



=== TEST 32: the database goes
--- init
main::mongo('drop-databases');
--- request
GET /v2/ping
--- error_code: 204
