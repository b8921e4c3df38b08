"""Python helpers the benchmarks share (their shell ones are in lib.sh)."""
import json
import urllib.error
import urllib.request


def http(port, method, path, headers, body=None, timeout=30):
    """(status, body bytes, headers) of one request to 127.0.0.1:port;
    body: sent as JSON"""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data,
                                 method=method, headers=dict(headers))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)
