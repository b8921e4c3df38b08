# The real Zaqar client, Debian's python3-zaqarclient (API v2, noauth),
# runs a whole scenario against msgbus: a queue with metadata, a message
# and a batch, a listing walked page by page through its "next" links,
# messages by ids and one by one, deletes, pop, stats, claims (claim,
# read, renew, delete with the claim id and refused without, release)
# and the queue's deletion (t/util/zaqarclient_scenario.py, which prints
# OK or the
# traceback of the first thing that went wrong).
#
# "--- init" runs once nginx has started (both runners), so the script is
# run from there against the block's nginx.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;

$ENV{TEST_NGINX_PROJECT} = "t023-$$-" . time;

# the scenario's output, with its errors
sub zaqarclient {
    my ($project) = @_;
    my $url = 'http://127.0.0.1:' . Test::Nginx::Socket::server_port();
    system('/usr/bin/python3', '-c', 'import zaqarclient') == 0
        or return "python3-zaqarclient is missing: make deps installs it\n";
    return scalar `/usr/bin/python3 t/util/zaqarclient_scenario.py '$url' '$project' 2>&1`;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: python3-zaqarclient's scenario passes against msgbus
--- config
    location / { msgbus; }
--- init
$main::Passed = Test::More::is(main::zaqarclient($ENV{TEST_NGINX_PROJECT}),
                               "OK\n", 'TEST 1: the zaqarclient scenario prints OK');
--- request
GET /v2/ping
--- error_code: 204



=== TEST 2: ... and again on the same project: the deleted queue starts afresh
(only after a first run that deleted it)
--- init
SKIP: {
    Test::More::skip('TEST 2: the first run failed', 1) unless $main::Passed;
    Test::More::is(main::zaqarclient($ENV{TEST_NGINX_PROJECT}), "OK\n",
                   'TEST 2: the zaqarclient scenario prints OK a second time');
}
--- request
GET /v2/ping
--- error_code: 204
