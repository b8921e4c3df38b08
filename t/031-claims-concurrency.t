# Claims under concurrency and over time, on 2 workers (t/util/claims.py,
# which prints a summary and OK or the failures):
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

sub scenario {
    my ($name, @args) = @_;
    my $uri = $ENV{'TEST_NGINX_' . uc($name) . '_URI'};
    my $out = `/usr/bin/python3 t/util/claims.py --port ${\ Test::Nginx::Socket::server_port()} --mongodb '$uri' --project '$ENV{TEST_NGINX_PROJECT}' --deadline 400 @args $name 2>&1`;
    my ($summary) = $out =~ /^($name: .*)$/m;
    Test::More::note($summary // $out);
    Test::More::ok($? == 0 && $out =~ /^OK$/m, "$name: the claims hold")
        or Test::More::diag($out);
}

workers(2);
worker_connections(1024);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: exclusive: 8 claimers, 2000 messages, no message in two claims
--- http_config
    msgbus_mongodb "$TEST_NGINX_EXCLUSIVE_URI";
--- config
    location / { msgbus; }
--- log_level: warn
--- init
main::scenario('exclusive', '--limit 10');
--- request
GET /v2/ping
--- error_code: 204



=== TEST 2: delivery: at least once, again only after an abandoned claim's end
--- http_config
    msgbus_mongodb "$TEST_NGINX_DELIVERY_URI";
    msgbus_expiry_purge_interval 1s;
--- config
    location / { msgbus; msgbus_min_claim_ttl 1s; msgbus_min_claim_grace 0; }
--- log_level: warn
--- init
main::scenario('delivery');
--- request
GET /v2/ping
--- error_code: 204



=== TEST 3: lifecycle: counts across expiries, release, renew
--- http_config
    msgbus_mongodb "$TEST_NGINX_LIFECYCLE_URI";
--- config
    location / { msgbus; msgbus_min_claim_ttl 1s; msgbus_min_claim_grace 0; }
--- log_level: warn
--- init
main::scenario('lifecycle');
--- request
GET /v2/ping
--- error_code: 204
