# The checking scripts' assertions (t/util/ordering.py, claims.py,
# realtime.py, zaqarclient_scenario.py), printed one a line for the
# Test::Nginx block that runs the script (Msgbus::Test::script lists them
# in the block's response_body):
#
#   ok - WHAT                 the assertion held
#   not ok - WHAT             it did not, with its reasons under it:
#     # REASON                (20 at most)
#
# WHAT is fixed text, so that the block can expect it; what differs from
# run to run goes in the reasons or in the script's other lines (its
# measurements).


import socket
import sys
import time


def free_port():
    """a TCP port free on 127.0.0.1 now"""
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def alive(pid):
    """the process runs (a zombie waiting to be reaped does not)"""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().split()[2] != 'Z'
    except OSError:
        return False


def run_scenario(port, scenario, verdict):
    """waits for nginx on port (under valgrind it takes seconds), runs
    scenario(), prints the verdict and exits 1 if an assertion failed"""
    end = time.time() + 30
    while True:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=5).close()
            break
        except OSError:
            if time.time() > end:
                raise
            time.sleep(0.1)

    scenario()
    verdict.report()
    if verdict.failures():
        print('FAILED: %d' % verdict.failures())
        sys.exit(1)
    print('OK')


class Verdict:
    def __init__(self, *whats):
        """whats: the assertions, in the order to print them (others are
        added as they are first checked)"""
        self.whats = []
        self.reasons = {}
        for what in whats:
            self.expect(what)

    def expect(self, what):
        if what not in self.reasons:
            self.whats.append(what)
            self.reasons[what] = []

    def fail(self, what, reason):
        self.expect(what)
        self.reasons[what].append(reason)

    def check(self, cond, what, reason=None):
        """cond must hold; reason (else WHAT) says how it did not"""
        self.expect(what)
        if not cond:
            self.fail(what, reason or what)
        return cond

    def failures(self):
        return sum(len(r) for r in self.reasons.values())

    def report(self):
        for what in self.whats:
            reasons = self.reasons[what]
            if not reasons:
                print('ok - ' + what)
                continue
            print('not ok - ' + what)
            for r in reasons[:20]:
                print('  # ' + r)
            if len(reasons) > 20:
                print('  # ... %d more' % (len(reasons) - 20))
