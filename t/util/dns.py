#!/usr/bin/env python3
"""A small DNS server on 127.0.0.1 for the tests of mongodb+srv://.

    t/util/dns.py PORT [--silent] [--malformed KIND] [RECORD ...]

Each RECORD is one argument, "NAME TYPE DATA", with TYPE one of:

    SRV   "PRIORITY WEIGHT PORT TARGET"
    TXT   the text (split into strings of 255 bytes at most); two TXT
          arguments for one name are two records
    A     an IPv4 address

A query of a name the zone has is answered with its records of the
type asked (none: an empty NOERROR answer); any other name gets
NXDOMAIN.  --silent: reads the queries and never answers (a name server
that is down, but whose port is open).  --malformed KIND: TXT queries
get a broken answer instead, KIND "loop" (the record's name a
compression pointer to itself) or "overrun" (its data longer than the
packet).  TTLs are 1 s.  Prints "ready"
once it listens; stops on SIGTERM.  Python's standard library only.
"""

import signal
import socket
import struct
import sys

TYPES = {'A': 1, 'TXT': 16, 'SRV': 33, 'AAAA': 28}


def encode_name(name):
    out = b''
    for label in name.rstrip('.').split('.'):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b'\0'


def read_name(packet, pos):
    labels = []
    while True:
        n = packet[pos]
        if n == 0:
            return '.'.join(labels), pos + 1
        if n & 0xc0:
            raise ValueError('no compression in questions')
        labels.append(packet[pos + 1:pos + 1 + n].decode('ascii', 'replace'))
        pos += 1 + n


def rdata(rtype, data):
    if rtype == 'A':
        return socket.inet_aton(data)
    if rtype == 'SRV':
        prio, weight, port, target = data.split()
        return struct.pack('!HHH', int(prio), int(weight), int(port)) \
            + encode_name(target)
    if rtype == 'TXT':
        raw = data.encode()
        chunks = [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b'']
        return b''.join(bytes([len(c)]) + c for c in chunks)
    raise ValueError('unknown type ' + rtype)


def load(records):
    zone = {}
    for record in records:
        name, rtype, data = record.split(None, 2)
        zone.setdefault(name.lower().rstrip('.'), []).append(
            (TYPES[rtype], rdata(rtype, data)))
    return zone


def answer(zone, query):
    qid, flags, qdcount = struct.unpack('!HHH', query[:6])
    name, pos = read_name(query, 12)
    qtype, qclass = struct.unpack('!HH', query[pos:pos + 4])
    question = query[12:pos + 4]
    records = zone.get(name.lower().rstrip('.'))
    rcode = 0 if records is not None else 3
    answers = [r for r in (records or []) if r[0] == qtype]
    out = struct.pack('!HHHHHH', qid, 0x8180 | (flags & 0x0100) | rcode,
                      1, len(answers), 0, 0) + question
    for rtype, data in answers:
        # the name as a pointer to the question's
        out += struct.pack('!HHHIH', 0xc00c, rtype, 1, 1, len(data)) + data
    return out


def malformed(kind, query):
    qid = struct.unpack('!H', query[:2])[0]
    _, pos = read_name(query, 12)
    question = query[12:pos + 4]
    out = struct.pack('!HHHHHH', qid, 0x8180, 1, 1, 0, 0) + question
    if kind == 'loop':
        at = len(out)
        return out + struct.pack('!H', 0xc000 | at) \
            + struct.pack('!HHIH', 16, 1, 1, 4) + b'\x03abc'
    return out + struct.pack('!HHHIH', 0xc00c, 16, 1, 1, 200) + b'\x05abcde'


def main():
    args = sys.argv[1:]
    port = int(args.pop(0))
    silent = '--silent' in args
    kind = None
    if '--malformed' in args:
        i = args.index('--malformed')
        kind = args[i + 1]
        del args[i:i + 2]
    zone = load([a for a in args if a != '--silent'])

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', port))
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    print('ready', flush=True)

    while True:
        query, peer = sock.recvfrom(4096)
        if silent or len(query) < 17:
            continue
        try:
            if kind and struct.unpack('!H', query[-4:-2])[0] == 16:
                sock.sendto(malformed(kind, query), peer)
                continue
            sock.sendto(answer(zone, query), peer)
        except (ValueError, IndexError, struct.error):
            pass


if __name__ == '__main__':
    main()
