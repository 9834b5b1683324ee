"""docs/porting.md says what a port must write, and stays true to the code: every storage primitive
of Casino (100HP) and HashWallet (Hash) has a docstring and a row in its provider's table, and the
retry table names every failure wallet/core/db.py's `transaction` runs again; of the ASGI servers,
uvicorn cannot send 100HP's HTTP 601-702 and Hypercorn can."""
import http.client
import inspect
import re
import subprocess
import sys
import time

import pytest
from conftest import ROOT
from dbservers import free_port

from wallet.core import db
from wallet.hash.orders import HashWallet
from wallet.hp100.casino import Casino

PORTING = (ROOT / "docs" / "porting.md").read_text()


def table(heading: str) -> set[str]:
    """The primitive names in the first column of the table under `### heading`."""
    section = PORTING.split(f"### {heading}\n", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^\| `(\w+)\(", section, re.M))


@pytest.mark.parametrize("rules, heading", [(Casino, "100HP"), (HashWallet, "Hash")])
def test_every_primitive_has_a_docstring_and_a_row(rules, heading):
    primitives = rules.__abstractmethods__
    assert {name for name in primitives if not inspect.getdoc(getattr(rules, name))} == set()
    assert table(heading) == set(primitives)


def test_the_retry_table_names_what_transaction_retries():
    retry_table = PORTING.split("| failure | PostgreSQL", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"`([^`]+)`|\b(\d{4})\b", retry_table))
    named = {code for pair in named for code in pair if code}
    retried = {str(code) for code in db._RETRYABLE} | set(db._RETRYABLE_SQLITE)
    assert retried <= named, f"retried by db.transaction but not in docs/porting.md: {retried - named}"
    assert named <= retried, f"in docs/porting.md but not retried: {named - retried}"


# docs/porting.md, "HTTP 601-702 on an ASGI server": a bare ASGI app answering 100HP's 607, served by
# each server; uvicorn closes the connection instead (the day it sends 607, the doc must change).
ANSWER_607 = """
async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 607,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"errCode": 607}'})
"""
SERVE = {
    "uvicorn": "import uvicorn\nuvicorn.run(app, host='127.0.0.1', port=PORT, log_level='critical')",
    "hypercorn": "import asyncio, hypercorn.asyncio, hypercorn.config\nconfig = hypercorn.config.Config()\n"
                 "config.bind = ['127.0.0.1:PORT']\nasyncio.run(hypercorn.asyncio.serve(app, config))",
}


@pytest.mark.parametrize("server, status", [("uvicorn", None), ("hypercorn", 607)])
def test_which_asgi_server_sends_a_status_above_599(server, status):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", ANSWER_607 + SERVE[server].replace("PORT", str(port))],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", "/100hp/auth", b"{}")
                break
            except ConnectionRefusedError:
                assert process.poll() is None and time.monotonic() < deadline, f"{server} did not start"
                time.sleep(0.1)
        if status is None:
            with pytest.raises(http.client.RemoteDisconnected):
                conn.getresponse()
        else:
            response = conn.getresponse()
            assert (response.status, response.read()) == (status, b'{"errCode": 607}')
        conn.close()
    finally:
        process.terminate()
        process.wait(10)
