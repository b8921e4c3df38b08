#!/usr/bin/env python3
"""The ordering invariant after a bench/post run on msgbus: the queue read
by marker from the start holds, for each producer, exactly the posts it
had answered 201 (acked=P:N from bench/post: seq 0..N-1), once each and
in posting order, under strictly increasing markers.

    order.py PORT PROJECT QUEUE ACKED       prints "ordering: ok (...)" or
                                            "ordering: FAILED: reasons",
                                            exit 0 or 1
"""
import json
import sys
import urllib.parse
import urllib.request

CLIENT = "8b3ab5d6-3d3c-4c5a-9f43-000000000000"


def main():
    port, project, queue, acked = sys.argv[1:5]
    want = {int(p): int(n) for p, n in
            (x.split(":") for x in acked.strip(",").split(",") if x)}
    got, markers, marker, problems = {}, [], None, []
    while True:
        path = "/v2/queues/%s/messages?echo=true&limit=20" % queue
        if marker:
            path += "&marker=" + urllib.parse.quote(marker)
        req = urllib.request.Request("http://127.0.0.1:%s%s" % (port, path),
                                     headers={"Client-ID": CLIENT,
                                              "X-Project-Id": project})
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        page = json.loads(body) if body else {}
        if not page.get("messages"):
            break
        for m in page["messages"]:
            b = m["body"]
            got.setdefault(b["producer"], []).append(b["seq"])
        query = urllib.parse.urlparse(page["links"][0]["href"]).query
        marker = urllib.parse.parse_qs(query)["marker"][0]
        markers.append(int(marker))
    if markers != sorted(set(markers)):
        problems.append("page markers do not strictly increase")
    for p, n in want.items():
        seqs = got.get(p, [])
        if seqs[:n] != list(range(n)):
            problems.append("producer %d: %d posts answered 201, read %d, first "
                            "out of order at %s" % (p, n, len(seqs), next(
                                (i for i, s in enumerate(seqs) if s != i), None)))
        elif len(seqs) > n + 1:
            problems.append("producer %d: %d read, %d answered" % (p, len(seqs), n))
    total = sum(len(v) for v in got.values())
    if problems:
        print("ordering: FAILED: " + "; ".join(problems[:5]))
        return 1
    print("ordering: ok (%d messages read by marker, %d producers, each in "
          "posting order, once)" % (total, len(want)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
