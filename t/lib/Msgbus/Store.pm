package Msgbus::Store;

# Expectations that name messages by what the store holds, for suites
# whose ids are random (messages, claims):
#
#   use Msgbus::Store;      # after Test::Nginx::Socket and Msgbus::Test
#
# In request, more_headers, response_body(_like) and response_headers
# (_like), <ID:queue:n> is the id of the nth (from 0) live message of
# $TEST_NGINX_PROJECT/queue in marker order when the block starts, and
# <CLAIM:queue:n> the id of the claim that holds it.  re() turns an
# answer into a regex of its literal text but for <N> (an integer),
# <HEX> (an ObjectId), <DATE> (ISO 8601, UTC) and those.

use strict;
use warnings;

use Exporter 'import';

our @EXPORT = qw(store_ids re err);

# [id, claim id or ''] of a queue's live messages (not the tombstones
# deleted messages leave), in marker order, from the store
sub store_docs {
    my ($project, $queue) = @_;
    my $py = <<'_PY_';
import sys, zlib, pymongo
uri, project, queue = sys.argv[1:4]
db = pymongo.uri_parser.parse_uri(uri)['database']
n = zlib.crc32((project + queue).encode('utf-8')) % 2
col = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)[
    '%s_messages_p%d' % (db, n)]['messages']
for doc in col.find({'p_q': project + '/' + queue, 'tx': None}).sort('k', 1):
    print(doc['_id'], (doc.get('c') or {}).get('id') or '')
_PY_
    open my $out, '-|', '/usr/bin/python3', '-c', $py,
         $ENV{TEST_NGINX_MONGODB_URI}, $project, $queue
        or die "python3: $!";
    my @docs = map { chomp; [split / /, $_, 2] } <$out>;
    close $out or die "reading the messages of $queue failed";
    return @docs;
}

sub store_ids {
    my ($project, $queue) = @_;
    return map { $_->[0] } store_docs($project, $queue);
}

Test::Nginx::Socket::add_block_preprocessor(sub {
    my $block = shift;
    my %docs;
    my $subst = sub {
        my ($s) = @_;
        return $s unless defined $s && $s =~ /<(?:ID|CLAIM):/;
        $s =~ s{<(ID|CLAIM):([^:>]+):(\d+)>}{
            $docs{$2} //= [store_docs($ENV{TEST_NGINX_PROJECT}, $2)];
            my $doc = $docs{$2}[$3];
            my $v = $doc ? $doc->[$1 eq 'ID' ? 0 : 1] : '';
            if ($v eq '') {
                Test::More::fail($block->name . ": no "
                                 . ($1 eq 'ID' ? 'message' : 'claim')
                                 . " $3 in $2");
                $v = 'missing-id';
            }
            $v;
        }ge;
        return $s;
    };
    for my $sec (qw(request more_headers response_body response_body_like
                    response_headers response_headers_like))
    {
        next unless exists $block->{$sec};
        my $v = $block->{$sec}[0];
        $block->set_value($sec, ref $v eq 'ARRAY' ? [map { $subst->($_) } @$v]
                                                  : $subst->($v));
    }
    return $block;
});

sub re {
    my ($t) = @_;
    my %tok = (N => '\d+', HEX => '[0-9a-f]{24}',
               DATE => '\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ');
    return '^' . join('', map {
        /^<(N|HEX|DATE)>$/ ? $tok{$1} : /^<(?:ID|CLAIM):/ ? $_ : quotemeta
    } split /(<(?:N|HEX|DATE)>|<(?:ID|CLAIM):[^>]+>)/, $t) . '\z';
}

sub err {
    my ($title, $description) = @_;
    return qq({"title": "$title", "description": "$description"});
}

1;
