"""Instructions per 100HP withdrawal, the wallet's and the raw-driver reference's, counted by
valgrind's callgrind: within 1 % on every run, whatever else the machine is doing, so a change of a
few percent shows (the wrk figures of tests/bench/run.py move by 5-20 % between runs on 2 shared cores).

    python tests/bench/instructions.py [N]        # needs valgrind (Debian package)

In-process, on SQLite: N withdrawals through each app's WSGI callable, counted after a warm-up;
the fsync of each commit is a wait, not instructions, so this is the CPU side of a call only.
"""
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def count(target: str, calls: int) -> int:
    """Run this file under callgrind for one target; the instructions it counted."""
    done = subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                           "--callgrind-out-file=/dev/null", sys.executable, __file__, "--inner",
                           target, str(calls)], capture_output=True, text=True, cwd=ROOT)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode or not found or not int(found.group(1)):
        raise RuntimeError(f"callgrind failed for {target}: {done.stderr[-1000:]}")
    return int(found.group(1))


def inner(target: str, calls: int) -> None:
    """Inside valgrind: set up, warm up, then switch counting on for `calls` withdrawals only."""
    sys.path.insert(0, str(ROOT))
    url = f"sqlite:///{tempfile.mkdtemp()}/instructions.db"
    os.environ.update(DATABASE_URL=url, HP_SECRET="s")
    from wallet.app import create_app
    from wallet.core import accounts, db
    wallet = create_app({"WALLET_ENV": "sandbox", "DATABASE_URL": url, "SANDBOX_DEMO": "0", "CONSOLE": "0", "HP_SECRET": "s"})
    logging.getLogger().handlers[0].stream = open(os.devnull, "w")  # the log line is counted, not shown
    engine = wallet.extensions["engine"]
    db.init_schema(engine, wallet.extensions["wallet.ddl"])
    session = db.transaction(engine, lambda conn: accounts.create_session(
        conn, accounts.create_player(conn, "p", "USD", Decimal(10**9))))
    if target == "raw":
        from tests.bench import raw_app
        app = raw_app.app
    else:
        app = wallet

    def withdrawal_request() -> dict:
        body = json.dumps({"secret": "s", "sessionId": session, "txId": str(uuid.uuid4()),
                           "amount": "1.00"}).encode()
        return {"REQUEST_METHOD": "POST", "PATH_INFO": "/100hp/withdrawal", "SERVER_NAME": "bench",
                "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
                "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
                "CONTENT_TYPE": "application/json", "REMOTE_ADDR": "127.0.0.1",
                "wsgi.errors": sys.stderr}

    def start_response(status, headers, exc_info=None):
        if not status.startswith("200"):
            raise RuntimeError(status)

    warm = [withdrawal_request() for _ in range(50)]
    counted = [withdrawal_request() for _ in range(calls)]
    for environ in warm:
        b"".join(app(environ, start_response))
    control = ["callgrind_control", "-i"]
    subprocess.run([*control, "on", str(os.getpid())], check=True, capture_output=True)
    for environ in counted:
        b"".join(app(environ, start_response))
    subprocess.run([*control, "off", str(os.getpid())], check=True, capture_output=True)


def main():
    if sys.argv[1:2] == ["--inner"]:
        return inner(sys.argv[2], int(sys.argv[3]))
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed: apt-get install valgrind")
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    wallet, raw = count("wallet", calls) / calls, count("raw", calls) / calls
    print(f"instructions per withdrawal: wallet {wallet / 1000:,.0f} k, raw driver {raw / 1000:,.0f} k,"
          f" raw / wallet {raw / wallet:.2f}")


if __name__ == "__main__":
    main()
