#!/usr/bin/python3
# A few store operations for tests, with pymongo (Debian's python3-pymongo):
# writing documents the way Zaqar's MongoDB driver does and counting them.
#
#   mongo.py URI insert-messages PROJECT QUEUE N   Zaqar-shaped messages
#   mongo.py URI count-messages PROJECT QUEUE      prints the count
#
# The partition is Zaqar's: crc32(project + queue) % 2 (zlib's crc32).
import datetime
import sys
import zlib

import pymongo


def collection(client, db, project, queue, partitions=2):
    n = zlib.crc32((project + queue).encode('utf-8')) % partitions
    return client['%s_messages_p%d' % (db, n)]['messages']


def main():
    uri, action, project, queue = sys.argv[1:5]
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
    db = pymongo.uri_parser.parse_uri(uri)['database'] or 'zaqar'
    col = collection(client, db, project, queue)
    scoped = project + '/' + queue

    if action == 'insert-messages':
        now = datetime.datetime.utcnow()
        docs = [{'p_q': scoped, 't': 3600,
                 'e': now + datetime.timedelta(seconds=3600),
                 'u': 'fake-client', 'c': {'id': None, 'e': now, 'c': 0},
                 'd': now, 'b': {'n': i}, 'k': i + 1, 'tx': None}
                for i in range(int(sys.argv[5]))]
        col.insert_many(docs)
    elif action == 'count-messages':
        print(col.count_documents({'p_q': scoped}))
    else:
        sys.exit('unknown action ' + action)


main()
