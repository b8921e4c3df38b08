# TLS to the store: the certificate and the host name checked by default,
# each failure a 503 with one [error] line that says why, the options
# that relax the checks, client certificates (with an encrypted key),
# "nginx -t" failing on a file it cannot read, and sessions reused.
#
# The certificates are made here, with the openssl command, in a private
# folder: a CA, the store's certificate from it (localhost and 127.0.0.1
# in its subjectAltName), another CA that signed nothing we see, a client
# certificate from the CA (its key in clear, and encrypted), and a second
# store certificate named for another host only.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Msgbus::Test;
use IO::Socket::INET;
use POSIX ();

my $d = Msgbus::Test::tmpdir() . '/tls';
mkdir $d or die "mkdir $d: $!";

# the openssl command, quiet unless it fails
sub openssl {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>', "$d/openssl.log" or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(127);
        exec 'openssl', @_ or POSIX::_exit(127);
    }
    waitpid $pid, 0;
    return if $? == 0;
    open my $log, '<', "$d/openssl.log";
    die "openssl @_ failed:\n", <$log>;
}

sub ext {
    my ($name, @lines) = @_;
    open my $f, '>', "$d/$name.ext" or die $!;
    print $f map { "$_\n" } @lines;
    close $f;
    return "$d/$name.ext";
}

sub key { ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
           '-nodes', '-keyout', "$d/$_[0].key") }

# a certificate NAME signed by the CA, with these extensions
sub signed {
    my ($name, $cn, @ext) = @_;
    openssl('req', '-new', key($name), '-subj', "/CN=$cn",
            '-out', "$d/$name.csr");
    openssl('x509', '-req', '-in', "$d/$name.csr", '-CA', "$d/ca.pem",
            '-CAkey', "$d/ca.key", '-CAcreateserial', '-days', '2',
            '-extfile', ext($name, @ext), '-out', "$d/$name.pem");
}

sub cat {
    my ($out, @in) = @_;
    open my $o, '>', "$d/$out" or die $!;
    for (@in) {
        open my $i, '<', "$d/$_" or die "$d/$_: $!";
        print {$o} <$i>;
    }
    close $o;
}

for my $ca ('ca', 'other-ca') {
    openssl('req', '-x509', key($ca), '-subj', "/CN=msgbus test $ca",
            '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE',
            '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
            '-out', "$d/$ca.pem");
}

signed('server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
       'extendedKeyUsage=serverAuth', 'basicConstraints=CA:FALSE');
signed('elsewhere', 'msgbus-store.test', 'subjectAltName=DNS:msgbus-store.test',
       'extendedKeyUsage=serverAuth', 'basicConstraints=CA:FALSE');
signed('client', 'msgbus client', 'extendedKeyUsage=clientAuth',
       'basicConstraints=CA:FALSE');
openssl('pkcs8', '-topk8', '-in', "$d/client.key", '-v2', 'aes-256-cbc',
        '-passout', 'pass:k3y-Pa55', '-out', "$d/client-enc.key");
cat('client-both.pem', 'client.pem', 'client.key');
cat('client-enc.pem', 'client.pem', 'client-enc.key');

$ENV{TEST_NGINX_TLS_DIR} = $d;

# "tls": the good certificate, no client certificate asked for.
# "mtls": the certificate of another host, and client certificates from
# the CA required (FerretDB requires them when given a CA file).
$ENV{TEST_NGINX_TLS_PORT} = Msgbus::Test::free_port();
our @TlsFlags = ("--listen-tls=127.0.0.1:$ENV{TEST_NGINX_TLS_PORT}",
                 "--listen-tls-cert-file=$d/server.pem",
                 "--listen-tls-key-file=$d/server.key");
Msgbus::Test::store_start('tls', @TlsFlags);

$ENV{TEST_NGINX_MTLS_PORT} = Msgbus::Test::free_port();
Msgbus::Test::store_start('mtls',
    "--listen-tls=127.0.0.1:$ENV{TEST_NGINX_MTLS_PORT}",
    "--listen-tls-cert-file=$d/elsewhere.pem",
    "--listen-tls-key-file=$d/elsewhere.key",
    "--listen-tls-ca-file=$d/ca.pem");

# the plain port of the first, for a TLS client that meets no TLS
$ENV{TEST_NGINX_PLAIN_PORT} = Msgbus::Test::store_port('tls');
# a fake server's
$ENV{TEST_NGINX_CLOSING_PORT} = Msgbus::Test::free_port();

$ENV{TEST_NGINX_PROJECT} = "t009-$$-" . time;

# for a block's --- init: nginx listens (late under valgrind)
sub nginx_up {
    for (1 .. 300) {
        return if IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                      PeerPort => Test::Nginx::Socket::server_port());
        select undef, undef, undef, 0.1;
    }
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the CA in tlsCAFile, the server by its IP address: 204
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_TLS_PORT/msgbus_test?tls=true&tlsCAFile=$TEST_NGINX_TLS_DIR/ca.pem";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204
--- log_level: debug
--- error_log eval
qr/msgbus mongo: TLS to 127\.0\.0\.1:\d+: TLSv1\.3, session new/
--- no_error_log
[error]
msgbus: TLS server name



=== TEST 2: a message posted and read back over TLS
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_TLS_PORT/msgbus_test?tls=true&tlsCAFile=$TEST_NGINX_TLS_DIR/ca.pem";
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/tls/messages\n{\"messages\": [{\"body\": {\"over\": \"tls\"}, \"ttl\": 300}]}",
 "GET /v2/queues/tls/messages?echo=true"]
--- error_code eval
[201, 200]
--- response_body_like eval
[qr{"resources": \["/v2/queues/tls/messages/[0-9a-f]+"\]},
 qr{"ttl": 300, "age": \d+, "body": \{"over":"tls"\}}]
--- no_error_log
[error]



=== TEST 3: a 150 KB message each way: many TLS records per frame
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_TLS_PORT/msgbus_test?tls=true&tlsCAFile=$TEST_NGINX_TLS_DIR/ca.pem";
--- config
    location / { msgbus; }
--- more_headers eval
"Client-ID: 3381af92-2b9e-11e3-b191-71861300734c\nX-Project-ID: $ENV{TEST_NGINX_PROJECT}\nContent-Type: application/json"
--- request eval
["POST /v2/queues/tls-big/messages\n{\"messages\": [{\"body\": {\"big\": \"" . ('x' x 150000) . "\"}}]}",
 "GET /v2/queues/tls-big/messages?echo=true"]
--- error_code eval
[201, 200]
--- response_body_like eval
[qr{"resources": \["/v2/queues/tls-big/messages/[0-9a-f]+"\]},
 qr{"body": \{"big":"(?:x{50000}){3}"\}}]
--- no_error_log
[error]



=== TEST 4: the server by its host name (SNI, DNS name in the certificate): 204
(where localhost is ::1 too, that address is a server the store does not
listen on: its refused connect is no failure of this block)
--- http_config
    msgbus_mongodb "mongodb://localhost:$TEST_NGINX_TLS_PORT/msgbus_test?tls=true&tlsCAFile=$TEST_NGINX_TLS_DIR/ca.pem";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204
--- log_level: debug
--- error_log
msgbus: TLS server name "localhost"
--- no_error_log eval
qr/^(?!.*cannot connect to \[::1\]).*\[error\]/



=== TEST 5: "ssl=true", the older name, is TLS too
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_TLS_PORT/msgbus_test?ssl=true&tlsCAFile=$TEST_NGINX_TLS_DIR/ca.pem";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204
--- no_error_log
[error]



=== TEST 6: a CA that did not sign the server's certificate: 503, why in one line
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_TLS_PORT/msgbus_test?tls=true&tlsCAFile=$TEST_NGINX_TLS_DIR/other-ca.pem";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 503
--- response_body_like chomp
"the store cannot be reached
--- error_log eval
qr/\[error\] .*msgbus mongo: TLS to 127\.0\.0\.1:\d+: certificate verify failed: unable to verify the first certificate/



=== TEST 7: no tlsCAFile: the system's CAs, which do not know the test CA: 503
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_TLS_PORT/msgbus_test?tls=true";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 503
--- error_log eval
qr/msgbus mongo: TLS to 127\.0\.0\.1:\d+: certificate verify failed: unable to verify the first certificate/



=== TEST 8: tlsAllowInvalidCertificates: any chain, the host name still checked: 204
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_TLS_PORT/msgbus_test?tls=true&tlsAllowInvalidCertificates=true";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204
--- no_error_log
[error]



=== TEST 9: a certificate for another host: 503, the name in the error
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MTLS_PORT/msgbus_test?tls=true&tlsCAFile=$TEST_NGINX_TLS_DIR/ca.pem&tlsCertificateKeyFile=$TEST_NGINX_TLS_DIR/client-both.pem";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 503
--- error_log eval
qr/msgbus mongo: TLS to 127\.0\.0\.1:\d+: host name "127\.0\.0\.1" does not match the certificate/



=== TEST 10: tlsAllowInvalidCertificates does not allow another host's name: 503
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MTLS_PORT/msgbus_test?tls=true&tlsAllowInvalidCertificates=true&tlsCertificateKeyFile=$TEST_NGINX_TLS_DIR/client-both.pem";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 503
--- error_log eval
qr/msgbus mongo: TLS to 127\.0\.0\.1:\d+: host name "127\.0\.0\.1" does not match the certificate/



=== TEST 11: tlsAllowInvalidHostnames, and a client certificate the server takes: 204
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MTLS_PORT/msgbus_test?tls=true&tlsCAFile=$TEST_NGINX_TLS_DIR/ca.pem&tlsCertificateKeyFile=$TEST_NGINX_TLS_DIR/client-both.pem&tlsAllowInvalidHostnames=true";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204
--- no_error_log
[error]



=== TEST 12: the server requires a client certificate, none given: 503, why in one line
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MTLS_PORT/msgbus_test?tls=true&tlsCAFile=$TEST_NGINX_TLS_DIR/ca.pem&tlsAllowInvalidHostnames=true";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 503
--- error_log eval
qr/msgbus mongo: TLS to 127\.0\.0\.1:\d+: the server sent the alert "certificate required" \(no client certificate: tlsCertificateKeyFile\)/



=== TEST 13: an encrypted key and tlsCertificateKeyFilePassword: 204
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MTLS_PORT/msgbus_test?tls=true&tlsCAFile=$TEST_NGINX_TLS_DIR/ca.pem&tlsCertificateKeyFile=$TEST_NGINX_TLS_DIR/client-enc.pem&tlsCertificateKeyFilePassword=k3y-Pa55&tlsAllowInvalidHostnames=true";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204
--- no_error_log
[error]
k3y-Pa55



=== TEST 14: tlsInsecure: neither the chain nor the name checked: 204
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_MTLS_PORT/msgbus_test?tls=true&tlsInsecure=true&tlsCertificateKeyFile=$TEST_NGINX_TLS_DIR/client-both.pem";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 204
--- no_error_log
[error]



=== TEST 15: TLS to a port that waits for a MongoDB frame: the connect timeout ends the handshake
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_PLAIN_PORT/msgbus_test?tls=true&tlsCAFile=$TEST_NGINX_TLS_DIR/ca.pem&connectTimeoutMS=500";
--- config
    location / { msgbus; }
--- request
GET /v2/ping
--- error_code: 503
--- response_body_like chomp
"the store did not answer in time
--- error_log eval
qr/msgbus mongo: TLS to 127\.0\.0\.1:\d+: the handshake timed out/



=== TEST 16: TLS to a server that closes the connection at the ClientHello: 503, one line
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_CLOSING_PORT/msgbus_test?tls=true";
--- config
    location / { msgbus; }
--- tcp_listen eval
$ENV{TEST_NGINX_CLOSING_PORT}
--- tcp_reply eval
""
--- request
GET /v2/ping
--- error_code: 503
--- error_log eval
qr/msgbus mongo: TLS to 127\.0\.0\.1:\d+: handshake failed: the connection was closed \(is it a TLS port\?\)/



=== TEST 17: TLS to a server that answers in plain text: 503, one line
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_CLOSING_PORT/msgbus_test?tls=true";
--- config
    location / { msgbus; }
--- tcp_listen eval
$ENV{TEST_NGINX_CLOSING_PORT}
--- tcp_reply eval
"HTTP/1.0 400 Bad Request\r\n\r\n"
--- request
GET /v2/ping
--- error_code: 503
--- log_level: info
--- error_log eval
[qr/msgbus mongo: TLS to 127\.0\.0\.1:\d+: handshake failed: see the info line before/,
 qr/\[info\] .*SSL_do_handshake\(\) failed \(SSL: .*wrong version number/]



=== TEST 18: a new connection offers the server's session: it is resumed
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_TLS_PORT/msgbus_test?tls=true&tlsCAFile=$TEST_NGINX_TLS_DIR/ca.pem";
--- config
    location / { msgbus; }
--- log_level: debug
--- init
main::nginx_up();
# one connection and its session first, then 8 at once: new connections
my $r = Msgbus::Test::http_load(path => '/v2/ping', n => 1);
$r = Msgbus::Test::http_load(path => '/v2/ping', n => 8, concurrency => 8);
--- request
GET /v2/ping
--- error_code: 204
--- error_log eval
[qr/msgbus mongo: TLS to 127\.0\.0\.1:\d+: session \S+ saved/,
 qr/msgbus mongo: TLS to 127\.0\.0\.1:\d+: TLSv1\.3, session reused/]
--- no_error_log
[error]



=== TEST 19: the store restarts: its close of an idle TLS connection is a close, the next request works
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_TLS_PORT/msgbus_test?tls=true&tlsCAFile=$TEST_NGINX_TLS_DIR/ca.pem";
--- config
    location / { msgbus; }
--- log_level: info
--- init
main::nginx_up();
Msgbus::Test::http_load(path => '/v2/ping', n => 1);
Msgbus::Test::store_stop('tls');
Msgbus::Test::store_start('tls', @main::TlsFlags);
--- request
GET /v2/ping
--- error_code: 204
--- error_log eval
qr/msgbus mongo pool: 127\.0\.0\.1:\d+ closed an idle connection/
--- no_error_log
wrote on an idle connection
[error]



=== TEST 20: a tlsCAFile that cannot be read fails nginx -t
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_TLS_PORT/msgbus_test?tls=true&tlsCAFile=$TEST_NGINX_TLS_DIR/missing.pem";
--- config
    location / { msgbus; }
--- must_die
--- error_log eval
qr/\[emerg\] .*msgbus_mongodb: tlsCAFile ".*missing\.pem" cannot be used/



=== TEST 21: a tlsCertificateKeyFile that cannot be read fails nginx -t
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_TLS_PORT/msgbus_test?tls=true&tlsCertificateKeyFile=$TEST_NGINX_TLS_DIR/missing.pem";
--- config
    location / { msgbus; }
--- must_die
--- error_log eval
qr/\[emerg\] .*msgbus_mongodb: tlsCertificateKeyFile ".*missing\.pem" cannot be used/



=== TEST 22: an encrypted key with a wrong password fails nginx -t, the password not logged
--- http_config
    msgbus_mongodb "mongodb://127.0.0.1:$TEST_NGINX_TLS_PORT/msgbus_test?tls=true&tlsCertificateKeyFile=$TEST_NGINX_TLS_DIR/client-enc.pem&tlsCertificateKeyFilePassword=wr0ng-Pa55";
--- config
    location / { msgbus; }
--- must_die
--- error_log eval
qr/\[emerg\] .*msgbus_mongodb: tlsCertificateKeyFile ".*client-enc\.pem" cannot be used/
--- no_error_log
wr0ng-Pa55
