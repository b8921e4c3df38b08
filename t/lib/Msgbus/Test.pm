package Msgbus::Test;

# Shared set-up for msgbus's Test::Nginx suites, for the real
# Test::Nginx::Socket and for t/lib/compat alike:
#
#   use lib 't/lib';
#   use Test::Nginx::Socket 'no_plan';
#   use Msgbus::Test;
#
# - a block without http_config gets the store from TEST_NGINX_MONGODB_URI;
# - every block (but must_die ones) fails on [emerg], [alert], [crit], a
#   worker that exited on a signal, and a sanitizer report (make test-asan:
#   nginx sends its stderr to the error log), unless its error_log expects
#   that level; and on an [error] line that none of its error_log patterns
#   matches.  Whatever runner runs it.
#
# A block that must tolerate [error] lines it cannot assert (a race that
# may or may not log) says which in its own no_error_log, a regex naming
# "\[error\]" (Test::Nginx::Socket's own section), e.g.
#
#   --- no_error_log eval
#   qr/^(?!.*did not answer in time).*\[error\]/
#
# and then gets no [error] check of ours.  Prefer error_log, which asserts
# the message.

use strict;
use warnings;

use File::Spec;
use File::Temp ();
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes ();

our $ClientId = '3381af92-2b9e-11e3-b191-71861300734c';

my $data = File::Spec->catdir((File::Spec->splitpath(File::Spec->rel2abs(__FILE__)))[1],
                              File::Spec->updir, File::Spec->updir, 'data');

# The bytes of a file in t/data, for "--- response_body eval".
sub fixture {
    my ($name) = @_;
    my $path = File::Spec->catfile($data, $name);
    open my $fh, '<:raw', $path or die "cannot open $path: $!";
    local $/;
    return scalar <$fh>;
}

# t/util/mongo.py with the suite's store (or $uri): its output, chomped
sub mongo {
    my @args = @_;
    my $uri = $ENV{TEST_NGINX_MONGODB_URI};
    $uri = shift @args if @args && $args[0] =~ m{^mongodb://};
    open my $fh, '-|', '/usr/bin/python3', 't/util/mongo.py', $uri, @args
        or die "cannot run t/util/mongo.py: $!";
    my $out = do { local $/; <$fh> };
    close $fh or die "t/util/mongo.py @args failed";
    chomp $out;
    return $out;
}

# The suite's store, a database of this file's own ("<db>_SUFFIX"): for
# subscriptions, which every nginx on their database delivers, so that
# another file's nginx never holds them
sub own_database {
    my ($suffix) = @_;
    my ($base, $opts) = split /\?/, $ENV{TEST_NGINX_MONGODB_URI}, 2;
    my $db;
    $base =~ s{^(mongodb(?:\+srv)?://[^/]+)(?:/([^/]*))?$}
              {$db = $2 // ''; "$1/" . ($db eq '' ? 'msgbus' : $db)
                               . "_$suffix"}e
        or die "cannot read the database of $ENV{TEST_NGINX_MONGODB_URI}";
    # credentials are checked where they were (authSource: the database)
    if ($base =~ m{^mongodb(?:\+srv)?://[^/]*@}
        && ($opts // '') !~ /(?:^|&)authSource=/i)
    {
        $opts = join '&', grep { defined && length } $opts,
                    'authSource=' . ($db eq '' ? 'admin' : $db);
    }
    $ENV{TEST_NGINX_MONGODB_URI} = $base . (defined $opts ? "?$opts" : '');
}

# how many messages of PROJECT/QUEUE the store holds, expired or not
# Zaqar's error body, as msgbus sends it
sub err {
    my ($title, $description) = @_;
    return qq({"title": "$title", "description": "$description"});
}

# a post of one message of exactly $size bytes
sub sized {
    my ($size) = @_;
    my ($pre, $post) = ('{"messages": [{"body": "', '"}]}');
    return $pre . ('x' x ($size - length($pre) - length($post))) . $post;
}

sub count_messages {
    my ($project, $queue) = @_;
    return mongo('count-messages', $project, $queue);
}

# the blocks define "location /" themselves
Test::Nginx::Socket::no_root_location();

# ---------------------------------------------------------------- stores
#
# Private stores (t/util/store.sh: FerretDB on a PostgreSQL cluster of
# its own) a test can start, stop and kill (the suite's main store is
# TEST_NGINX_MONGODB_URI; these are for store failures and users).
# Their ports are known before nginx starts, so configs can name them
# through environment variables.

my $tmp = File::Temp::tempdir('msgbus-test-XXXXXX', TMPDIR => 1,
                              CLEANUP => 1);
# PostgreSQL runs as its own user: the folder must let it through
chmod 0711, $tmp;
my (%stores, %silent);
my $main_pid = $$;

# a private folder for a test's own files (removed at exit)
sub tmpdir { $tmp }

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, ReuseAddr => 1)
        or die "cannot find a free port: $!";
    return $s->sockport;
}

sub store_port {
    my ($name) = @_;
    return $stores{$name}{port} //= free_port();
}

# store_start(NAME, [--user => 'NAME:PASSWORD'], FERRETDB FLAGS...)
sub store_start {
    my ($name, @flags) = @_;
    my $port = store_port($name);
    system('t/util/store.sh', 'start', "$tmp/$name", $port, @flags) == 0
        or die "cannot start store $name on port $port";
    return $port;
}

sub store_stop {
    my ($name, $how) = @_;
    system('t/util/store.sh', $how // 'stop', "$tmp/$name") == 0
        or die "cannot stop store $name";
}

# SIGKILL: the store crashes and drops every connection at once.
sub store_kill {
    my ($name) = @_;
    store_stop($name, 'kill');
}

# A server that accepts connections and never answers.
sub silent_start {
    my ($name) = @_;
    my $port = store_port($name);
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $l = IO::Socket::INET->new(Listen => 64, LocalAddr => '127.0.0.1',
                                      LocalPort => $port, ReuseAddr => 1)
            or POSIX::_exit(1);
        my @held;
        while (my $c = $l->accept) { push @held, $c }
        POSIX::_exit(0);
    }
    $silent{$name} = $pid;
    Time::HiRes::sleep(0.2);
    return $port;
}

END {
    return unless $$ == $main_pid;      # not in forked helpers

    for my $pid (values %silent) {
        kill 'KILL', $pid;
        waitpid $pid, 0;
    }
    for my $name (keys %stores) {
        system('t/util/store.sh', 'stop', "$tmp/$name")
            if -e "$tmp/$name/ferretdb.pid" || -e "$tmp/$name/postgres.pid";
    }
}

# ------------------------------------------------------------------- load
#
# $n requests for $path (or as many as fit in $duration seconds),
# $concurrency at a time, each on its own connection; returns
# [[status, seconds], ...] (status 0: no answer within $timeout seconds).

sub http_load {
    my (%o) = @_;
    my $port = $o{port} // Test::Nginx::Socket::server_port();
    my $n = $o{duration} ? 1e9 : $o{n} // 1;
    my $stop = Time::HiRes::time() + ($o{duration} // 1e9);
    my $conc = $o{concurrency} // 1;
    my $timeout = $o{timeout} // 10;
    my $req = "GET $o{path} HTTP/1.0\r\nHost: localhost\r\n"
              . join('', map { "$_\r\n" } @{ $o{headers} // [] }) . "\r\n";
    my (@results, %inflight);
    my $sel = IO::Select->new;
    my $sent = 0;
    my $deadline = Time::HiRes::time() + $timeout;

    while (@results < $n) {
        $n = $sent if $sent < $n && Time::HiRes::time() > $stop;
        last if @results >= $n;

        while ($sent < $n && $sel->count < $conc) {
            my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                          PeerPort => $port)
                or die "cannot connect to nginx: $!";
            syswrite $s, $req;
            $inflight{fileno $s} = [Time::HiRes::time(), ''];
            $sel->add($s);
            $sent++;
        }

        my @ready = $sel->can_read(0.5);

        if (Time::HiRes::time() > $deadline) {
            for my $s ($sel->handles) {
                push @results, [0, $timeout];
                $sel->remove($s);
                close $s;
            }
            push @results, [0, $timeout] while @results < $n;
            last;
        }

        for my $s (@ready) {
            my $st = $inflight{fileno $s};
            my $got = sysread $s, my $buf, 65536;
            if ($got) {
                $st->[1] .= $buf;
                next;
            }
            my ($status) = $st->[1] =~ m{^HTTP/1\.\d (\d+)};
            push @results, [$status // 0, Time::HiRes::time() - $st->[0]];
            $sel->remove($s);
            close $s;
        }
    }

    return \@results;
}

# The patterns of an error_log-like section: a string (one a line), a
# regex or an array of both, as Test::Nginx::Socket reads them.
sub patterns {
    my ($pats) = @_;
    return () unless defined $pats;
    return ($pats) if ref $pats eq 'Regexp';
    return grep { defined } @$pats if ref $pats eq 'ARRAY';
    return grep { length } split /\n+/, $pats;
}

Test::Nginx::Socket::add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->http_config && defined $block->config) {
        $block->set_value('http_config',
                          qq{msgbus_mongodb "\$TEST_NGINX_MONGODB_URI";\n});
    }

    return if defined $block->must_die;

    my @expected = patterns($block->error_log);
    my $expected = join "\n", @expected;

    # a level the block expects is no failure (the real runner's own
    # [alert]/[crit]/[emerg] warnings look for "[alert" etc. likewise)
    my @strict = grep { index($expected, "[$_") < 0 } qw(emerg alert crit);
    @strict = map { "[$_]" } @strict;
    push @strict, 'exited on signal', 'runtime error:',
                  'ERROR: AddressSanitizer';

    # [error]: any line but those the block expects, unless the block's
    # own no_error_log says which [error] lines it forbids
    my @own = patterns($block->no_error_log);
    my $own_error = grep { ref $_ && "$_" =~ /\\\[error\\\]/ } @own;

    if (!$own_error && @expected) {
        my $alt = join '|', map { ref $_ ? $_ : quotemeta $_ } @expected;
        push @strict, qr/^(?!.*(?:$alt)).*\[error\]/;
    } elsif (!$own_error) {
        push @strict, '[error]';
    }

    my %own = map { ref $_ ? () : ($_ => 1) } @own;
    $block->set_value('no_error_log',
                      [@own, grep { ref $_ || !$own{$_} } @strict]);
});

# ---------------------------------------------------------------- verdicts
#
# What a block's "--- init" found (a script's assertions, the store's
# figures), one line each, for the block's request to fetch and its
# response_body to list:
#
#   --- config
#       location = /verdict { root html; }
#   --- init
#   Msgbus::Test::verdict('messages stored: ' . main::count('q'));
#   --- request
#   GET /verdict
#   --- response_body
#   messages stored: 3
sub verdict {
    my $file = Test::Nginx::Socket::html_dir() . '/verdict';
    open my $v, '>', $file or die "cannot write $file: $!";
    print $v map { "$_\n" } @_;
    close $v or die "cannot write $file: $!";
}

# A checking script (t/util/*.py, see t/util/verdict.py) run against the
# block's nginx from its "--- init": the lines it prints for its
# assertions, "ok - WHAT" or "not ok - WHAT", are the verdict, so that
# the block lists every assertion in its response_body ("ok - ...").
# Its other lines (what it measured) become notes, and the whole output a
# diagnostic when an assertion failed or it exited with 1 or worse.
sub script {
    my @cmd = ('/usr/bin/python3', @_);
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if (!$pid) {
        open STDERR, '>&', \*STDOUT;
        exec @cmd or POSIX::_exit(127);
    }
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    my $rc = $? >> 8;
    my @lines = split /\n/, $out;
    my @verdict = grep { /^(?:not )?ok - / } @lines;
    Test::More::note($_) for grep { !/^(?:not )?ok - |^  # / } @lines;
    Test::More::diag("@_:\n$out")
        if $rc == 1 || $rc > 2 || grep { /^not ok - / } @verdict;
    verdict(@verdict);
    return $out;
}

# A scenario of t/util/realtime.py against the block's nginx
sub realtime {
    my ($name) = @_;
    my $port = Test::Nginx::Socket::server_port();
    my $pid = ($ENV{TEST_NGINX_SERVROOT} || 't/servroot') . '/logs/nginx.pid';
    return script('t/util/realtime.py', '--port', $port,
                  '--project', $ENV{TEST_NGINX_PROJECT},
                  '--pid-file', $pid,
                  '--mongodb', $ENV{TEST_NGINX_MONGODB_URI},
                  '--binary', $ENV{TEST_NGINX_BINARY},
                  '--module', $ENV{TEST_NGINX_LOAD_MODULES}, $name);
}

1;
