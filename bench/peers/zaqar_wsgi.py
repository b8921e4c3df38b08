"""OpenStack Zaqar's own WSGI application (Debian's zaqar-server), for
uwsgi, with the configuration file named by ZAQAR_CONF
(bench/peers/README.md).

    ZAQAR_CONF=zaqar.conf uwsgi_python3 --http-socket ... --wsgi-file zaqar_wsgi.py

Zaqar runs unmodified: this only hands it its configuration file, as
zaqar-server's command line would, and exposes its application to uwsgi.
"""

import os
import sys

sys.argv = ["zaqar-server", "--config-file", os.environ["ZAQAR_CONF"]]

from zaqar.transport.wsgi.app import application  # noqa: E402,F401
