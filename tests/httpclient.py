"""A minimal HTTP client for the end-to-end tests (stdlib only): (status, parsed JSON body, headers)."""
import http.client
import json
from urllib.parse import urlsplit


def request(base, method, path, body=None, headers=None, timeout=30, source=None):
    """`source`: the local address to call from (e.g. "127.0.0.5": any 127/8 address is this host)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, body=body,
                     headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None, dict(response.getheaders())
    finally:
        conn.close()


def post(base, path, body: bytes, headers=None):
    status, data, _ = request(base, "POST", path, body, headers)
    return status, data


def get(base, path):
    status, data, _ = request(base, "GET", path)
    return status, data
