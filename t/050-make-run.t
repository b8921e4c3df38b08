# make run (t/util/run.sh): against any MongoDB (MONGODB_URI) on any
# address (LISTEN), or with the embedded store; a port that is taken
# stops it before anything starts, naming the knob to change; nginx that
# does not start leaves nothing running (t/util/makerun.py).

use lib 't/lib';
use Test::Nginx::Socket;
use Msgbus::Test;

# it tests a script that starts nginx (as make run does: workers as
# nobody) and stores of its own: nothing valgrind or the sanitizers
# (make test-asan preloads them into every program) would see
if ($ENV{TEST_NGINX_USE_VALGRIND} || ($ENV{LD_PRELOAD} // '') =~ /asan/) {
    plan(skip_all => 'starts nginx by itself, not run under valgrind '
                     . 'or the sanitizers');
}

plan('no_plan');
no_shuffle();
run_tests();

__DATA__

=== TEST 1: make run's cases, each on free ports
--- config
    location = /verdict { root html; }
--- init
Msgbus::Test::script('t/util/makerun.py',
    '--tmp', Msgbus::Test::tmpdir(),
    '--mongodb', $ENV{TEST_NGINX_MONGODB_URI},
    '--module', $ENV{TEST_NGINX_LOAD_MODULES});
--- request
GET /verdict
--- response_body
ok - MONGODB_URI and LISTEN: it starts
ok - MONGODB_URI: no embedded store is started
ok - the bus answers on LISTEN, against MONGODB_URI
ok - a post through it is read back
ok - its error log is at notice: no line per closed keepalive connection
ok - stop stops nginx
ok - LISTEN taken: it stops, naming LISTEN
ok - LISTEN taken: nothing is started
ok - LISTEN taken: one line, no bind() errors
ok - STORE_PORT taken: it stops, naming MONGODB_URI and STORE_PORT
ok - STORE_PORT taken: nothing is started
ok - nginx does not start: it says so
ok - nginx does not start: the store it started is stopped again
ok - no MONGODB_URI: the embedded store on STORE_PORT serves the bus
ok - stop stops nginx and the embedded store
ok - a MongoDB that does not answer: nginx runs, and the user is told why
ok - a mongodb+srv:// string is looked up through RESOLVER
--- timeout: 200
