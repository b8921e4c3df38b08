"""The seed's Tornado service: Tornado's own server and web framework,
Motor as the non-blocking driver (bench/peers/README.md).

    python3 tornado_bus.py PORT MONGODB_URI DATABASE PARTITIONS

The seed wrote it in callback style; Motor 2 (Debian's) has no callbacks
any more, so the handlers are coroutines on the same IOLoop.
"""

import json
import logging
import sys

import motor.motor_tornado
import pymongo
import tornado.httpserver
import tornado.ioloop
import tornado.web

import buslib


class Messages(tornado.web.RequestHandler):

    def initialize(self, client, database, partitions):
        self.client = client
        self.database = database
        self.partitions = partitions

    def coll(self, project, queue):
        return self.client[buslib.messages_db(self.database, project, queue, self.partitions)]["messages"]

    def reply(self, status, body):
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(body)

    def bad(self, e):
        self.reply(400, json.dumps({"title": "Invalid request", "description": str(e)}))

    def prepare(self):
        self.project = self.request.headers.get("X-Project-ID")
        self.client_id = self.request.headers.get("Client-ID")
        if not self.project or not self.client_id:
            self.reply(404, '{"title": "Not found"}')

    async def get(self, queue):
        project, client_id = self.project, self.client_id
        try:
            flt, sort, limit, base = buslib.page_query(
                project, queue, client_id, self.request.query)
        except buslib.BadRequest as e:
            return self.bad(e)
        docs = await self.coll(project, queue).find(flt, sort=sort, limit=limit) \
            .to_list(length=limit)
        self.reply(200, buslib.render_page(queue, docs, base))

    async def post(self, queue):
        project, client_id = self.project, self.client_id
        try:
            msgs = json.loads(self.request.body)["messages"]
            n = len(msgs)
        except (ValueError, KeyError, TypeError) as e:
            return self.bad(e)
        q = await self.client[self.database + "_queues"]["queues"].find_one_and_update(
            {"p_q": "%s/%s" % (project, queue)}, {"$inc": {"c.v": n}},
            upsert=True, return_document=pymongo.ReturnDocument.AFTER)
        docs = buslib.post_docs(project, queue, client_id, msgs, q["c"]["v"] - n + 1)
        await self.coll(project, queue).insert_many(docs)
        self.reply(201, buslib.resources(queue, docs))


def main():
    port, uri, database, partitions = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    logging.getLogger("tornado.access").disabled = True
    client = motor.motor_tornado.MotorClient(uri, maxPoolSize=32)
    app = tornado.web.Application(
        [(r"/v2/queues/([A-Za-z0-9_.-]{1,64})/messages",
          Messages, {"client": client, "database": database, "partitions": partitions})])
    server = tornado.httpserver.HTTPServer(app)
    server.listen(port, "127.0.0.1", backlog=1024)
    tornado.ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
