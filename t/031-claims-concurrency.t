# Claims under concurrency and over time, on 2 workers (t/util/claims.py,
# which prints a summary and its assertions, "ok - WHAT", each block
# listing them):
# - exclusive: 8 claimers on 2000 messages, 10 a claim (Zaqar's default),
#   claims longer than the test: each message in exactly one claim's
#   answer, and the store agrees;
# - delivery: 8 consumers that delete after processing, 1 claim in 100
#   left to expire: every message deleted once, delivered once but for
#   the abandoned claims' messages, delivered again after their end and
#   not before;
# - lifecycle: counts 1, 2, 3 across expiries, release and renew.
# msgbus_min_claim_ttl 1s lets claims end in seconds.
#
# No claim or delete may be answered 5xx: the store is up throughout.
# (claims.py --store-errors N tolerates N, for a store under failure: a
# claim answered so may have been stored, and then holds its messages
# until it ends, an orphan claim as Zaqar's driver notes, never twice.)

use lib 't/lib';
use Test::Nginx::Socket;
use Msgbus::Test;

# concurrent load means nothing under valgrind's slowdown
if ($ENV{TEST_NGINX_USE_VALGRIND}) {
    plan(skip_all => 'concurrent load, not run under valgrind');
}

plan('no_plan');

$ENV{TEST_NGINX_PROJECT} = "t031-$$-" . time;

# Each scenario's queue gets partitions of its own (database
# <db>_t031<scenario>), as in t/024, so that the stores' checks of one
# scenario read its own messages only.
for my $s (qw(exclusive delivery lifecycle)) {
    my ($base, $opts) = split /\?/, $ENV{TEST_NGINX_MONGODB_URI}, 2;
    $base =~ s{/([^/]*)$}{'/' . ($1 eq '' ? 'msgbus' : $1) . "_t031$s"}e;
    $ENV{'TEST_NGINX_' . uc($s) . '_URI'} = $base
        . (defined $opts && length $opts ? "?$opts" : '');
}

# a scenario against the block's nginx, its verdict in html/verdict
sub scenario {
    my ($name, @args) = @_;
    Msgbus::Test::script('t/util/claims.py',
        '--port', Test::Nginx::Socket::server_port(),
        '--mongodb', $ENV{'TEST_NGINX_' . uc($name) . '_URI'},
        '--project', $ENV{TEST_NGINX_PROJECT}, '--deadline', 400,
        @args, $name);
}

workers(2);
worker_connections(1024);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: exclusive: 8 claimers, 2000 messages, 10 a claim: each message in one claim, and the store agrees
--- http_config
    msgbus_mongodb "$TEST_NGINX_EXCLUSIVE_URI";
--- config
    location / { msgbus; }
    location = /verdict { root html; }
--- log_level: warn
--- init
main::scenario('exclusive', '--limit', 10);
--- request
GET /verdict
--- response_body
ok - no message in two claims
ok - claims hold only posted messages
ok - claims answered 201 or 204 (or 5xx)
ok - at most --store-errors claims answered 5xx
ok - the store holds every posted message
ok - every message in a claim answered (but after store errors)
ok - no message held by a claim whose answer left it out
ok - no claim nobody was answered (but after store errors)
ok - the store holds each message's claim, its count 1



=== TEST 2: delivery: 8 consumers delete what they claim but 1 claim in 100: at least once, again only after an abandoned claim's end
--- http_config
    msgbus_mongodb "$TEST_NGINX_DELIVERY_URI";
    msgbus_expiry_purge_interval 1s;
--- config
    location / { msgbus; msgbus_min_claim_ttl 1s; msgbus_min_claim_grace 0; }
    location = /verdict { root html; }
--- log_level: warn
--- init
main::scenario('delivery');
--- request
GET /verdict
--- response_body
ok - claims answered 201 or 204 (or 5xx)
ok - at most --store-errors claims and deletes answered 5xx
ok - deletes answered 204 (or 5xx)
ok - every message deleted once
ok - a message delivered again only in a new claim after its abandoned claim ended
ok - no message last delivered in an abandoned claim
ok - some claims were abandoned
ok - no message left in the store



=== TEST 3: lifecycle: one message's claims of 2 s: counts across expiries, a held message, release, renew
--- http_config
    msgbus_mongodb "$TEST_NGINX_LIFECYCLE_URI";
--- config
    location / { msgbus; msgbus_min_claim_ttl 1s; msgbus_min_claim_grace 0; }
    location = /verdict { root html; }
--- log_level: warn
--- init
main::scenario('lifecycle');
--- request
GET /verdict
--- response_body
ok - claim 1
ok - claim count after claim 1
ok - a claim while it is held
ok - claim 2
ok - claim count after claim 2
ok - claim 3
ok - claim count after claim 3
ok - claim 4
ok - claim count after claim 4
ok - release
ok - a claim right after the release
ok - claim count after the release and a claim
ok - renew
ok - a claim after the first end of a renewed claim
ok - the renewed claim
ok - the renewed claim after its end
ok - a claim after the renewed claim ended
ok - claim count at the end (kept by renew and release)
