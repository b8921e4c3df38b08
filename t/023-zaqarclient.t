# The real Zaqar client, Debian's python3-zaqarclient (API v2, noauth),
# runs a whole scenario against msgbus (t/util/zaqarclient_scenario.py):
# a queue with metadata, a message and a batch, a listing walked page by
# page through its "next" links, messages by ids and one by one, deletes,
# pop, stats, claims (claim, read, renew, delete with the claim id and
# refused without, release), subscriptions (made, made again, listed page
# by page, updated, deleted, purged) and the queue's deletion.  The
# script prints each assertion, "ok - WHAT", and stops at the first that
# fails ("not ok - WHAT", with what it got); each block lists them all.
# Its subscribers are http URLs: they need the webhooks' URL parser
# (adapter/ngx_http_msgbus_hook_http.c).
#
# "--- init" runs once nginx has started (both runners), so the script is
# run from there against the block's nginx (Msgbus::Test::script).

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;

$ENV{TEST_NGINX_PROJECT} = "t023-$$-" . time;

# the scenario against the block's nginx, its verdict in html/verdict
sub zaqarclient {
    my $url = 'http://127.0.0.1:' . Test::Nginx::Socket::server_port();
    system('/usr/bin/python3', '-c', 'import zaqarclient') == 0
        or Test::More::diag("python3-zaqarclient is missing: make deps installs it");
    Msgbus::Test::script('t/util/zaqarclient_scenario.py', $url,
                         $ENV{TEST_NGINX_PROJECT});
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: python3-zaqarclient: a queue's metadata, posts, a paged listing, reads, deletes, pop, stats, claims, subscriptions, the queue's deletion
--- config
    location / { msgbus; }
    location = /verdict { root html; }
--- init
main::zaqarclient();
--- request
GET /verdict
--- response_body
ok - metadata description after the patch
ok - metadata owner after the patch
ok - metadata limits after the patch
ok - reserved default ttl
ok - replaced metadata
ok - added metadata
ok - removed metadata is gone
ok - metadata read back
ok - the queue is listed once
ok - listed metadata
ok - one resource for one message
ok - resource href
ok - resources of the batch
ok - distinct ids
ok - ids in posting order, each once
ok - bodies in posting order
ok - each message's ttl
ok - each message's age, under 2 minutes
ok - each message's href
ok - pages fetched through "next" links
ok - a listing with the default limit
ok - no echo: own messages hidden
ok - another client sees them without echo
ok - another project sees nothing
ok - messages by ids
ok - one message
ok - href of one message
ok - a deleted message is gone
ok - listing after the deletes
ok - stats counts
ok - oldest message
ok - newest message
ok - popped messages
ok - pop takes the oldest
ok - listing after the pop
ok - stats after the pop
ok - messages left to claim
ok - a claim takes the oldest
ok - the claim id in the claimed messages' hrefs
ok - the claimed messages' bodies
ok - the claim read
ok - the claim's ttl
ok - the claim's age
ok - claimed messages are not listed
ok - include_claimed lists them
ok - stats of a claim
ok - a second claim takes the rest
ok - nothing left to claim
ok - the renewed claim's ttl
ok - a claimed message is not deleted without its claim id
ok - a message deleted with its claim id is gone
ok - the claim after one of its messages was deleted
ok - a released claim is gone
ok - a released message, claimed
ok - a subscription made
ok - the subscription read back
ok - made again before it is confirmed: the same subscription
ok - the subscriptions listed, page by page
ok - subscription pages fetched through "next" links
ok - the queue's subscriptions
ok - the updated subscription
ok - another project sees no subscription
ok - a deleted subscription is gone
ok - the subscriptions after the deletion
ok - a purge of subscriptions
ok - the deleted queue is not listed
ok - stats of the deleted queue
ok - messages of the deleted queue
ok - a message of the deleted queue is gone
ok - the scenario runs to its end without an error



=== TEST 2: ... the same scenario again on the same project: the deleted queue starts afresh
(every line "ok - ...": each assertion TEST 1 lists holds again, as the
scenario stops at the first that does not, and it ran to its end)
--- init
main::zaqarclient();
--- request
GET /verdict
--- response_body_like chomp
\Aok - metadata description after the patch\n(?:ok - [^\n]*\n)*ok - the scenario runs to its end without an error\n\z
