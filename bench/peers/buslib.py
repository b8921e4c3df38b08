"""What the Python peers share (bench/peers/README.md).

The store layout msgbus and Zaqar use, the query msgbus runs for
GET /v2/queues/{q}/messages, and the answer's JSON, byte for byte as msgbus
writes it, so that every contender answers the same page from the same
documents.
"""

import binascii
import datetime
import json
import time
import urllib.parse

import bson

MAX_LIMIT = 20


def partition(project, queue, partitions):
    """Zaqar's: crc32(project + queue) % partitions"""
    return binascii.crc32((project + queue).encode()) % partitions


def messages_db(database, project, queue, partitions):
    return "%s_messages_p%d" % (database, partition(project, queue, partitions))


class BadRequest(Exception):
    pass


def page_query(project, queue, client, query_string, now=None):
    """(filter, sort, limit, links_base) for a GET of messages, as msgbus
    builds it: live, unclaimed, not delayed, after the marker, in marker
    order."""
    now = time.time() if now is None else now
    args = urllib.parse.parse_qsl(query_string, keep_blank_values=True)
    limit, marker, echo, kept = 10, None, False, []
    for k, v in args:
        if k == "limit":
            if not v.isdigit() or not 1 <= int(v) <= MAX_LIMIT:
                raise BadRequest("limit")
            limit = int(v)
        elif k == "marker":
            if not v.isdigit():
                raise BadRequest("marker")
            marker = int(v)
            continue
        elif k == "echo":
            echo = v == "true"
        kept.append("%s=%s" % (k, v))
    secs = int(now)
    flt = {
        "p_q": "%s/%s" % (project, queue),
        "e": {"$gt": datetime.datetime.utcfromtimestamp(secs)},
        "tx": None,
        "c.e": {"$lte": secs},
        "$or": [{"d": {"$lte": secs}}, {"d": {"$exists": False}}],
    }
    if marker is not None:
        flt["k"] = {"$gt": marker}
    if not echo:
        flt["u"] = {"$ne": client}
    base = "/v2/queues/%s/messages?%s" % (queue, "&".join(kept))
    return flt, [("k", 1)], limit, base


def body_json(b):
    """msgbus keeps a body as its JSON text (binary subtype 0x80); Zaqar
    as BSON"""
    if isinstance(b, bytes):
        return b.decode()
    return json.dumps(b, separators=(",", ":"))


def render_page(queue, docs, base, now=None):
    now = int(time.time() if now is None else now)
    out = []
    for d in docs:
        oid = str(d["_id"])
        created = d["_id"].generation_time.timestamp() \
            if isinstance(d["_id"], bson.ObjectId) else now
        out.append('{"id": "%s", "href": "/v2/queues/%s/messages/%s", '
                   '"ttl": %d, "age": %d, "body": %s}'
                   % (oid, queue, oid, d.get("t", 0), max(0, now - int(created)),
                      body_json(d.get("b"))))
    if not out:
        return '{"messages": [], "links": []}'
    sep = "&" if not base.endswith("?") else ""
    return ('{"messages": [%s], "links": [{"rel": "next", "href": "%s%smarker=%d"}]}'
            % (", ".join(out), base, sep, docs[-1]["k"]))


def post_docs(project, queue, client, messages, first_marker, now=None):
    """the documents of a POST, at markers first_marker.., as msgbus and
    Zaqar store them"""
    now = time.time() if now is None else now
    docs = []
    for i, m in enumerate(messages):
        ttl = int(m.get("ttl", 3600))
        docs.append({
            "_id": bson.ObjectId(),
            "p_q": "%s/%s" % (project, queue),
            "t": ttl,
            "e": datetime.datetime.utcfromtimestamp(int(now) + ttl),
            "u": client,
            "c": {"id": None, "e": int(now), "c": 0},
            "d": int(now),
            "b": bson.Binary(json.dumps(m.get("body"), separators=(",", ":")).encode(), 0x80),
            "k": first_marker + i,
            "tx": None,
        })
    return docs


def resources(queue, docs):
    return '{"resources": [%s]}' % ", ".join(
        '"/v2/queues/%s/messages/%s"' % (queue, d["_id"]) for d in docs)
