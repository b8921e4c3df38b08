package Msgbus::Srv;

# What the mongodb+srv:// suites share (t/019-srv.t, t/018-srv-recovery.t):
# the name server t/util/dns.py on 127.0.0.1 (main::dns(RECORD...) or
# main::dns('--silent'), restarted each time), the zone whose SRV record
# points at the suite's store (main::zone()), and the http blocks'
# resolver ($::Resolver) and connection string ($::Cluster).

use strict;
use warnings;

use IO::Socket::INET ();
use Socket ();
use Test::Nginx::Socket ();

package main;

our ($Resolver, $Cluster);

my ($host, $port, $db) = $ENV{TEST_NGINX_MONGODB_URI}
    =~ m{^mongodb://(?:[^@/]*@)?([^/,?:]+)(?::(\d+))?/?([^?]*)};

$ENV{TEST_NGINX_STORE_PORT} = $port // 27017;
$ENV{TEST_NGINX_STORE_ADDR} = Socket::inet_ntoa(Socket::inet_aton($host));
$ENV{TEST_NGINX_DB} = $db || 'msgbus_test';
$ENV{TEST_NGINX_DEAD_PORT} = Msgbus::Test::free_port();
$ENV{TEST_NGINX_QUEUE} = "srv$$";

# a UDP port free now, for the name server
$ENV{TEST_NGINX_DNS_PORT} ||= do {
    my $s = IO::Socket::INET->new(Proto => 'udp', LocalAddr => '127.0.0.1')
        or die "no free UDP port: $!";
    $s->sockport;
};

my ($dns_pid, $dns_out);

# dns(RECORD...) or dns('--silent'): the name server, restarted
sub dns {
    dns_stop();
    $dns_pid = open($dns_out, '-|', '/usr/bin/python3', 't/util/dns.py',
                    $ENV{TEST_NGINX_DNS_PORT}, @_)
        or die "cannot start t/util/dns.py: $!";
    my $ready = <$dns_out> // '';
    die "t/util/dns.py did not start\n" unless $ready =~ /^ready/;
}

sub dns_stop {
    return unless $dns_pid;
    kill 'TERM', $dns_pid;
    close $dns_out;
    undef $dns_pid;
}

# the zone: cluster.test.msgbus, its SRV record to db1.test.msgbus at
# the store's port (or $port), and a TXT record
sub zone {
    my (%o) = @_;
    my $p = $o{port} // $ENV{TEST_NGINX_STORE_PORT};
    return ("_mongodb._tcp.cluster.test.msgbus SRV 0 5 $p db1.test.msgbus",
            "db1.test.msgbus A $ENV{TEST_NGINX_STORE_ADDR}",
            map { "cluster.test.msgbus TXT $_" } @{ $o{txt} // [] });
}

$Resolver = <<'_EOC_';
    resolver 127.0.0.1:$TEST_NGINX_DNS_PORT ipv6=off valid=1s;
    resolver_timeout 1s;
_EOC_

# the string most blocks use
$Cluster = $Resolver . <<'_EOC_';
    msgbus_mongodb "mongodb+srv://cluster.test.msgbus/$TEST_NGINX_DB?tls=false&serverSelectionTimeoutMS=3000";
_EOC_

Test::Nginx::Socket::add_cleanup_handler(\&dns_stop);

END { dns_stop() }

1;
