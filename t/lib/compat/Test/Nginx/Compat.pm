package Test::Nginx::Compat;

# Engine of the small Test::Nginx::Socket replacement in t/lib/compat (see
# Socket.pm there).  It mirrors the behaviour of openresty/test-nginx
# (Test::Nginx::Util + Test::Nginx::Socket) for the subset of sections and
# environment variables this project uses, so that the same t/*.t files (and
# their "plan tests => ..." counts) work with both.
#
# Sections: main_config http_config post_main_config config server_name
#   log_level init request (also eval: string or array of requests)
#   more_headers raw_request raw_request_middle_delay pipelined_requests
#   timeout abort shutdown wait ignore_response error_code error_code_like
#   raw_response_headers_like raw_response_headers_unlike response_headers
#   response_headers_like response_body response_body_like
#   response_body_unlike error_log no_error_log must_die skip_nginx
#   tcp_listen tcp_reply tcp_reply_delay tcp_query tcp_query_len
#   tcp_no_close tcp_shutdown tcp_shutdown_delay, and Test::Base's
#   ONLY/SKIP/LAST.  Other sections of the real runner fail loudly.
# Env: TEST_NGINX_BINARY LOAD_MODULES SERVROOT PORT SERVER_PORT CLIENT_PORT
#   MASTER_PROCESS (default "on" here!) WORKER_PROCESSES NO_CLEAN TIMEOUT
#   SLEEP LOG_LEVEL USE_VALGRIND NO_SHUFFLE EVENT_TYPE (all TEST_NGINX_*).
#
# Extra strictness (ours only): a block fails when error.log (or nginx's
# startup stderr) gains "[alert]", "[emerg]" or "exited on signal" lines, or
# nginx died, or valgrind reported errors, while it ran.  That check is only
# emitted as an extra (failing) assertion, so passing plans are unchanged.

use strict;
use warnings;

use base 'Exporter';
use File::Path qw(make_path remove_tree);
use File::Spec ();
use File::Temp ();
use HTTP::Response ();
use IO::Select ();
use IO::Socket::INET ();
use IO::Socket::UNIX ();
use List::Util qw(shuffle min);
use POSIX qw(WNOHANG);
use Scalar::Util qw(looks_like_number);
use Socket qw(SOCK_STREAM);
use Test::LongString ();
use Test::More ();
use Time::HiRes qw(sleep time);

our @EXPORT = qw(
    run_tests repeat_each no_shuffle master_on master_off
    master_process_enabled workers worker_connections log_level
    no_long_string no_root_location env_to_nginx add_block_preprocessor
    add_cleanup_handler server_port server_port_for_client server_root
    html_dir server_addr server_name timeout config_preamble
    check_accum_error_log bail_out is_str
    $ServerPort $ServerPortForClient $ServRoot $ServerRoot $HtmlDir
    $ConfFile $PidFile $ErrLogFile $NginxBinary $RepeatEach $NoLongString
);

# ---------------------------------------------------------------- settings

sub find_in_path ($) {
    my $prog = shift;
    for my $dir (split /:/, $ENV{PATH} // '') {
        return "$dir/$prog" if $dir ne '' && -f "$dir/$prog" && -x _;
    }
    return undef;
}

sub on_off ($) { ($_[0] // '') =~ /^(?:|0|off|no|false)$/i ? 'off' : 'on' }

our $UseValgrind = $ENV{TEST_NGINX_USE_VALGRIND};
undef $UseValgrind if defined $UseValgrind && $UseValgrind =~ /^0?$/;

our $NginxBinary = $ENV{TEST_NGINX_BINARY} || find_in_path('nginx')
                   || '/usr/sbin/nginx';
our $ServerAddr = '127.0.0.1';
our $ServerName = 'localhost';
our $ServerPort = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
our $ServerPortForClient = $ENV{TEST_NGINX_CLIENT_PORT};   # undef: $ServerPort
our $RepeatEach = 1;
our $NoShuffle = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $NoLongString;
our $NoRootLocation = 0;
our $Workers = $ENV{TEST_NGINX_WORKER_PROCESSES} || 1;
our $WorkerConnections = 64;
our $LogLevel = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
# Our default is "master_process on" (upstream: off), except under valgrind
# where upstream's effective default (off, single foreground process) is kept.
our $MasterProcess = on_off($ENV{TEST_NGINX_MASTER_PROCESS}
                            // ($UseValgrind ? 'off' : 'on'));
our $Timeout = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $Sleep = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $NoClean = $ENV{TEST_NGINX_NO_CLEAN};
our $LoadModules = $ENV{TEST_NGINX_LOAD_MODULES} // '';
our $EventType = $ENV{TEST_NGINX_EVENT_TYPE};
our $CheckAccumErrLog;
our $ConfigPreamble = '';
our (@EnvToNginx, @BlockPreprocessors, @CleanupHandlers);

our $ServRoot = File::Spec->rel2abs($ENV{TEST_NGINX_SERVROOT} || 't/servroot');
our $ServerRoot; *ServerRoot = \$ServRoot;
our $LogDir     = "$ServRoot/logs";
our $ErrLogFile = "$LogDir/error.log";
our $HtmlDir    = "$ServRoot/html";
our $ConfDir    = "$ServRoot/conf";
our $ConfFile   = "$ConfDir/nginx.conf";
our $PidFile    = "$LogDir/nginx.pid";
my $StartErrFile = "$LogDir/startup.stderr";   # nginx stderr while starting
my $VgLogFile    = "$LogDir/valgrind.stderr";  # nginx+valgrind stderr

$ENV{TEST_NGINX_SERVROOT} = $ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;
$ENV{TEST_NGINX_HTML_DIR} ||= $HtmlDir;

# Tests written for the real module sometimes poke at Test::Nginx::Util vars.
{
    no strict 'refs';
    *{"Test::Nginx::Util::$_"} = \${"Test::Nginx::Compat::$_"}
        for qw(ServerPort ServerPortForClient ServRoot HtmlDir ConfFile
               PidFile ErrLogFile NginxBinary RepeatEach NoLongString);
}

my @DefaultEnv = qw(MOCKEAGAIN_VERBOSE MOCKEAGAIN MOCKEAGAIN_WRITE_TIMEOUT_PATTERN
                    LD_PRELOAD LD_LIBRARY_PATH ASAN_OPTIONS);
my $MainPid = $$;

# ------------------------------------------------------ exported functions

sub repeat_each (@) { $RepeatEach = shift if @_; $RepeatEach }
sub no_shuffle () { $NoShuffle = 1 }
sub master_on () { $MasterProcess = 'on' }
sub master_off () { $MasterProcess = 'off' }
sub master_process_enabled (@) {
    return $MasterProcess unless @_;
    $MasterProcess = shift() ? 'on' : 'off';
}
sub workers (@) { $Workers = shift if @_; $Workers }
sub worker_connections (@) { $WorkerConnections = shift if @_; $WorkerConnections }
sub log_level (@) { $LogLevel = shift if @_; $LogLevel }
sub no_long_string () { $NoLongString = 1 }
sub no_root_location () { $NoRootLocation = 1 }
sub server_port (@) { $ServerPort = shift if @_; $ServerPort }
sub server_port_for_client (@) {
    $ServerPortForClient = shift if @_;
    $ServerPortForClient // $ServerPort;
}
sub server_root () { $ServRoot }
sub html_dir () { $HtmlDir }
sub server_addr (@) { $ServerAddr = shift if @_; $ServerAddr }
sub server_name (@) { $ServerName = shift if @_; $ServerName }
sub timeout (@) { $Timeout = shift if @_; $Timeout }
sub config_preamble ($) { $ConfigPreamble = shift }
sub check_accum_error_log () { $CheckAccumErrLog = 1 }
sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }
sub add_cleanup_handler ($) { unshift @CleanupHandlers, shift }

sub env_to_nginx (@) {
    Carp::croak("env_to_nginx: no arguments specified") unless @_;
    for my $v (@_) {
        Carp::croak("env_to_nginx: bad argument value: $v\n")
            if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
}

sub bail_out (@) {
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    return Test::More::like($got, $expected, $desc) if ref $expected eq 'Regexp';
    return Test::More::is($got, $expected, $desc) if $NoLongString;
    return Test::LongString::is_string($got, $expected, $desc);
}

# ------------------------------------------------------------ small helpers

sub parse_time ($) {
    my $t = shift;
    return $t unless defined $t;
    $t =~ s/^\s+|\s+$//g;
    return $1 / 1000 if $t =~ /^([\d.]+)ms$/;
    $t =~ s/(?<=\d)s$//;
    return $t;
}

sub fmt_str ($) {
    my $s = shift;
    chomp $s;
    $s =~ s/"/\\"/g; $s =~ s/\r/\\r/g; $s =~ s/\n/\\n/g;
    return $s;
}

sub sh_quote ($) {
    my $s = shift;
    return $s if $s =~ m{^[-\w./=:,+]+$};
    $s =~ s/'/'\\''/g;
    return "'$s'";
}

# Returns (new content of $file after byte offset $pos, new offset).
sub read_from ($$) {
    my ($file, $pos) = @_;
    open my $in, '<', $file or return ('', $pos // 0);
    binmode $in;
    $pos = 0 if !$pos || $pos > -s $in;     # file was recreated meanwhile
    seek $in, $pos, 0;
    my $data = do { local $/; <$in> } // '';
    return ($data, $pos + length $data);
}

sub to_lines ($) { [grep { length } split /(?<=\n)/, $_[0] // ''] }

sub slurp ($) { (read_from($_[0], 0))[0] }

sub canon_version ($$$) { sprintf "%d.%03d%03d", @_ }

my ($NginxV, $NginxVersion);
sub nginx_v () {
    return $NginxV if defined $NginxV;
    $NginxV = `$NginxBinary -V 2>&1`;
    bail_out("Failed to run \"$NginxBinary -V\": $NginxV")
        if $? != 0 || $NginxV !~ m{/(\d+)\.(\d+)\.(\d+)};
    $NginxVersion = canon_version($1, $2, $3);
    return $NginxV;
}

# Expands $TEST_NGINX_* in config text; unknown variables abort the run.
sub expand_env ($$) {
    my ($text, $name) = @_;
    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        bail_out("$name - No environment $1 defined.\n") unless defined $ENV{$1};
        $ENV{$1};
    }ge;
    return $text;
}

# ------------------------------------------------------ process management

our ($NginxPid, $TcpServer);
my ($SessionLogStart, $ErrLogPos) = (0, 0);
my @PendingStartupLines;    # startup stderr lines for the next log check
my $PrevConfText;            # nginx.conf of the last started nginx
my $Pending;                # strictness check state of the current block

sub is_running ($) {
    my $pid = shift;
    return 0 unless $pid;
    waitpid($pid, WNOHANG);                 # reap it if it is our child
    return 0 unless kill 0, $pid;
    # orphans may linger as zombies when PID 1 does not reap them
    if (open my $fh, '<', "/proc/$pid/stat") {
        my $stat = <$fh> // '';
        return 0 if $stat =~ /^\d+ \(.*\) [ZX]/s;
    }
    return 1;
}

sub wait_gone ($$) {
    my ($pid, $secs) = @_;
    my $deadline = time + $secs;
    while (is_running($pid)) {
        return 0 if time > $deadline;
        sleep 0.01;
    }
    return 1;
}

sub pid_from_file () {
    open my $in, '<', $PidFile or return undef;
    my $pid = <$in> // '';
    return $pid =~ /^(\d+)\s*$/ ? $1 : undef;
}

sub signal_group ($$) {
    my ($sig, $pid) = @_;
    my $pgrp = getpgrp($pid);
    kill $sig, (defined $pgrp && $pgrp == $pid ? -$pid : $pid);
}

# Stops the nginx we manage: QUIT, then TERM, then KILL (whole group).
sub stop_nginx () {
    my $pid = $NginxPid // pid_from_file();
    undef $NginxPid;
    return unless $pid;
    if (!is_running($pid)) {
        $Pending->{died} = $pid if $Pending;
    } else {
        kill QUIT => $pid;
        if (!wait_gone($pid, $UseValgrind ? 30 : $Timeout)) {
            warn "WARNING: nginx ($pid) did not quit in time, sending TERM\n";
            signal_group(TERM => $pid);
            if (!wait_gone($pid, 3)) {
                signal_group(KILL => $pid);
                wait_gone($pid, 3);
            }
        }
    }
    unlink $PidFile;
}

sub cleanup () {
    return if $$ != $MainPid;
    $_->() for @CleanupHandlers;
    @CleanupHandlers = ();
    stop_tcp_server();
    stop_nginx() if !$NoClean || $UseValgrind;
}

END {
    local $?;
    cleanup() if $$ == $MainPid;
}

sub setup_servroot () {
    remove_tree($ConfDir, $HtmlDir, $LogDir, glob("$ServRoot/*_temp"),
                glob("$ServRoot/*_cache")) if !$NoClean && -d $ServRoot;
    make_path($ServRoot, $LogDir, $HtmlDir, $ConfDir);
    open my $out, '>', "$HtmlDir/index.html" or bail_out("$HtmlDir: $!");
    print $out '<html><head><title>It works!</title></head>'
             . '<body>It works!</body></html>';
    close $out;
}

sub gen_conf ($$$) {
    my ($block, $config, $daemon) = @_;
    my $name = $block->name;
    # (block accessors return () in list context for missing sections)
    my ($main, $http, $post) = map { expand_env($_ // '', $name) }
        map { scalar $block->$_ } qw(main_config http_config post_main_config);
    $config = expand_env($config // '', $name);

    my $level = $block->log_level || $LogLevel;
    my $conf = join '', map { "load_module $_;\n" } split ' ', $LoadModules;
    $conf .= <<_EOC_;
worker_processes  $Workers;
daemon $daemon;
master_process $MasterProcess;
error_log logs/error.log $level;
pid       logs/nginx.pid;
_EOC_
    $conf .= join '', map { my $v = /\s/ ? "'$_'" : $_; "env $v;\n" }
                      @DefaultEnv, @EnvToNginx;
    # temp dirs under servroot (the compiled-in ones may be unwritable)
    my $temp = '';
    for my $t (qw(client_body proxy fastcgi uwsgi scgi)) {
        next if $http =~ /\b${t}_temp_path\b/
             || nginx_v() =~ /--without-http_${t}_module/;
        $temp .= "    ${t}_temp_path $ServRoot/${t}_temp;\n";
    }
    my $server_name = $block->server_name // $ServerName;
    my $root_loc = $NoRootLocation ? '' : <<_EOC_;
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_
    my $events = $EventType ? "    use $EventType;\n" : '';
    my $user = $> == 0 ? "user root;\n" : '';
    $conf .= <<_EOC_;

$main

http {
    access_log logs/access.log;
    default_type text/plain;
    keepalive_timeout  68;
$temp
$http

    server {
        listen          $ServerPort;
        server_name     '$server_name';
        client_max_body_size 30M;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root_loc    }
}

$post

events {
    accept_mutex off;
    worker_connections  $WorkerConnections;
$events}
$user
_EOC_
    return $conf;
}

sub write_conf ($) {
    open my $out, '>', $ConfFile or bail_out("Can't write $ConfFile: $!");
    print $out $_[0];
    close $out;
}

sub nginx_cmd () {
    return (split(' ', $NginxBinary), '-p', "$ServRoot/", '-c', 'conf/nginx.conf');
}

# Runs "nginx" (daemon on) to completion; returns (wait status, stderr).
sub run_nginx_once () {
    my $pid = fork // bail_out("fork() failed: $!");
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', $StartErrFile;
        exec nginx_cmd() or POSIX::_exit(127);
    }
    waitpid($pid, 0);
    my $status = $?;
    return (($status >> 8) == 127 ? -1 : $status, slurp($StartErrFile));
}

# Starts nginx for the current block.  Returns undef or an error message.
sub start_nginx ($) {
    my $name = shift;
    if ($UseValgrind) {
        # Foreground nginx under valgrind, as our own child process.
        my $opts = $UseValgrind =~ /^\d+$/
            ? '--num-callers=100 -q --tool=memcheck --leak-check=full '
              . '--show-possibly-lost=no --gen-suppressions=all'
              . (-f 'valgrind.suppress'
                 ? ' --suppressions=./valgrind.suppress' : '')
            : "-q $UseValgrind";
        my $cmd = "exec valgrind $opts " . join ' ', map { sh_quote($_) } nginx_cmd();
        warn "$name\n";
        my $pid = fork // bail_out("fork() failed: $!");
        if (!$pid) {
            setpgrp(0, 0);
            open STDIN, '<', '/dev/null';
            open STDOUT, '>', '/dev/null';
            open STDERR, '>>', $VgLogFile;
            exec '/bin/sh', '-c', $cmd or POSIX::_exit(127);
        }
        $NginxPid = $pid;
        return undef;       # readiness: the HTTP client retries connecting
    }
    my $deadline = time + 10;
    while (1) {
        my ($status, $err) = run_nginx_once();
        if ($status == 0) {
            @PendingStartupLines = @{ to_lines($err) };
            $Pending->{startup} = [@PendingStartupLines] if $Pending;
            my $t = time + 5;       # the daemon writes its pid file a bit later
            sleep 0.005 until defined($NginxPid = pid_from_file()) || time > $t;
            return defined $NginxPid ? undef : "no pid file $PidFile";
        }
        # a previous nginx may still hold the port for a moment
        if ($err =~ /Address already in use/ && time < $deadline) {
            sleep 0.1;
            next;
        }
        return "status $status: $err";
    }
}

# Kills a stale nginx left behind by an earlier (killed) run of the tests.
sub kill_stale_nginx () {
    my $pid = pid_from_file() or return;
    my $cmdline = slurp("/proc/$pid/cmdline");
    stop_nginx() if is_running($pid) && $cmdline =~ /nginx/;
}

# ---------------------------------------------- extra strictness (ours only)

my %StrictRe = (alert => qr/\[alert\]/, emerg => qr/\[emerg\]/,
                signal => qr/exited on signal/);

# Categories a block's error_log (expected) or no_error_log (already
# checked) section mentions, like upstream's "[alert" etc. detection.
sub mentioned ($) {
    my $pats = shift;
    return {} unless defined $pats;
    my $all = join "\n", ref $pats eq 'ARRAY' ? @$pats : ($pats);
    return { alert => index($all, '[alert') >= 0,
             emerg => index($all, '[emerg') >= 0,
             signal => index($all, 'exited on signal') >= 0 };
}

sub strict_begin ($$) {
    my ($block, $must_die) = @_;
    my $expected = mentioned(scalar $block->error_log);
    $expected->{emerg} ||= $must_die;
    $Pending = { name => $block->name, startup => [], expected => $expected,
                 checked => mentioned(scalar $block->no_error_log),
                 log => -s $ErrLogFile // 0, vg => -s $VgLogFile // 0 };
}

sub strict_finish () {
    my $p = $Pending or return;
    undef $Pending;
    my ($data) = read_from($ErrLogFile, $p->{log});
    # Lines up to $ErrLogPos went through this block's no_error_log checks;
    # later ones (e.g. logged while nginx shut down) were never looked at.
    my $seen = min(length $data, $ErrLogPos > $p->{log} ? $ErrLogPos - $p->{log} : 0);
    my @bad;
    for my $part ([[@{ $p->{startup} }, @{ to_lines(substr $data, 0, $seen) }], 1],
                  [to_lines(substr $data, $seen), 0]) {
        my ($lines, $checked) = @$part;
        my @re = map { $StrictRe{$_} } grep {
            !$p->{expected}{$_} && !($checked && $p->{checked}{$_})
        } sort keys %StrictRe;
        push @bad, grep { my $l = $_; grep { $l =~ $_ } @re } @$lines;
    }
    push @bad, "nginx process $p->{died} exited before it was stopped\n"
        if $p->{died};
    if (@bad) {
        Test::More::fail("$p->{name} - no [alert], [emerg] or crash in error.log");
        Test::More::diag("unexpected lines:\n", @bad);
    }
    return unless $UseValgrind;
    my $vg = (read_from($VgLogFile, $p->{vg}))[0];
    my $vg_err = join '|', 'Invalid (?:read|write|free)', 'Mismatched free',
        'Conditional jump', 'Use of uninitialised', 'Syscall param',
        'Source and destination overlap', 'Process terminating',
        'Jump to the invalid address', '.* are (?:definitely|possibly) lost',
        'definitely lost: [1-9]';
    my @vg_bad = grep { /^==\d+==\s+(?:$vg_err)/ } @{ to_lines($vg) };
    if (@vg_bad) {
        Test::More::fail("$p->{name} - valgrind reported no errors");
        Test::More::diag("valgrind output:\n", $vg);
    }
}

# ------------------------------------------------------------- the runner

sub run_tests () {
    $ENV{TEST_NGINX_SERVER_PORT} //= $ServerPort;
    $SIG{PIPE} = 'IGNORE';
    # make sure END (and thus our cleanup) also runs when interrupted
    for my $sig (qw(INT TERM)) {
        $SIG{$sig} = sub { exit 128 + ($sig eq 'INT' ? 2 : 15) }
            if ($SIG{$sig} // 'DEFAULT') eq 'DEFAULT';
    }
    bail_out("Cannot find the nginx executable $NginxBinary")
        unless -x (split ' ', $NginxBinary)[0];
    nginx_v();
    kill_stale_nginx();
    my @blocks = Test::Base::blocks();
    @blocks = shuffle @blocks unless $NoShuffle;
    for my $block (@blocks) {
        $_->($block) for @BlockPreprocessors;
        $block->set_value(name => "$0 " . $block->name);
        run_block($block);
    }
    stop_nginx() if !$NoClean || $UseValgrind;
    strict_finish();
    cleanup();
}

sub skip_count ($) {
    my $block = shift;
    if (defined(my $spec = $block->skip_nginx)) {
        $spec =~ /^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)(?:\s*:\s*(.*?))?\s*$/
            or bail_out($block->name . " - Invalid --- skip_nginx spec: $spec");
        my ($n, $op, $reason) = ($1, $2, $6);
        my $ver = canon_version($3, $4, $5);
        return ($n, $reason || "nginx version $op $3.$4.$5")
            if eval "$NginxVersion $op $ver";
    }
    return;
}

# Sections of the real runner that this one does not implement: fail loudly
# instead of silently ignoring them (a vacuous pass would be worse).
my @Unsupported = qw(user_files grep_error_log grep_error_log_out access_log
    no_access_log response_body_filters response_body_eval request_eval
    udp_listen
    udp_reply udp_query shutdown_error_log no_shutdown_error_log stap
    stap_out stap_out_like stap_out_unlike http2 http3 http09 curl
    skip_eval skip_nginx2 skip_openssl skip_slave todo charset
    error_log_file reload_fails server_addr_for_client);

sub run_block ($) {
    my $block = shift;
    my $name = $block->name;

    if (my @bad = grep { exists $block->{$_} } @Unsupported) {
        Test::More::fail("$name - sections not supported by the compat "
                         . "runner: @bad");
        return;
    }

    if (my ($n, $reason) = skip_count($block)) {
        for (1 .. $RepeatEach) { SKIP: { Test::More::skip("$name - $reason", $n) } }
        return;
    }

    my $config = $block->config;
    if (defined $block->must_die) {
        stop_nginx();
        strict_finish();
        return run_must_die($block, $config);
    }

    # Like upstream, a block without "--- config" reuses the running nginx.
    my $reuse = !defined $config && is_running($NginxPid);
    if (!defined $config) {
        bail_out("$name - No '--- config' section specified and could not "
                 . "get previous one") unless defined $PrevConfText;
    }
    stop_nginx() unless $reuse;
    strict_finish();

    if ($reuse) {
        strict_begin($block, 0);
    } else {
        my $conf = defined $config ? undef : $PrevConfText;
        setup_servroot();
        $conf //= gen_conf($block, $config, $UseValgrind ? 'off' : 'on');
        write_conf($conf);
        $PrevConfText = $conf;
        strict_begin($block, 0);
        $SessionLogStart = -s $ErrLogFile || 0;
        if (defined(my $err = start_nginx($name))) {
            undef $Pending;
            Test::More::fail("$name - failed to start nginx: $err");
            return;
        }
    }
    $ErrLogPos = $SessionLogStart;

    if (defined(my $init = $block->init)) {
        eval $init;
        bail_out("$name - init failed: $@") if $@;
    }

    for my $rep (0 .. $RepeatEach - 1) {
        start_tcp_server($block) if defined $block->tcp_listen;
        run_requests($block, $rep);
        if ($TcpServer) {
            my $got = slurp($TcpServer->{qfile});
            is_str($got, $block->tcp_query, "$name - tcp_query ok")
                if defined $block->tcp_query;
            Test::More::is(length($got), $block->tcp_query_len,
                           "$name - TCP query length ok")
                if defined $block->tcp_query_len;
            stop_tcp_server();
        }
    }

    if ($UseValgrind) {     # leak reports are printed when nginx exits
        stop_nginx();
        strict_finish();
    }
}

sub run_must_die ($$) {
    my ($block, $config) = @_;
    my $name = $block->name;
    my $must_die = $block->must_die;
    setup_servroot();
    write_conf(gen_conf($block, $config, 'on'));
    strict_begin($block, 1);
    $SessionLogStart = $ErrLogPos = -s $ErrLogFile || 0;
    for my $i (0 .. $RepeatEach - 1) {
        my ($status, $err) = run_nginx_once();
        # with "--error-log-path=stderr" builds the messages only reach
        # stderr (t/util/nginx adds "-e logs/error.log" for that); the
        # strict check still reads stderr
        @PendingStartupLines = @{ to_lines($err) };
        push @{ $Pending->{startup} }, @PendingStartupLines;
        if ($status == -1) {
            Test::More::fail("$name - failed to execute the nginx command line");
        } elsif ($status & 128) {
            Test::More::fail("$name - nginx core dumped");
        } elsif (looks_like_number($must_die)) {
            Test::More::is($must_die, $status >> 8,
                           "$name - die with the expected exit code");
        } else {
            Test::More::isnt($status, 0, "$name - die as expected");
        }
        check_error_log($block, $i);
        if ($status == 0) {
            warn "WARNING: $name - nginx must die but it does not; "
                 . "killing it (req $i)\n";
            my $t = time + 2;
            sleep 0.01 until defined pid_from_file() || time > $t;
            stop_nginx();
        }
    }
    strict_finish();
}

# ----------------------------------------------------------------- requests

sub parse_more_headers ($) {
    my ($out, $chunked) = ('');
    for my $h (split /\n+/, shift) {
        next if $h =~ /^\s*#/;
        my ($key, $val) = split /:\s*/, $h, 2;
        $val //= '';
        $chunked = 1 if lc($key) eq 'transfer-encoding' && $val eq 'chunked';
        $out .= "$key: $val\r\n";
    }
    return ($out, $chunked);
}

# Turns "METHOD [URI [VERSION]]\nbody" into a full HTTP/1.x request.
sub build_request ($$$$) {
    my ($name, $more, $req, $conn) = @_;
    utf8::encode($req) if utf8::is_utf8($req);
    my ($first, $content) = ($req // '') =~ /\A([^\n]*\n?)(.*)\z/s;
    bail_out("$name - Request line should be non-empty") unless $first;
    $first =~ /^(\s*)(\S+)( *)((\S+)( *))?((\S+)( *))?(\s*)$/
        or bail_out("$name - Request line is not valid. Should be "
                    . "'meth [url [version]]' but got \"$first\".");
    my ($meth, $url, $ver) = ($2, $5 // '/', $8 // 'HTTP/1.1');
    my ($hdrs, $chunked) = parse_more_headers($more // '');
    my $len = '';
    if (!$chunked && $content ne '' && $hdrs !~ /(?:^|\n)Content-Length:/) {
        $content =~ s/^\s+|\s+$//gs;
        $len = "Content-Length: " . length($content) . "\r\n";
    }
    my $std = '';
    $std .= "Host: $ServerName\r\n" if $hdrs !~ /(?:^|\n)Host:/msi;
    $std .= "Connection: $conn\r\n" if $hdrs !~ /(?:^|\n)Connection/msi;
    return "$meth $url $ver\r\n$std$hdrs$len\r\n$content";
}

# Returns a list of connections, each a list of {value, delay_before} packets.
sub get_requests ($) {
    my $block = shift;
    my $name = $block->name;
    if (defined(my $raw = $block->raw_request)) {
        return [map { ref $_ eq 'HASH' ? $_ : { value => $_ } }
                    ref $raw eq 'ARRAY' ? @$raw : ($raw)];
    }
    my $more = $block->more_headers;
    my $hdr = sub {
        my $i = shift;
        return $more unless ref $more eq 'ARRAY';
        bail_out("--- more_headers lacks data for the request #$i")
            unless defined $more->[$i];
        return $more->[$i];
    };
    if (my $reqs = $block->pipelined_requests) {
        bail_out("$name - invalid entries in --- pipelined_requests")
            unless ref $reqs eq 'ARRAY';
        return [{ value => join '', map {
            build_request($name, $hdr->($_), $reqs->[$_],
                          $_ == $#$reqs ? 'close' : 'keep-alive')
        } 0 .. $#$reqs }];
    }
    my $req = $block->request;
    if (!ref $req) {
        1 while defined $req && $req =~ s/^\s*\#[^\n]+\s+|^\s+//gs;
        return [{ value => build_request($name, $hdr->(0), $req, 'close') }];
    }
    bail_out("$name - invalid ---request : MUST be string or array of requests")
        unless ref $req eq 'ARRAY';
    my @conns;
    for my $i (0 .. $#$req) {
        my $one = $req->[$i];
        # packet lists are sent as one write (no per-packet delays here)
        $one = join '', map { ref $_ ? $_->{value} : $_ } @$one if ref $one;
        push @conns, [{ value => build_request($name, $hdr->($i), $one, 'close') }];
    }
    return @conns;
}

sub connect_server ($$) {
    my ($name, $timeout) = @_;
    my $port = server_port_for_client();
    my $deadline = time + ($UseValgrind ? 60 : 10);
    my $wait = 0.005;
    while (1) {
        my $sock = IO::Socket::INET->new(PeerAddr => $ServerAddr,
                                         PeerPort => $port, Proto => 'tcp',
                                         Timeout => $timeout);
        return $sock if $sock;
        my $err = $! || $@;
        if (time < $deadline && (!$NginxPid || is_running($NginxPid))) {
            sleep $wait;
            $wait = min($wait * 2, 0.2);
            next;
        }
        Test::More::fail("$name - Can't connect to $ServerAddr:$port: "
                         . "$err (aborted)\n");
        return undef;
    }
}

# Sends one connection's packets and reads until the server closes.
# The timeout applies between two I/O events, like upstream.
sub send_request ($$$) {
    my ($block, $packets, $timeout) = @_;
    my $name = $block->name;
    my $head = (join '', map { $_->{value} } @$packets) =~ /^\s*HEAD\s+/ ? 1 : 0;
    my $sock = connect_server($name, $timeout) or return ('', $head);
    $sock->blocking(0);
    my $sel = IO::Select->new($sock);
    my ($resp, $timed_out, $first) = ('', 0, 1);
  WRITE:
    for my $p (@$packets) {
        my $delay = $first ? undef
                  : $p->{delay_before} // $block->raw_request_middle_delay;
        sleep $delay if $delay;
        $first = 0;
        my $buf = $p->{value} // '';
        utf8::encode($buf) if utf8::is_utf8($buf);
        my $off = 0;
        while ($off < length $buf) {
            if (!$sel->can_write($timeout)) { $timed_out = 1; last WRITE }
            my $n = syswrite($sock, $buf, length($buf) - $off, $off);
            if (!defined $n) {
                next if $!{EAGAIN} || $!{EINTR};
                warn "WARNING: $name - write failed: $!\n";
                last WRITE;
            }
            $off += $n;
        }
    }
    if (!$timed_out && defined(my $how = $block->shutdown)) {
        shutdown($sock, $how =~ /^\s*$/ ? 1 : $how);
    }
    while (!$timed_out) {
        if (!$sel->can_read($timeout)) { $timed_out = 1; last }
        my $n = sysread($sock, my $chunk, 8192);
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            warn "WARNING: $name - HTTP response read failure: $!\n";
            last;
        }
        last if $n == 0;
        $resp .= $chunk;
    }
    close $sock;
    Test::More::fail("ERROR: client socket timed out - $name\n")
        if $timed_out && !defined $block->abort;
    return ($resp, $head);
}

# Decodes a chunked body: (body, leftover bytes) or (undef, undef, error).
sub dechunk ($) {
    my $raw = shift;
    my $out = '';
    while (1) {
        if ($raw =~ /\G0[ \t]*\r\n\r\n/gc) {
            return ($out, $raw =~ /\G(.+)/gcs ? $1 : undef);
        }
        if ($raw =~ /\G[ \t]*([A-Fa-f0-9]+)[ \t]*\r\n/gc) {
            my ($size, $pos) = (hex $1, pos $raw);
            return (undef, undef, "invalid chunked data received (not "
                    . "enought octets for the data section)")
                if length($raw) - $pos < $size;
            $out .= substr $raw, $pos, $size;
            pos($raw) = $pos + $size;
            return (undef, undef, "invalid chunked data received (expected CRLF).")
                unless $raw =~ /\G\r\n/gc;
        } elsif ($raw =~ /\G(.+)/gcs) {
            return (undef, undef, "invalid chunked body received: $1");
        } else {
            return (undef, undef, "no last chunk found - $raw");
        }
    }
}

sub parse_response ($$$) {
    my ($name, $raw, $head) = @_;
    my $raw_headers = $raw =~ /(.*?\r\n)\r\n/s ? $1 : '';
    my $res = HTTP::Response->parse($raw);
    my $code = $res->code;
    if (defined $code && $code !~ /^\d+$/) { undef $code; $res->code(undef) }
    return ($res, $raw_headers) if $code && ($code == 304 || $code == 101);
    my $enc = $res->header('Transfer-Encoding');
    my $len = $res->header('Content-Length');
    my $left;
    if (defined $enc && $enc eq 'chunked') {
        my ($body, $rest, $err) = dechunk($res->content // '');
        if (defined $err) {
            Test::More::fail("$name - $err");
            return (undef, $raw_headers);
        }
        $res->content($body);
        $left = $rest;
    } elsif (defined $len && $len =~ /^\d+$/) {
        my $body = $res->content // '';
        if (length $body < $len) {
            warn "WARNING: $name - response body truncated: $len expected, "
                 . "but got ", length $body, "\n" unless $head;
        } elsif (length $body > $len) {
            $left = substr $body, $len;
            $res->content(substr $body, 0, $len);
        }
    }
    return ($res, $raw_headers, $left);
}

sub indexed ($$$$) {
    my ($name, $value, $idx, $need_array) = @_;
    return $value->[$idx] if ref $value eq 'ARRAY';
    bail_out("$name - You asked for many requests, the expected results "
             . "should be arrays as well.") if $need_array;
    return $value;
}

sub parse_headers ($) {
    my %h;
    for (split /\n/, shift) {
        s/^\s+|\s+$//g;
        if (s/^!\s*//) { $h{$_} = undef; next }
        my ($key, $val) = split /\s*:\s*/, $_, 2;
        $h{$key} = $val;
    }
    return \%h;
}

sub subst_port ($) {
    my $s = shift;
    return $s if !defined $s || ref $s;
    my $client = server_port_for_client();
    $s =~ s/\$ServerPortForClient\b/$client/g;
    $s =~ s/\$ServerPort\b/$ServerPort/g;
    return $s;
}

sub check_response ($$$$$$) {
    my ($block, $res, $raw_headers, $idx, $rep, $need_array) = @_;
    my $name = $block->name;
    my $code = ($res && $res->code) || '';

    if (defined $block->error_code_like) {
        my $re = indexed($name, $block->error_code_like, $idx, $need_array);
        Test::More::like($code, qr/$re/sm, "$name - status code ok");
    } else {
        my $want = defined $block->error_code
            ? indexed($name, $block->error_code, $idx, $need_array) : 200;
        Test::More::is($code, $want, "$name - status code ok");
    }

    for my $kind (qw(like unlike)) {
        my $pat = $block->${\"raw_response_headers_$kind"};
        next unless defined $pat;
        $pat = indexed($name, $pat, $idx, $need_array);
        no strict 'refs';
        &{"Test::More::$kind"}($raw_headers, qr/$pat/s,
                               "$name - raw resp headers $kind");
    }

    if (defined $block->response_headers) {
        my $h = parse_headers(indexed($name, $block->response_headers, $idx,
                                      $need_array));
        while (my ($key, $val) = each %$h) {
            if (!defined $val) {
                Test::More::unlike($raw_headers, qr/^\s*\Q$key\E\s*:/ms,
                    "$name - header $key not present in the raw headers");
                next;
            }
            my $got = $res ? $res->header($key) : undef;
            Test::More::is($got // '', subst_port($val), "$name - header $key ok");
        }
    } elsif (defined $block->response_headers_like) {
        my $h = parse_headers(indexed($name, $block->response_headers_like,
                                      $idx, $need_array));
        while (my ($key, $val) = each %$h) {
            my $got = $res ? $res->header($key) : undef;
            Test::More::like($got // '', qr/^$val$/, "$name - header $key like ok");
        }
    }

    my $content = $res ? $res->content : undef;
    if (defined $block->response_body) {
        my $want = subst_port(indexed($name, $block->response_body, $idx,
                                      $need_array));
        my $desc = "$name - response_body - response is expected "
                 . "(repeated req $rep, req $idx)";
        if (ref $want) {
            Test::More::like($content, $want,
                "$name - response_body - like (repeated req $rep, req $idx)");
        } elsif ($NoLongString) {
            Test::Base::is($content, $want, $desc);
        } else {
            Test::LongString::is_string($content, $want, $desc);
        }
    } elsif (defined $block->response_body_like
             || defined $block->response_body_unlike) {
        my $type = defined $block->response_body_like ? 'like' : 'unlike';
        my $pat = subst_port(indexed($name, $block->${\"response_body_$type"},
                                     $idx, $need_array));
        my $summary = $content // '';
        $summary =~ s/^\s+|\s+$//g; $summary =~ s/\s+/ /g;
        no strict 'refs';
        &{"Test::More::$type"}($content, qr/$pat/s,
            "$name - response_body_$type - response is expected ($summary)");
    }
}

sub run_requests ($$) {
    my ($block, $rep) = @_;
    my $name = $block->name;
    my @conns = get_requests($block);
    my $timeout = parse_time($block->timeout) // $Timeout;
    my $pipelined = $block->pipelined_requests;
    my $per_conn = $pipelined ? scalar @$pipelined : 1;
    my $need_array = $pipelined ? 1 : @conns > 1;
    my $idx = 0;
    for my $c (0 .. $#conns) {
        my ($raw, $head) = send_request($block, $conns[$c], $timeout);
        for my $k (1 .. $per_conn) {
            if (!defined $block->ignore_response) {
                my ($res, $raw_headers, $left) = parse_response($name, $raw // '', $head);
                if (!$pipelined && defined $left && length $left) {
                    (my $l = $left) =~ s/([\0-\037\200-\377])/sprintf('\x{%02x}', ord $1)/eg;
                    warn "WARNING: $name - unexpected extra bytes after last "
                         . "chunk in response: \"$l\"\n";
                }
                $raw = $left;
                check_response($block, $res, $raw_headers // '', $idx, $rep,
                               $need_array);
            }
            if ($k < $per_conn || $c < $#conns) {     # not the last response
                sleep $block->wait if $block->wait;
                check_error_log($block, $rep);
            }
            $idx++;
        }
    }
    sleep $block->wait if $block->wait;
    check_error_log($block, $rep);
}

# ------------------------------------------------------- error.log checks

# error.log lines written since the previous check.  Like the real
# runner, "--- error_log" does not see nginx's startup stderr (the strict
# [alert]/[emerg] check reads that separately).
sub error_log_lines () {
    sleep $Sleep * 3;       # let nginx finish its log-phase writes
    splice @PendingStartupLines;
    my @lines;
    my ($data, $pos) = read_from($ErrLogFile,
                                 $CheckAccumErrLog ? $SessionLogStart : $ErrLogPos);
    $ErrLogPos = $pos unless $CheckAccumErrLog;
    return [@lines, @{ to_lines($data) }];
}

sub pattern_list ($) {
    my $pats = shift;
    if (!ref $pats) { chomp $pats; return [split /\n+/, $pats] }
    return ref $pats eq 'Regexp' ? [$pats] : [@$pats];
}

sub line_matches ($$) {
    my ($line, $pat) = @_;
    return (ref $pat && $line =~ /$pat/) || $line =~ /\Q$pat\E/;
}

sub check_error_log ($$) {
    my ($block, $rep) = @_;
    my $name = $block->name;
    my $lines = error_log_lines();
    my $mentioned = '';
    if (defined(my $pats = $block->error_log)) {
        for my $pat (@{ pattern_list($pats) }) {
            next unless defined $pat;
            $mentioned .= "$pat\n";
            if (grep { line_matches($_, $pat) } @$lines) {
                Test::More::pass("$name - pattern \"$pat\" matches a line in "
                                 . "error.log (req $rep)");
            } else {
                Test::More::fail("$name - pattern \"$pat\" should match a line "
                                 . "in error.log (req $rep)");
            }
        }
    }
    if (defined(my $pats = $block->no_error_log)) {
        for my $pat (@{ pattern_list($pats) }) {
            next unless defined $pat;
            $mentioned .= "$pat\n";
            my $p = fmt_str($pat);
            my ($hit) = grep { line_matches($_, $pat) } @$lines;
            if (defined $hit) {
                Test::More::fail("$name - pattern \"$p\" should not match any "
                    . "line in error.log but matches line \"" . fmt_str($hit)
                    . "\" (req $rep)");
            } else {
                Test::More::pass("$name - pattern \"$p\" does not match a line "
                                 . "in error.log (req $rep)");
            }
        }
    }
    for my $line (@$lines) {
        warn "WARNING: $name - " . fmt_str($line) . "\n"
            if $line =~ /\[crit\]/ && index($mentioned, '[crit') < 0;
        if ($line =~ /\bAssertion .*?failed\b/) {
            Test::More::fail("$name - " . fmt_str($line));
        }
    }
}

# ------------------------------------------------------ mock TCP upstream

sub start_tcp_server ($) {
    my $block = shift;
    my $name = $block->name;
    (my $target = $block->tcp_listen) =~ s/^\s+|\s+$//g;
    my $reply = $block->tcp_reply;
    bail_out("$name - no --- tcp_reply specified but --- tcp_listen is specified")
        if !defined $reply && !defined $block->tcp_shutdown;
    my $req_len = $block->tcp_query_len;
    $req_len = length $block->tcp_query
        if !defined $req_len && defined $block->tcp_query;
    my (undef, $qfile) = File::Temp::tempfile('tcp_query_XXXXXX', TMPDIR => 1,
                                              UNLINK => 1);
    my $sock;
    for (1 .. 50) {
        if ($target =~ /^\d+$/) {
            $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                LocalPort => $target, Proto => 'tcp', ReuseAddr => 1,
                Listen => 5);
        } elsif ($target =~ /\S+\.sock$/) {
            unlink $target;
            $sock = IO::Socket::UNIX->new(Local => $target,
                                          Type => SOCK_STREAM, Listen => 5);
        } else {
            bail_out("$name - bad tcp_listen target: $target");
        }
        last if $sock || !$!{EADDRINUSE};
        sleep 0.1;
    }
    bail_out("$name - failed to create the tcp listening socket: $!") unless $sock;

    my $pid = fork // bail_out("$name - fork() failed: $!");
    if (!$pid) {
        # child: never returns, never runs END blocks or Test::Builder hooks
        eval { tcp_server_loop($block, $sock, $qfile, $req_len, $reply) };
        warn "$name - TCP server: $@" if $@;
        POSIX::_exit(0);
    }
    $TcpServer = { pid => $pid, sock => $sock, qfile => $qfile,
                   target => $target };
}

# Serves connections one at a time until killed (upstream serves only one).
# Only the first connection's data is recorded for tcp_query checks.
sub tcp_server_loop {
    my ($block, $listen, $qfile, $req_len, $reply) = @_;
    $SIG{$_} = 'DEFAULT' for qw(INT TERM QUIT);
    $SIG{PIPE} = 'IGNORE';
    my $parent = getppid();
    my $sel = IO::Select->new($listen);
    my ($first, @kept) = (1);
    while (kill 0, $parent) {           # exit if the test process vanished
        next unless $sel->can_read(1);
        my $c = $listen->accept or next;
        my ($no_read, $no_write);
        if (defined(my $how = $block->tcp_shutdown)) {
            sleep parse_time($block->tcp_shutdown_delay)
                if $block->tcp_shutdown_delay;
            shutdown($c, $how);
            $no_read = 1 if $how == 0 || $how == 2;
            $no_write = 1 if $how == 1 || $how == 2;
        }
        my $buf = '';
        until ($no_read) {
            my $n = sysread($c, my $chunk, 4096);
            last unless $n;
            $buf .= $chunk;
            if ($first && open my $out, '>', $qfile) {
                binmode $out;
                print $out $buf;
                close $out;
            }
            last if !$req_len || length($buf) >= $req_len;
        }
        my $delay = parse_time($block->tcp_reply_delay);
        sleep $delay if $delay;
        if (!$no_write && defined $reply) {
            my $r = ref $reply eq 'CODE' ? $reply->($buf) : $reply;
            for my $piece (ref $r eq 'ARRAY' ? @$r : ($r)) {
                utf8::encode($piece) if utf8::is_utf8($piece);
                my $off = 0;
                while ($off < length $piece) {
                    my $n = syswrite($c, $piece, length($piece) - $off, $off);
                    last unless $n;
                    $off += $n;
                }
            }
        }
        $first = 0;
        defined $block->tcp_no_close ? push(@kept, $c) : close($c);
    }
}

sub stop_tcp_server () {
    my $srv = $TcpServer or return;
    undef $TcpServer;
    kill TERM => $srv->{pid};
    my $t = time + 3;
    sleep 0.01 while waitpid($srv->{pid}, WNOHANG) == 0 && time < $t;
    if (kill 0, $srv->{pid}) {
        kill KILL => $srv->{pid};
        waitpid($srv->{pid}, 0);
    }
    close $srv->{sock};
    unlink $srv->{target} if $srv->{target} =~ /\.sock$/;
    unlink $srv->{qfile};
}

1;
