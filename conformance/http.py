"""One HTTP POST with the standard library: (status, JSON body or raw text, content type).

Numbers with a fraction are read as Decimal, so a balance is compared digit for digit."""
import http.client
import json
from decimal import Decimal
from urllib.parse import urlsplit


def post(url: str, body: bytes, headers=None, timeout: float = 15):
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("POST", parts.path, body=body,
                           headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        raw = response.read()
        try:
            parsed = json.loads(raw, parse_float=Decimal)
        except ValueError:
            parsed = raw.decode("utf-8", "replace")[:500]
        return response.status, parsed, response.getheader("Content-Type", "")
    finally:
        connection.close()
