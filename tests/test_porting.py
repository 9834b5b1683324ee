"""docs/porting.md says what a port must write, and stays true to the code: each row of "What to
take" lists exactly the files and packages its file loads; every storage primitive of Casino
(100HP) and HashWallet (Hash) has a docstring and a row in its provider's table, and the retry table
names every failure wallet/core/db.py's `transaction` runs again; of the ASGI servers, uvicorn
cannot send 100HP's HTTP 601-702 and Hypercorn can."""
import http.client
import importlib.metadata
import inspect
import json
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


def what_to_take() -> dict[str, tuple[set[str], set[str]]]:
    """Each row of "What to take": the file taken -> (the files it imports, the distributions)."""
    section = PORTING.split("## What to take\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) != 4 or not cells[1].startswith("`wallet/"):
            continue
        take, = re.findall(r"`(wallet/[\w/]+\.py)`", cells[1])
        packages = set() if cells[3] == "the standard library" else {cells[3].lower()}
        rows[take] = (set(re.findall(r"`(wallet/[\w/]+\.py)`", cells[2])), packages)
    return rows


LOADS = """
import importlib.metadata, json, pathlib, sys
before = set(sys.modules)
import {module}
root = pathlib.Path.cwd()
loaded = [sys.modules[name] for name in set(sys.modules) - before]
ours = root / "wallet"  # not a .venv inside the checkout (the README's commands make one there)
files = sorted(str(pathlib.Path(m.__file__).relative_to(root)) for m in loaded
               if getattr(m, "__file__", None) and pathlib.Path(m.__file__).is_relative_to(ours))
tops = {{m.__name__.split(".")[0] for m in loaded}} - set(sys.stdlib_module_names)
dists = sorted({{d.lower() for top in tops for d in importlib.metadata.packages_distributions().get(top, [])}})
print(json.dumps([files, dists]))
"""


def loads(path: str) -> tuple[set[str], set[str]]:
    """The files under the repository and the distributions `import` of the file loads, in a fresh
    interpreter."""
    module = path.removesuffix(".py").replace("/", ".")
    run = subprocess.run([sys.executable, "-c", LOADS.format(module=module)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=True)
    files, dists = json.loads(run.stdout.splitlines()[-1])
    return set(files), set(dists)


def requirements(dists: set[str]) -> set[str]:
    """What the distributions require (any extra): the dependencies they bring along."""
    return {normal(re.match(r"[\w.-]+", req).group()) for dist in dists
            for req in importlib.metadata.requires(dist) or []}


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_what_to_take_lists_what_each_file_loads():
    rows = what_to_take()
    assert {"wallet/hp100/fields.py", "wallet/hash/fields.py", "wallet/hp100/casino.py",
            "wallet/hash/orders.py"} <= set(rows)
    for take, (imports, packages) in rows.items():
        files, dists = loads(take)
        packages_run = {f for f in files if f.endswith("__init__.py")}
        assert files - packages_run == {take} | imports, take
        assert packages_run <= {"wallet/__init__.py", "wallet/hp100/__init__.py", "wallet/hash/__init__.py"}
        dists = {normal(dist) for dist in dists}
        assert packages <= dists <= packages | requirements(packages), take


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
