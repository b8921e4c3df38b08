package Test::Nginx::Socket;

# Drop-in replacement for the subset of openresty's Test::Nginx::Socket that
# this project's t/*.t files use; only picked up (prove -I t/lib/compat) when
# the real module is not installed.  Like the real one it is a Test::Base
# subclass, so "use Test::Nginx::Socket 'no_plan';", plan(), blocks() and the
# Test::Base filters (eval, chomp, ...) and ONLY/SKIP/LAST all work as usual.
# The engine lives in Test::Nginx::Compat.
#
# NB: "use Test::Base -Base" enables Spiffy's source filter for this file,
# which rewrites "sub name {" declarations; keep code out of this file.

use Test::Base -Base;
use Test::Nginx::Compat;

our $VERSION = '0.29_compat';

our @EXPORT = (@Test::Nginx::Compat::EXPORT, 'plan');
