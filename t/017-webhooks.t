# Webhook delivery (Zaqar's subscriptions, zaqar/notification): after a
# post is stored, each subscriber of the queue is POSTed its messages, one
# at a time in marker order, by the worker that holds the subscription's
# lease, on Zaqar's retry policy.  The receivers are msgbus queues of the
# same nginx (t/util/webhooks.py explains how), plus a hanging socket of
# the script's own; the script's assertions are the verdict.

use lib 't/lib';
use Test::Nginx::Socket;
use Msgbus::Test;

# subscriptions: a database of its own (Msgbus::Test::own_database)
Msgbus::Test::own_database('t017');
use Msgbus::Srv;
use POSIX ();

if ($ENV{TEST_NGINX_USE_VALGRIND}) {
    plan(skip_all => 'timed deliveries, not run under valgrind');
}

plan('no_plan');

$ENV{TEST_NGINX_PROJECT} = "t017-$$-" . time;

# a certificate for 127.0.0.1, trusted as its own CA: the TLS receiver's
my $d = Msgbus::Test::tmpdir() . '/webhooks';
mkdir $d or die "mkdir $d: $!";
{
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>', "$d/openssl.log" or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(127);
        exec 'openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
             'ec_paramgen_curve:prime256v1', '-nodes',
             '-keyout', "$d/receiver.key", '-out', "$d/receiver.pem",
             '-subj', '/CN=127.0.0.1', '-days', '2',
             '-addext', 'subjectAltName=IP:127.0.0.1'
            or POSIX::_exit(127);
    }
    waitpid $pid, 0;
    die "openssl failed, see $d/openssl.log" if $?;
}
$ENV{TEST_NGINX_TLS_DIR} = $d;
$ENV{TEST_NGINX_TLS_PORT} = Msgbus::Test::free_port();

sub webhooks {
    my ($name) = @_;
    my $root = $ENV{TEST_NGINX_SERVROOT} || 't/servroot';
    return Msgbus::Test::script('t/util/webhooks.py',
        '--port', Test::Nginx::Socket::server_port(),
        '--project', $ENV{TEST_NGINX_PROJECT},
        '--pid-file', "$root/logs/nginx.pid",
        '--html', Test::Nginx::Socket::html_dir(),
        '--tls-port', $ENV{TEST_NGINX_TLS_PORT}, $name);
}

workers(2);
worker_connections(1024);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: delivery: every message once, in posting order, as Zaqar's notification
--- http_config
    msgbus_mongodb "$TEST_NGINX_MONGODB_URI";
    msgbus_webhook_lease 3s;
--- config
    location / { msgbus; }
    location = /verdict { root html; }
--- init
main::webhooks('delivery');
--- request
GET /verdict
--- response_body
ok - subscriptions are created
ok - posts are answered 201
ok - each message is delivered once, in posting order
ok - a notification is Zaqar's (body, ttl, queue_name, Message_Type) with the message's id
ok - the queue keeps its messages
--- no_error_log
[error]
[warn]



=== TEST 2: a subscriber that fails (503), then recovers: the messages arrive in order on the retry policy
--- http_config
    msgbus_mongodb "$TEST_NGINX_MONGODB_URI";
    msgbus_webhook_lease 3s;
--- config
    location / { msgbus; }
    location = /verdict { root html; }
    location = /flaky {
        root html;
        if (-f $document_root/down) { return 503; }
        rewrite ^ /v2/queues/fsink/messages last;
    }
--- init
main::webhooks('flaky');
--- request
GET /verdict
--- response_body
ok - subscriptions are created
ok - posts are answered 201
ok - nothing arrives while the subscriber fails
ok - after it recovers, the messages arrive in order
--- error_log
answered 503
--- no_error_log
[error]



=== TEST 3: a subscriber that hangs: bounded attempts, one at a time, then given up; its sibling and the posts unaffected
--- http_config
    msgbus_mongodb "$TEST_NGINX_MONGODB_URI";
    msgbus_webhook_lease 3s;
    msgbus_webhook_timeout 1s;
--- config
    location / { msgbus; }
    location = /verdict { root html; }
--- init
main::webhooks('hang');
--- request
GET /verdict
--- response_body
ok - subscriptions are created
ok - posts are answered 201
ok - a hanging subscriber does not delay the posts
ok - its sibling subscriber gets every message meanwhile
ok - each message is tried 3 times, then given up
ok - each attempt ends at msgbus_webhook_timeout
ok - one attempt at a time, in order
ok - the next message only after the first was given up
--- error_log
timed out
given up after 3 attempts
--- no_error_log
[error]



=== TEST 4: a thousand subscribers of one queue
--- http_config
    msgbus_mongodb "$TEST_NGINX_MONGODB_URI";
    msgbus_webhook_lease 3s;
--- config
    location / { msgbus; }
    location = /verdict { root html; }
--- init
main::webhooks('thousand');
--- request
GET /verdict
--- response_body
ok - posts are answered 201
ok - one post reaches 1000 subscribers, once each
--- no_error_log
[error]
[warn]
--- timeout: 120



=== TEST 5: a reload: messages posted before and right after it all arrive
--- http_config
    msgbus_mongodb "$TEST_NGINX_MONGODB_URI";
    msgbus_webhook_lease 3s;
--- config
    location / { msgbus; }
    location = /verdict { root html; }
--- init
main::webhooks('reload');
--- request
GET /verdict
--- response_body
ok - subscriptions are created
ok - posts are answered 201
ok - delivered before the reload
ok - messages posted across a reload all arrive, in order
--- no_error_log
[error]
--- timeout: 60



=== TEST 6: msgbus_subscription_confirmation on: Zaqar's confirmation, nothing sent before the signed PUT confirms
--- http_config
    msgbus_mongodb "$TEST_NGINX_MONGODB_URI";
    msgbus_webhook_lease 3s;
    msgbus_subscription_confirmation on;
--- config
    location / {
        msgbus;
        msgbus_signed_url_key "t017 key";
    }
    location = /verdict { root html; }
--- init
main::webhooks('confirm');
--- request
GET /verdict
--- response_body
ok - subscriptions are created
ok - the subscriber gets Zaqar's confirmation
ok - posts are answered 201
ok - nothing is sent before it confirms
ok - the signed confirmation is accepted
ok - once confirmed, the next message is sent (not the one before)
--- no_error_log
[error]



=== TEST 7: https subscribers: the certificate checked against msgbus_webhook_ssl_trusted_certificate and the name
--- http_config
    msgbus_mongodb "$TEST_NGINX_MONGODB_URI";
    msgbus_webhook_lease 3s;
    msgbus_webhook_ssl_trusted_certificate $TEST_NGINX_TLS_DIR/receiver.pem;
    server {
        listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl;
        ssl_certificate $TEST_NGINX_TLS_DIR/receiver.pem;
        ssl_certificate_key $TEST_NGINX_TLS_DIR/receiver.key;
        location / { msgbus; }
    }
--- config
    location / { msgbus; }
    location = /verdict { root html; }
--- init
main::webhooks('https');
--- request
GET /verdict
--- response_body
ok - subscriptions are created
ok - posts are answered 201
ok - a subscriber over TLS gets it
ok - not one whose certificate is for another name
--- error_log
does not match
--- no_error_log
[error]



=== TEST 8: a subscriber's host name, looked up with the http block's resolver
--- http_config eval
qq{    msgbus_mongodb "\$TEST_NGINX_MONGODB_URI";
    msgbus_webhook_lease 3s;
} . $::Resolver
--- config
    location / { msgbus; }
    location = /verdict { root html; }
--- init
main::dns('hook.test.msgbus A 127.0.0.1');
main::webhooks('resolver');
--- request
GET /verdict
--- response_body
ok - subscriptions are created
ok - posts are answered 201
ok - a subscriber's host name is looked up with nginx's resolver
ok - not one the name server does not know
--- error_log
the host name cannot be resolved
--- no_error_log
[error]
