"""The seed's Gevent service: gevent.pywsgi, pymongo made non-blocking by
gevent.monkey.patch_all() (bench/peers/README.md).

    python3 gevent_bus.py PORT MONGODB_URI DATABASE PARTITIONS
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402

import pymongo  # noqa: E402
from gevent import pywsgi  # noqa: E402

import buslib  # noqa: E402

PATH = re.compile(r"^/v2/queues/([A-Za-z0-9_.-]{1,64})/messages$")


def main():
    port, uri, database, partitions = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    client = pymongo.MongoClient(uri, maxPoolSize=32)
    queues = client[database + "_queues"]["queues"]

    def answer(start, status, body, extra=()):
        data = body.encode()
        start(status, [("Content-Type", "application/json"),
                       ("Content-Length", str(len(data)))] + list(extra))
        return [data]

    def app(env, start):
        m = PATH.match(env["PATH_INFO"])
        project = env.get("HTTP_X_PROJECT_ID")
        client_id = env.get("HTTP_CLIENT_ID")
        if not m or not project or not client_id:
            return answer(start, "404 Not Found", '{"title": "Not found"}')
        queue = m.group(1)
        coll = client[buslib.messages_db(database, project, queue, partitions)]["messages"]
        try:
            if env["REQUEST_METHOD"] == "GET":
                flt, sort, limit, base = buslib.page_query(
                    project, queue, client_id, env.get("QUERY_STRING", ""))
                docs = list(coll.find(flt, sort=sort, limit=limit))
                return answer(start, "200 OK", buslib.render_page(queue, docs, base))
            if env["REQUEST_METHOD"] == "POST":
                n = int(env.get("CONTENT_LENGTH") or 0)
                msgs = json.loads(env["wsgi.input"].read(n))["messages"]
                q = queues.find_one_and_update(
                    {"p_q": "%s/%s" % (project, queue)},
                    {"$inc": {"c.v": len(msgs)}}, upsert=True,
                    return_document=pymongo.ReturnDocument.AFTER)
                docs = buslib.post_docs(project, queue, client_id, msgs,
                                        q["c"]["v"] - len(msgs) + 1)
                coll.insert_many(docs)
                return answer(start, "201 Created", buslib.resources(queue, docs))
        except (buslib.BadRequest, ValueError, KeyError, TypeError) as e:
            return answer(start, "400 Bad Request",
                          json.dumps({"title": "Invalid request", "description": str(e)}))
        return answer(start, "405 Method Not Allowed", '{"title": "Method not allowed"}')

    pywsgi.WSGIServer(("127.0.0.1", port), app, log=None, backlog=1024).serve_forever()


if __name__ == "__main__":
    main()
