"""OpenStack Zaqar's own WSGI application (Debian's zaqar-server), for
uwsgi, with the configuration file named by ZAQAR_CONF
(bench/peers/README.md).

    ZAQAR_CONF=zaqar.conf uwsgi_python3 --http-socket ... --wsgi-file zaqar_wsgi.py

Zaqar itself is unchanged. Two calls it makes at start and on every post
are refused by FerretDB 1.24 with "not implemented yet" (code 238), where
MongoDB accepts them; for those two only, the call is retried without the
option FerretDB lacks:
- create_index(..., expireAfterSeconds=N): FerretDB has no TTL indexes.
  Without one, expired messages stay in the store until deleted; Zaqar's
  reads leave them out by their expiry time anyway.
- find_one_and_update(..., projection=...) (the queue's marker counter):
  the whole document comes back instead of the projected fields.
"""

import os
import sys

import pymongo.collection
import pymongo.errors

NOT_IMPLEMENTED = 238

_create_index = pymongo.collection.Collection.create_index
_find_one_and_update = pymongo.collection.Collection.find_one_and_update


def create_index(self, keys, **kwargs):
    try:
        return _create_index(self, keys, **kwargs)
    except pymongo.errors.OperationFailure as e:
        if e.code != NOT_IMPLEMENTED or "expireAfterSeconds" not in kwargs:
            raise
        kwargs.pop("expireAfterSeconds")
        return _create_index(self, keys, **kwargs)


def find_one_and_update(self, filter, update, projection=None, **kwargs):
    try:
        return _find_one_and_update(self, filter, update, projection, **kwargs)
    except pymongo.errors.OperationFailure as e:
        if e.code != NOT_IMPLEMENTED or projection is None:
            raise
        return _find_one_and_update(self, filter, update, None, **kwargs)


pymongo.collection.Collection.create_index = create_index
pymongo.collection.Collection.find_one_and_update = find_one_and_update

sys.argv = ["zaqar-server", "--config-file", os.environ["ZAQAR_CONF"]]

from zaqar.transport.wsgi.app import application  # noqa: E402,F401
