package Msgbus::Test;

# Shared set-up for msgbus's Test::Nginx suites, for the real
# Test::Nginx::Socket and for t/lib/compat alike:
#
#   use lib 't/lib';
#   use Test::Nginx::Socket 'no_plan';
#   use Msgbus::Test;
#
# - a block without http_config gets the store from TEST_NGINX_MONGODB_URI;
# - every block (but must_die ones) fails on [alert], [emerg], a worker
#   that exited on a signal, and a sanitizer report (make test-asan: nginx
#   sends its stderr to the error log), whatever runner runs it.

use strict;
use warnings;

use File::Spec;

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

# the blocks define "location /" themselves
Test::Nginx::Socket::no_root_location();

Test::Nginx::Socket::add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->http_config) {
        $block->set_value('http_config',
                          qq{msgbus_mongodb "\$TEST_NGINX_MONGODB_URI";\n});
    }

    return if defined $block->must_die;

    my @strict = ('[alert]', '[emerg]', 'exited on signal', 'runtime error:',
                  'ERROR: AddressSanitizer');
    my $strict = join "\n", @strict, '';
    my $seen = $block->no_error_log;

    if (!defined $seen) {
        $block->set_value('no_error_log', $strict);

    } elsif (ref $seen eq 'ARRAY') {
        $block->set_value('no_error_log',
                          [@$seen, @strict]);

    } else {
        $seen .= "\n" unless $seen =~ /\n\z/;
        $block->set_value('no_error_log', $seen . $strict);
    }
});

1;
