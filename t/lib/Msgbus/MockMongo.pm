package Msgbus::MockMongo;

# A scripted fake MongoDB server for the adapter's wire tests (pure Perl,
# core modules only).  A test file picks a port once and exports it for
# its nginx.conf, then each block starts a mock with that block's script
# (from "--- init", which both Test::Nginx runners eval in the test
# process after nginx started and before the requests):
#
#   use Msgbus::MockMongo;
#   $ENV{TEST_NGINX_MOCK_PORT} = Msgbus::MockMongo::free_port();
#   ...
#   --- init
#   Msgbus::MockMongo::start(
#       label  => 'opcode 1',
#       conns  => { 1 => ['op_reply'] },   # conn 1: its first command
#       expect => ['1 hello ok', '1 ping op_reply',
#                  '2 hello ok', '2 ping ok'],
#   );
#
# The mock is a forked process listening on 127.0.0.1:PORT.  It accepts
# any number of connections (one select loop), reads OP_MSG frames and
# answers each by its connection's script.  The n-th accepted connection
# (from 1) follows conns->{n}:
#
#   [ ACTION, ... ]                   actions for its commands other than
#                                     hello/isMaster, in order; "ok" after
#   { hello => ACTION, commands => [ ACTION, ... ], then => ACTION }
#
# hello/isMaster get the hello document ({helloOk: true, isWritablePrimary:
# true, maxBsonObjectSize, maxMessageSizeBytes, maxWriteBatchSize, ok: 1.0},
# plus the "hello" fields given to start()), other commands {ok: 1.0}, both
# delivered by the ACTION (see %Actions below: "ok", "error", "pieces",
# "hang", "truncated_header", "frame_too_long", ...).
#
# The mock writes what happened to a file: the number of accepted
# connections and a transcript, one line per command: "CONN COMMAND
# ACTION", e.g. "2 ping ok".  accepted() and transcript() read it; stop()
# (called by the next start(), by the test file after run_tests(), and
# from END) compares them with "expect": two tests, the number of
# connections accepted (the highest CONN expected) and the transcript.

use strict;
use warnings;

use File::Spec ();
use File::Temp ();
use IO::Select ();
use IO::Socket::INET ();
use POSIX ();
use Time::HiRes ();

use constant {
    OP_REPLY    => 1,
    OP_MSG      => 2013,
    HEADER_LEN  => 16,
    MAX_MESSAGE => 48000000,
};

# The running mock (in the test process): pid, label, expect, stats file.
my $Mock;
my $Owner = $$;

# ------------------------------------------------------------------ BSON

# Typed values for bson(): bson(ok => double(1), n => int32(3), ...)
sub double ($) { ['double', $_[0]] }
sub int32  ($) { ['int32',  $_[0]] }
sub bool   ($) { ['bool',   $_[0]] }
sub string ($) { ['string', $_[0]] }
sub doc    (@) { ['doc',    [@_]] }

# A BSON document from key => typed value pairs, in their order.
sub bson {
    my @pairs = @_;
    my $body = '';

    while (@pairs) {
        my ($key, $value) = splice @pairs, 0, 2;
        my ($type, $v) = @$value;

        die "MockMongo: a key with a NUL byte\n" if $key =~ /\0/;

        if ($type eq 'double') {
            $body .= "\x01$key\0" . pack('d<', $v);

        } elsif ($type eq 'string') {
            my $s = $v;
            utf8::encode($s) if utf8::is_utf8($s);
            $body .= "\x02$key\0" . pack('l<', length($s) + 1) . "$s\0";

        } elsif ($type eq 'doc') {
            $body .= "\x03$key\0" . bson(@$v);

        } elsif ($type eq 'bool') {
            $body .= "\x08$key\0" . ($v ? "\x01" : "\x00");

        } elsif ($type eq 'int32') {
            $body .= "\x10$key\0" . pack('l<', $v);

        } else {
            die "MockMongo: no BSON type \"$type\"\n";
        }
    }

    return pack('l<', length($body) + 5) . $body . "\0";
}

# The top-level keys of a BSON document, in order, and its string values
# (enough to name a command and see its "$db").  Dies on bad input.
sub bson_keys {
    my ($data) = @_;

    die "short document\n" if length $data < 5;

    my $len = unpack 'l<', $data;
    die "document length $len, have " . length($data) . "\n"
        if $len < 5 || $len > length $data;

    my (@keys, %strings);
    my $pos = 4;

    # the fixed sizes of the types we can skip over
    my %fixed = (0x01 => 8, 0x07 => 12, 0x08 => 1, 0x09 => 8, 0x0a => 0,
                 0x10 => 4, 0x11 => 8, 0x12 => 8, 0x13 => 16, 0x7f => 0,
                 0xff => 0);

    while ($pos < $len - 1) {
        my $type = ord substr $data, $pos++, 1;
        my $end = index $data, "\0", $pos;
        die "unterminated key\n" if $end < 0 || $end >= $len;

        my $key = substr $data, $pos, $end - $pos;
        $pos = $end + 1;
        push @keys, $key;

        if (exists $fixed{$type}) {
            $pos += $fixed{$type};

        } elsif ($type == 0x02 || $type == 0x0d || $type == 0x0e) {
            my $n = unpack 'l<', substr $data, $pos, 4;
            $strings{$key} = substr $data, $pos + 4, $n - 1 if $type == 0x02;
            $pos += 4 + $n;

        } elsif ($type == 0x03 || $type == 0x04) {
            $pos += unpack 'l<', substr $data, $pos, 4;

        } elsif ($type == 0x05) {
            $pos += 4 + 1 + unpack 'l<', substr $data, $pos, 4;

        } else {
            die sprintf "cannot skip BSON type 0x%02x\n", $type;
        }
    }

    return (\@keys, \%strings);
}

# ---------------------------------------------------------------- frames

# An OP_MSG frame with one kind-0 section, or raw pieces of one.
sub msg_header {
    my ($len, $request_id, $response_to, $opcode) = @_;
    return pack 'l<l<l<l<', $len, $request_id, $response_to, $opcode;
}

sub op_msg {
    my ($request_id, $response_to, $doc) = @_;
    my $body = pack('L<', 0) . "\0" . $doc;
    return msg_header(HEADER_LEN + length $body, $request_id, $response_to,
                      OP_MSG) . $body;
}

# ---------------------------------------------------------------- actions

# Each action gets the request's id, the reply document the command would
# get, and our id for the reply.  It returns the bytes to send, as a list
# of [bytes, seconds to wait after the previous piece went out], and what
# to do next: "keep" the connection, "close" it once all is written, or
# "hang" (read on, never answer).

our %Actions = (

    # the normal reply
    ok => sub {
        my ($req, $doc, $id) = @_;
        return ([[op_msg($id, $req, $doc), 0]], 'keep');
    },

    # a command error: the adapter answers 500 and keeps the connection
    error => sub {
        my ($req, undef, $id) = @_;
        my $err = bson(ok => double(0), errmsg => string('boom'),
                       code => int32(8000), codeName => string('MockError'));
        return ([[op_msg($id, $req, $err), 0]], 'keep');
    },

    # the normal reply one byte at a time, 5 ms apart
    pieces => sub {
        my ($req, $doc, $id) = @_;
        return ([map { [$_, 0.005] } split //, op_msg($id, $req, $doc)],
                'keep');
    },

    # the same, a byte every 0.2 s: slower than a socketTimeoutMS of 0.5 s
    trickle => sub {
        my ($req, $doc, $id) = @_;
        return ([map { [$_, 0.2] } split //, op_msg($id, $req, $doc)],
                'keep');
    },

    # the normal reply followed by bytes nobody asked for
    trailing_garbage => sub {
        my ($req, $doc, $id) = @_;
        return ([[op_msg($id, $req, $doc) . "garbage", 0]], 'keep');
    },

    # the normal reply, then the connection closes (an idle timeout)
    ok_then_close => sub {
        my ($req, $doc, $id) = @_;
        return ([[op_msg($id, $req, $doc), 0]], 'close');
    },

    # no answer at all: the adapter's socketTimeoutMS has to fire
    hang => sub { return ([], 'hang') },

    # the connection closes without an answer
    close => sub { return ([], 'close') },

    # 10 bytes of a valid header, then the connection closes
    truncated_header => sub {
        my ($req, $doc, $id) = @_;
        return ([[substr(op_msg($id, $req, $doc), 0, 10), 0]], 'close');
    },

    # a header announcing more than maxMessageSizeBytes (48000000)
    frame_too_long => sub {
        my ($req, $doc, $id) = @_;
        my $frame = op_msg($id, $req, $doc);
        substr($frame, 0, 4) = pack 'l<', MAX_MESSAGE + 1;
        return ([[$frame, 0]], 'keep');
    },

    # a reply of 1001 bytes, for a server whose hello says 1000
    frame_of_1001 => sub {
        my ($req, undef, $id) = @_;
        my $pad = 1001 - length op_msg(0, 0, bson(ok => double(1),
                                                  pad => string('')));
        my $frame = op_msg($id, $req, bson(ok => double(1),
                                           pad => string('x' x $pad)));
        return ([[$frame, 0]], 'keep');
    },

    # a negative messageLength
    negative_length => sub {
        my ($req, $doc, $id) = @_;
        my $frame = op_msg($id, $req, $doc);
        substr($frame, 0, 4) = pack 'l<', -1;
        return ([[$frame, 0]], 'keep');
    },

    # a reply to the request before this one
    wrong_response_to => sub {
        my ($req, $doc, $id) = @_;
        return ([[op_msg($id, $req - 1, $doc), 0]], 'keep');
    },

    # a legacy OP_REPLY (opcode 1) instead of OP_MSG
    op_reply => sub {
        my ($req, $doc, $id) = @_;
        my $body = pack('l<q<l<l<', 0, 0, 0, 1) . $doc;
        return ([[msg_header(HEADER_LEN + length $body, $id, $req, OP_REPLY)
                  . $body, 0]], 'keep');
    },

    # the document in a kind-1 section: kind byte 2 (reserved)
    section_kind_2 => sub {
        my ($req, $doc, $id) = @_;
        my $section = pack('l<', 4 + length("documents\0") + length $doc)
                      . "documents\0" . $doc;
        my $body = pack('L<', 0) . "\x02" . $section;
        return ([[msg_header(HEADER_LEN + length $body, $id, $req, OP_MSG)
                  . $body, 0]], 'keep');
    },

    # a document declaring 100 bytes more than the frame holds
    doc_too_long => sub {
        my ($req, $doc, $id) = @_;
        substr($doc, 0, 4) = pack 'l<', length($doc) + 100;
        return ([[op_msg($id, $req, $doc), 0]], 'keep');
    },
);

# ------------------------------------------------------------ the server

# A TCP port that is free on 127.0.0.1 right now.
sub free_port {
    my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                     Proto => 'tcp', Listen => 1,
                                     ReuseAddr => 1)
        or die "MockMongo: no free port: $!\n";
    my $port = $sock->sockport;
    close $sock;
    return $port;
}

# Starts a mock (stopping the previous one).  Options:
#   port    default $ENV{TEST_NGINX_MOCK_PORT}
#   label   names the transcript test
#   conns   { N => script } for the N-th accepted connection (see above)
#   default script of the connections not in "conns" (default: all "ok")
#   hello   [key => typed value, ...] added to (or replacing fields of) the
#           hello document, e.g. [maxMessageSizeBytes => int32(1000)]
#   expect  the transcript stop() wants, as a list of lines
sub start {
    my (%opt) = @_;

    stop();

    my $port = $opt{port} // $ENV{TEST_NGINX_MOCK_PORT}
        or die "MockMongo: no port (TEST_NGINX_MOCK_PORT)\n";

    for my $script (values %{ $opt{conns} // {} }, $opt{default} // ()) {
        my @actions = ref $script eq 'ARRAY' ? @$script
                    : ($script->{hello} // (), @{ $script->{commands} // [] },
                       $script->{then} // ());
        for (@actions) {
            die "MockMongo: no action \"$_\"\n" unless $Actions{$_};
        }
    }

    # the listening socket exists before start() returns: no race
    my $listen;
    for (1 .. 50) {
        $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                        LocalPort => $port, Proto => 'tcp',
                                        Listen => 128, ReuseAddr => 1);
        last if $listen || !$!{EADDRINUSE};
        Time::HiRes::sleep(0.1);
    }
    die "MockMongo: cannot listen on 127.0.0.1:$port: $!\n" unless $listen;

    my $dir = File::Temp::tempdir('msgbus-mock-XXXXXX', TMPDIR => 1,
                                  CLEANUP => 1);
    my $stats = File::Spec->catfile($dir, 'stats');

    write_stats($stats, 0, []);             # readable at once

    my $pid = fork;
    die "MockMongo: fork: $!\n" unless defined $pid;

    if ($pid == 0) {
        # the mock: never returns, never runs END blocks or Test::Builder's
        my $rc = eval { serve($listen, $stats, \%opt); 1 } ? 0 : 1;
        warn "MockMongo: $@" if $rc;
        POSIX::_exit($rc);
    }

    close $listen;

    $Mock = { pid => $pid, port => $port, stats => $stats,
              label => $opt{label} // "mock on port $port",
              expect => $opt{expect} };

    return $pid;
}

# Stops the running mock, then checks its transcript when "expect" was
# given.  Returns the transcript.
sub stop {
    my $mock = $Mock or return;
    undef $Mock;

    return if $$ != $Owner;

    kill 'TERM', $mock->{pid};

    my $deadline = Time::HiRes::time() + 3;
    while (waitpid($mock->{pid}, POSIX::WNOHANG()) == 0) {
        if (Time::HiRes::time() > $deadline) {
            kill 'KILL', $mock->{pid};
            waitpid($mock->{pid}, 0);
            last;
        }
        Time::HiRes::sleep(0.01);
    }

    my ($accepted, $lines) = read_stats($mock->{stats});

    if ($mock->{expect}) {
        require Test::More;

        # a connection without a command is no line of the transcript
        my ($want) = sort { $b <=> $a } map { /^(\d+) / ? $1 : 0 }
                                         @{ $mock->{expect} };
        Test::More::is($accepted, $want // 0,
                       "$mock->{label} - connections the mock accepted");

        Test::More::is(join('', map { "$_\n" } @$lines),
                       join('', map { "$_\n" } @{ $mock->{expect} }),
                       "$mock->{label} - the mock's transcript");
    }

    return wantarray ? @$lines : $lines;
}

# Connections the running mock accepted so far, and its transcript.
sub accepted   { return $Mock ? (read_stats($Mock->{stats}))[0] : undef }
sub transcript { return $Mock ? @{ (read_stats($Mock->{stats}))[1] } : () }

sub read_stats {
    my ($file) = @_;
    open my $in, '<', $file or return (0, []);
    my @lines = <$in>;
    chomp @lines;
    my $first = shift(@lines) // '';
    my ($accepted) = $first =~ /^accepted (\d+)$/;
    return ($accepted // 0, \@lines);
}

# Written to a new file, then renamed over the old: readers see all of it.
sub write_stats {
    my ($file, $accepted, $lines) = @_;
    open my $out, '>', "$file.new" or die "MockMongo: $file.new: $!\n";
    print $out "accepted $accepted\n", map { "$_\n" } @$lines;
    close $out or die "MockMongo: $file.new: $!\n";
    rename "$file.new", $file or die "MockMongo: rename $file: $!\n";
}

END {
    local $?;               # waitpid() must not change the exit status
    stop() if $$ == $Owner;
}

# The mock's loop (in the child): one select over the listening socket
# and the connections; replies may be spread over time ("pieces").
sub serve {
    my ($listen, $stats, $opt) = @_;

    # no END blocks here: they belong to the test process
    $SIG{$_} = sub { POSIX::_exit(0) } for qw(TERM INT QUIT HUP);
    $SIG{PIPE} = 'IGNORE';

    my $parent = getppid;
    my $sel = IO::Select->new($listen);
    my (%conns, @lines);
    my ($accepted, $reply_id) = (0, 1000);

    my $hello = merged_hello($opt->{hello});

    my $drop = sub {
        my ($c) = @_;
        $sel->remove($c->{sock});
        delete $conns{ fileno $c->{sock} };
        close $c->{sock};
    };

    while (1) {
        POSIX::_exit(0) if getppid != $parent;    # the test is gone

        # sleep until a socket is readable or a delayed write is due
        my $now = Time::HiRes::time();
        my $wait = 0.5;
        for my $c (values %conns) {
            next unless @{ $c->{out} };
            my $due = $c->{due} - $now;
            $wait = $due < $wait ? ($due > 0 ? $due : 0) : $wait;
        }

        for my $sock ($sel->can_read($wait)) {
            if ($sock == $listen) {
                my $s = $listen->accept or next;
                $accepted++;
                $s->autoflush(1);
                $conns{ fileno $s } = { sock => $s, n => $accepted,
                                        in => '', out => [], commands => 0,
                                        then => 'keep' };
                $sel->add($s);
                write_stats($stats, $accepted, \@lines);
                next;
            }

            my $c = $conns{ fileno $sock } or next;
            my $got = sysread $sock, my $buf, 65536;

            if (!$got) {                # closed by nginx (or an error)
                $drop->($c);
                next;
            }

            next if $c->{then} eq 'close';      # closing: ignore the rest
            $c->{in} .= $buf;

            while (length $c->{in} >= HEADER_LEN) {
                my ($len, $id, undef, $opcode) = unpack 'l<l<l<l<', $c->{in};
                my ($name, $line);

                if ($len < HEADER_LEN + 5) {
                    $line = "bad frame: messageLength $len";

                } else {
                    last if length $c->{in} < $len;     # read on
                    ($name, $line) = request_name(substr($c->{in}, 0, $len, ''),
                                                  $opcode);
                }

                if (!defined $name) {
                    push @lines, "$c->{n} $line";
                    write_stats($stats, $accepted, \@lines);
                    $drop->($c);
                    last;
                }

                my $is_hello = $name =~ /^(?:hello|isMaster|ismaster)$/;
                my $action = next_action($opt, $c, $is_hello);

                push @lines, "$c->{n} $name $action";
                write_stats($stats, $accepted, \@lines);

                my ($pieces, $then) =
                    $Actions{$action}->($id, $is_hello ? $hello
                                                      : bson(ok => double(1)),
                                        ++$reply_id);

                # each piece is due its delay after the one before went
                # out, so that they go out as separate writes
                $c->{due} = Time::HiRes::time() + $pieces->[0][1]
                    if @$pieces && !@{ $c->{out} };
                push @{ $c->{out} }, @$pieces;

                $c->{then} = $then;
                last if $then ne 'keep';
            }
        }

        # due writes, then closes
        $now = Time::HiRes::time();

        for my $c (values %conns) {
            while (@{ $c->{out} } && $c->{due} <= $now) {
                my $bytes = shift(@{ $c->{out} })->[0];
                my $off = 0;
                while ($off < length $bytes) {
                    my $n = syswrite $c->{sock}, $bytes, length($bytes) - $off,
                                     $off;
                    last unless $n;     # nginx went away: the read sees it
                    $off += $n;
                }
                $now = Time::HiRes::time();
                $c->{due} = $now + $c->{out}[0][1] if @{ $c->{out} };
            }

            $drop->($c) if !@{ $c->{out} } && $c->{then} eq 'close';
        }
    }
}

# The hello document: ours, with the fields of start(hello => [...]) in
# place of ours or added before "ok".
sub merged_hello {
    my ($extra) = @_;
    my @pairs = (helloOk => bool(1), isWritablePrimary => bool(1),
                 maxBsonObjectSize => int32(16777216),
                 maxMessageSizeBytes => int32(MAX_MESSAGE),
                 maxWriteBatchSize => int32(100000));
    my @more = @{ $extra // [] };

    while (@more) {
        my ($key, $value) = splice @more, 0, 2;
        my ($i) = grep { $pairs[$_] eq $key } grep { $_ % 2 == 0 } 0 .. $#pairs;
        if (defined $i) {
            $pairs[$i + 1] = $value;
        } else {
            push @pairs, $key, $value;
        }
    }

    return bson(@pairs, ok => double(1));
}

# The command a request frame carries: (name) or (undef, why not).
sub request_name {
    my ($frame, $opcode) = @_;

    return (undef, "bad frame: opcode $opcode") if $opcode != OP_MSG;

    my ($flags, $kind) = unpack 'L<C', substr $frame, HEADER_LEN, 5;
    return (undef, "bad frame: section kind $kind") if $kind != 0;

    my ($keys, $strings) = eval { bson_keys(substr $frame, HEADER_LEN + 5) };
    return (undef, "bad frame: document: $@") unless $keys;
    return (undef, "bad frame: empty document") unless @$keys;
    return (undef, "bad frame: no \$db") unless defined $strings->{'$db'};

    return ($keys->[0]);
}

# The action for a connection's next message, by its script.
sub next_action {
    my ($opt, $c, $is_hello) = @_;
    my $script = $opt->{conns}{ $c->{n} } // $opt->{default} // [];

    if (ref $script eq 'ARRAY') {
        $script = { commands => $script };
    }

    return $script->{hello} // 'ok' if $is_hello;

    my $commands = $script->{commands} // [];
    my $i = $c->{commands}++;

    return $i < @$commands ? $commands->[$i] : ($script->{then} // 'ok');
}

1;
