# Zaqar's pre-signed URLs: POST /v2/queues/{name}/share signs a queue's
# paths and methods until an expiry with "msgbus_signed_url_key" (Zaqar's
# [signed_url] secret_key), as zaqar/common/urls.py signs; a request
# carrying the signature (the URL-* headers, or msgbus's query arguments)
# is checked first, as Zaqar's first hook checks it, and refused with 404
# (a method or path not signed, an expiry past, a signature that does not
# hold, no key); Client-ID and the project are still required.  The key
# never reaches the error log.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;
use Digest::SHA qw(hmac_sha256_hex);
use POSIX qw(strftime);
use File::Temp qw(tempfile);

$ENV{TEST_NGINX_PROJECT} = "t015-$$-" . time;
$ENV{TEST_NGINX_SIGNED_KEY} = "t015-key-$$-" . time;

# the key in a file of its own (removed at the end), with a line end
my ($kfh, $kfile) = tempfile('t015-key-XXXXXX', TMPDIR => 1, UNLINK => 1);
print $kfh "$ENV{TEST_NGINX_SIGNED_KEY}\n";
close $kfh;
$ENV{TEST_NGINX_KEY_FILE} = $kfile;

sub err { Msgbus::Test::err(@_) }

our $Project = $ENV{TEST_NGINX_PROJECT};
our $Key = $ENV{TEST_NGINX_SIGNED_KEY};
our $Headers = "Client-ID: $Msgbus::Test::ClientId\n"
               . "X-Project-ID: $Project\n"
               . "Content-Type: application/json";
our $NotFound = '{"title": "404 Not Found"}';

# Zaqar's signature: paths, methods, project and expiry joined by the
# two characters "\n" (a raw string in Zaqar), HMAC-SHA256 in hex
sub signature {
    my ($key, $paths, $methods, $project, $expires) = @_;
    my $body = join('\n', join(',', sort @$paths), join(',', sort @$methods),
                    $project, $expires);
    return hmac_sha256_hex($body, $key);
}

sub at { strftime('%Y-%m-%dT%H:%M:%S', gmtime(time + $_[0])) }

# the URL-* headers of a signature of $paths and $methods
sub signed {
    my ($paths, $methods, %o) = @_;
    my $expires = $o{expires} // at(3600);
    my $sig = $o{signature}
              // signature($o{key} // $Key, $paths, $methods,
                           $o{project} // $Project, $expires);
    return "URL-Signature: $sig\nURL-Expires: $expires\n"
           . 'URL-Methods: ' . join(',', @$methods) . "\n"
           . 'URL-Paths: ' . join(',', @$paths);
}

sub verdict {
    my $url = 'http://127.0.0.1:' . Test::Nginx::Socket::server_port();
    Msgbus::Test::script('t/util/signed_urls.py', $url, $Project, $Key);
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: share, checked with Zaqar's own code; signed posts and reads by headers, by query arguments and through python3-zaqarclient; refusals; the key never logged
--- config
    msgbus_signed_url_key $TEST_NGINX_SIGNED_KEY;
    location / { msgbus; }
    location = /verdict { root html; }
--- init
main::verdict();
--- request
GET /verdict
--- response_body
ok - share answers 200 with paths, methods, project, expires, signature
ok - share signs as Zaqar signs (zaqar.common.urls)
ok - share without paths or methods: messages and GET, a day ahead
ok - share of an expiry with a zone: written in UTC as Zaqar writes it
ok - a signed POST of messages without other credentials: 201
ok - a signed GET of messages: 200 with the posted message
ok - a signed GET of one message (a path below the signed one): 200
ok - the signature as query arguments (msgbus): 200
ok - a method not signed: 404
ok - a path not signed: 404
ok - another project: 404
ok - zaqarclient: queue.signed_url() signs as Zaqar signs
ok - zaqarclient: a signed-url client posts and lists
ok - expiry forms read as Zaqar reads them (iso8601, int(), the past)
--- no_error_log eval
["[error]", $main::Key]



=== TEST 2: share's refusals, Zaqar's 400 "Invalid API request" (an empty body: "Invalid request body")
--- config
    msgbus_signed_url_key $TEST_NGINX_SIGNED_KEY;
    location / { msgbus; }
--- more_headers eval
$main::Headers
--- request eval
["POST /v2/queues/q/share\n{\"paths\": [\"messages\"], \"ttl\": 5}",
 "POST /v2/queues/q/share\n{\"paths\": [\"messages\", \"stats\", \"stats\"]}",
 "POST /v2/queues/q/share\n{\"methods\": \"GET\"}",
 "POST /v2/queues/q/share\n{\"expires\": \"2030\"}",
 "POST /v2/queues/q/share\n{\"expires\": 1893456000}",
 "POST /v2/queues/q/share\n{\"expires\": \"2016-01-01T00:00:00\"}",
 "POST /v2/queues/q/share\n{\"expires\": \"tomorrow\"}",
 "POST /v2/queues/q/share\n{\"expires\": \"2030-02-30T00:00:00\"}",
 "POST /v2/queues/q/share"]
--- error_code eval
[(400) x 9]
--- response_body eval
[main::err('Invalid API request', "Unknown keys: {'ttl'}"),
 main::err('Invalid API request', "Invalid paths: {'stats'}"),
 main::err('Invalid API request', '`methods` should be a list'),
 main::err('Invalid API request', '`expires` should be date format, for example 2016-01-01T00:00:00, not integer value: 2030'),
 main::err('Invalid API request', '`expires` should be date format, for example 2016-01-01T00:00:00, not integer value: 1893456000'),
 main::err('Invalid API request', '`expires` is lower than the current time'),
 main::err('Invalid API request', "Unable to parse date string 'tomorrow'"),
 main::err('Invalid API request', "Unable to parse date string '2030-02-30T00:00:00'"),
 main::err('Invalid request body', 'Request body can not be empty')]



=== TEST 3: no msgbus_signed_url_key: share answers Zaqar's 400, a signed request 404
--- config
    location / { msgbus; }
--- more_headers eval
[$main::Headers, $main::Headers . "\n"
 . main::signed(['/v2/queues/q/messages'], ['GET'])]
--- request eval
["POST /v2/queues/q/share\n{}", "GET /v2/queues/q/messages"]
--- error_code eval
[400, 404]
--- response_body eval
[main::err('Invalid API request', "The `key` can't be None"),
 $main::NotFound]



=== TEST 4: refused signed requests: 404 for an expiry past, a bad signature, no expiry, a method or path not signed, another key or project; unsigned requests pass as before
--- config
    msgbus_signed_url_key $TEST_NGINX_SIGNED_KEY;
    location / { msgbus; }
--- more_headers eval
my $m = ['/v2/queues/q/messages'];
[map { "$main::Headers\n$_" }
 main::signed($m, ['GET'], expires => main::at(-10)),
 main::signed($m, ['GET'], signature => 'ab' x 32),
 main::signed($m, ['GET']) =~ s/URL-Expires: .*\n//r,
 main::signed($m, ['POST']),
 main::signed(['/v2/queues/other/messages'], ['GET']),
 main::signed($m, ['GET'], key => 'another key'),
 main::signed($m, ['GET'], project => 'another project'),
 main::signed($m, ['get']),
 '']
--- request eval
[("GET /v2/queues/q/messages") x 9]
--- error_code eval
[(404) x 8, 200]
--- response_body eval
[($main::NotFound) x 8, '{"messages": [], "links": []}']
--- no_error_log eval
["[error]", $main::Key]



=== TEST 5: a signed request still needs Client-ID (Zaqar's hooks after the signature's), and is refused before it when the signature fails
--- config
    msgbus_signed_url_key $TEST_NGINX_SIGNED_KEY;
    location / { msgbus; }
--- more_headers eval
["X-Project-ID: $main::Project\n"
 . main::signed(['/v2/queues/q/messages'], ['GET']),
 "X-Project-ID: $main::Project\n"
 . main::signed(['/v2/queues/q/messages'], ['GET'], signature => 'x')]
--- request eval
["GET /v2/queues/q/messages", "GET /v2/queues/q/messages"]
--- error_code eval
[400, 404]
--- response_body eval
['{"title": "Missing header value", "description": "The \"Client-ID\" header is required."}',
 $main::NotFound]



=== TEST 6: the key read from a file (file:): its line end is not part of it
--- config
    msgbus_signed_url_key file:$TEST_NGINX_KEY_FILE;
    location / { msgbus; }
--- more_headers eval
"$main::Headers\n" . main::signed(['/v2/queues/q/messages'], ['GET'])
--- request
GET /v2/queues/q/messages
--- error_code: 200
--- response_body chomp
{"messages": [], "links": []}
--- no_error_log eval
["[error]", $main::Key]



=== TEST 7: msgbus_project wins: share signs the bound project, and a signed request is checked against it whatever X-Project-ID says
--- config
    msgbus_signed_url_key $TEST_NGINX_SIGNED_KEY;
    location / { msgbus; msgbus_project "bound-$TEST_NGINX_PROJECT"; }
--- more_headers eval
["$main::Headers\n"
 . main::signed(['/v2/queues/q/messages'], ['GET'],
                project => "bound-$main::Project"),
 "$main::Headers\n" . main::signed(['/v2/queues/q/messages'], ['GET'])]
--- request eval
["GET /v2/queues/q/messages", "GET /v2/queues/q/messages"]
--- error_code eval
[200, 404]
--- response_body eval
['{"messages": [], "links": []}', $main::NotFound]



=== TEST 8: a key file that cannot be read fails "nginx -t"
--- config
    msgbus_signed_url_key file:/nonexistent/t015.key;
    location / { msgbus; }
--- must_die
--- error_log
open() "/nonexistent/t015.key" failed (2: No such file or directory)



=== TEST 9: a second msgbus_signed_url_key in one context is a duplicate
--- config
    location / {
        msgbus_signed_url_key a;
        msgbus_signed_url_key b;
        msgbus;
    }
--- must_die
--- error_log
"msgbus_signed_url_key" directive is duplicate
