"""Instructions per 100HP withdrawal, the wallet's and the raw-driver reference's, counted by
valgrind's callgrind: within 1 % on every run, whatever else the machine is doing, so a change of a
few percent shows (the wrk figures of tests/bench/run.py move by 5-20 % between runs on 2 shared cores).

    python tests/bench/instructions.py [N]                # wallet and raw; needs valgrind (Debian package)
    python tests/bench/instructions.py [N] --components   # and where the wallet's instructions go
    python tests/bench/instructions.py [N] --database postgres   # or mariadb: the client's side
    python tests/bench/instructions.py [N] --call hash-add,hash-update   # Hash calls instead (withdrawal: the default)

In-process, on SQLite unless told: N withdrawals through each app's WSGI callable, counted after a
warm-up; the fsync of each commit is a wait, not instructions, so this is the CPU side of a call
only. On PostgreSQL and MariaDB (a throwaway server, tests/dbservers.py) only the wallet's process
is counted, not the server's work.
The wallet runs as gunicorn runs it in production: the call-log line formatted and written (to
/dev/null here) and the metrics in prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR,
files in a fresh directory); "wallet, metrics in-process" is the single-process mode.
`--call hash-add` / `--call hash-update` count one Hash order/add, or one order/update settling an
order added before counting, the same way: the body encrypted beforehand (as the benchmark's
runner does), opened, read, applied and answered by the app; the raw reference has no Hash call.

`--components` also counts the wallet with one part taken out at a time (the difference is that
part's cost) and the parts alone: Flask with a view that only parses the JSON body, the pool's
checkout with BEGIN IMMEDIATE / COMMIT and return around no statement, and one statement through
SQLAlchemy's `Connection.execute` against the same statement on the driver's cursor.
"""
import contextlib
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

# name -> what it counts; "wallet" and "raw" are the headline pair.
TARGETS = {
    "wallet": "the wallet as gunicorn runs it (call-log line, metrics in multiprocess mode)",
    "hash-add": "one encrypted Hash order/add through the wallet, as gunicorn runs it",
    "hash-update": "one encrypted Hash order/update (a settle) of an order added before, as gunicorn runs it",
    "raw": "the raw-driver reference (tests/bench/raw_app.py)",
    "wallet-inprocess-metrics": "the wallet, metrics in-process (no PROMETHEUS_MULTIPROC_DIR)",
    "wallet-no-log": "the wallet without the call-log line (logger wallet.calls off)",
    "wallet-no-metrics": "the wallet without the metrics middleware",
    "wallet-no-calllog": "the wallet without the request-id / call-log middleware",
    "wallet-no-allowlist": "the wallet without the 100HP allow-list hook (no list is set)",
    "casino": "Casino.withdrawal called directly: no Flask, validation, log or metrics",
    "testcasino": "the rules alone: TestCasino.withdrawal in memory",
    "flask": "Flask alone: a view that parses the JSON body and answers a dict",
    "pool": "db.transaction around no statement: writers' queue, pool checkout, BEGIN IMMEDIATE, COMMIT, return",
    "execute": "one SELECT by primary key through Connection.execute (in an open transaction)",
    "cursor": "the same SELECT on the driver's cursor",
}


def count(target: str, calls: int, url: str = "") -> int:
    """Run this file under callgrind for one target; the instructions it counted."""
    done = subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                           "--callgrind-out-file=/dev/null", sys.executable, __file__, "--inner",
                           target, str(calls)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "INSTRUCTIONS_DATABASE_URL": url})
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode or not found or not int(found.group(1)):
        raise RuntimeError(f"callgrind failed for {target}: {done.stderr[-1000:]}")
    return int(found.group(1))


def inner(target: str, calls: int) -> None:
    """Inside valgrind: set up, warm up, then switch counting on for `calls` calls only."""
    sys.path.insert(0, str(ROOT))
    tmp = tempfile.mkdtemp()
    url = os.environ.get("INSTRUCTIONS_DATABASE_URL") or f"sqlite:///{tmp}/instructions.db"
    if target != "wallet-inprocess-metrics":
        os.makedirs(f"{tmp}/metrics")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = f"{tmp}/metrics"  # read when prometheus_client loads
    from wallet.core import db
    wallet, player, session = wallet_with_player(url)
    engine = wallet.extensions["engine"]
    app = wallet
    if target == "raw":
        from tests.bench import raw_app
        app = raw_app.app
    elif target == "flask":
        app = _bare_flask()
    elif target == "wallet-no-log":
        logging.getLogger("wallet.calls").disabled = True
    elif target in ("wallet-no-metrics", "wallet-no-calllog"):
        unwanted = "CallMetrics" if target == "wallet-no-metrics" else "CallLog"
        app.wsgi_app = _without(app.wsgi_app, unwanted)
    elif target == "wallet-no-allowlist":
        app.before_request_funcs.pop("hp", None)

    if target in ("casino", "testcasino"):
        casino = wallet.extensions["casino"]
        if target == "testcasino":
            from wallet.hp100.testcasino import TestCasino
            casino = TestCasino()
            session = casino.open_session(casino.add_player("p", "USD", Decimal(10**9)))
        tx_ids = [str(uuid.uuid4()) for _ in range(50 + calls)]
        one = lambda i: casino.withdrawal(session, tx_ids[i], Decimal("1.00"))  # noqa: E731
    elif target == "pool":
        one = lambda i: db.transaction(engine, lambda conn: None)  # noqa: E731
    elif target in ("execute", "cursor"):
        one = _one_select(engine, target, calls)
    elif target in ("hash-add", "hash-update"):
        adds, updates = _hash_requests(player, session, 50 + calls)
        if target == "hash-update":
            for environ in adds:  # the orders to settle, added before counting
                _hash_success(b"".join(app(environ, start_response)))
        environs = updates if target == "hash-update" else adds
        one = lambda i: _hash_success(b"".join(app(environs[i], start_response)))  # noqa: E731
    else:
        environs = [withdrawal_environ(session) for _ in range(50 + calls)]
        one = lambda i: b"".join(app(environs[i], start_response))  # noqa: E731
    for i in range(50):
        one(i)
    control = ["callgrind_control", "-i"]
    subprocess.run([*control, "on", str(os.getpid())], check=True, capture_output=True)
    for i in range(50, 50 + calls):
        one(i)
    subprocess.run([*control, "off", str(os.getpid())], check=True, capture_output=True)


def wallet_with_player(url: str):
    """The wallet as gunicorn runs it in the sandbox (its log lines written to /dev/null: counted,
    not shown) on a fresh schema at `url`, and one player with a USD and a USDT wallet and a
    session: (app, player id, session token). Set PROMETHEUS_MULTIPROC_DIR before, if wanted."""
    os.environ.update(DATABASE_URL=url, HP_SECRET="s", HASH_SECRET=HASH_SECRET)
    from wallet.app import create_app
    from wallet.core import accounts, db
    wallet = create_app({"WALLET_ENV": "sandbox", "DATABASE_URL": url, "SANDBOX_DEMO": "0", "CONSOLE": "0",
                         "HP_SECRET": "s", "HASH_SECRET": HASH_SECRET, "HASH_TIMESTAMP_WINDOW_MS": "3600000"})
    logging.getLogger().handlers[0].stream = open(os.devnull, "w")
    engine = wallet.extensions["engine"]
    db.init_schema(engine, wallet.extensions["wallet.ddl"])
    player = db.transaction(engine, lambda conn: accounts.create_player(conn, "p", "USD", Decimal(10**9)))
    session = db.transaction(engine, lambda conn: (accounts.open_wallet(conn, player, "USDT", Decimal(10**9)),
                                                   accounts.create_session(conn, player))[1])
    return wallet, player, session


def post_environ(path: str, body: dict, **headers) -> dict:
    """The WSGI environ of a JSON POST of `body` to `path`, as gunicorn hands it to the app."""
    data = json.dumps(body).encode()
    return {"REQUEST_METHOD": "POST", "PATH_INFO": path, "SERVER_NAME": "bench", "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(data),
            "CONTENT_LENGTH": str(len(data)), "CONTENT_TYPE": "application/json",
            "REMOTE_ADDR": "127.0.0.1", "wsgi.errors": sys.stderr, **headers}


def withdrawal_environ(session: str) -> dict:
    """A 100HP withdrawal of 1.00 with a fresh txId (HP_SECRET "s")."""
    return post_environ("/100hp/withdrawal", {"secret": "s", "sessionId": session,
                                              "txId": str(uuid.uuid4()), "amount": "1.00"})


def start_response(status, headers, exc_info=None):
    """Any answer but 200 stops the count: only calls that did their work are counted."""
    if not status.startswith("200"):
        raise RuntimeError(status)
    return lambda data: None


HASH_SECRET = "bench-hash-secret-0123456789abcd"  # 32 bytes: the AES-256 key


def _hash_requests(player: int, token: str, count: int) -> tuple[list, list]:
    """`count` encrypted order/add environs and, for the same orders, the order/update settling each."""
    import time
    from wallet.hash.envelope import encrypt
    from wallet.hash.fields import dumps
    now = int(time.time() * 1000)

    def environ(path: str, plain: dict) -> dict:
        return post_environ(path, {"x": encrypt(dumps(plain).encode(), HASH_SECRET)}, HTTP_MERCHANT_ID="1001")
    adds, updates = [], []
    for i in range(count):  # the bodies of tests/bench/run.py's hash_lines
        order = uuid.uuid4().hex
        bet = {"timestamp": now, "request_id": order, "token": token, "user_id": player,
               "order_no": order, "username": "bench", "entry_key": "pc28-1", "round_id": i,
               "currency": "USDT", "amount": Decimal(1), "bet_info": "[]"}
        adds.append(environ("/api/v2/order/add", bet))
        updates.append(environ("/api/v2/order/update", {
            **{k: bet[k] for k in ("timestamp", "order_no", "username", "entry_key", "bet_info", "round_id")},
            "request_id": uuid.uuid4().hex, "user_id": str(player), "amount": Decimal(1),
            "currency": "USDT", "status": 1, "prize": Decimal("1.5"), "tax": 0, "bonus": 0,
            "bet_time": now, "is_win": True}))
    return adds, updates


def _hash_success(body: bytes) -> bytes:
    """A Hash answer is HTTP 200 whatever it says: only code 0 counts."""
    if json.loads(body)["code"] != 0:
        raise RuntimeError(body)
    return body


def _without(wsgi_app, class_name: str):
    """The WSGI chain with the middleware of that class left out."""
    if type(wsgi_app).__name__ == class_name:
        return wsgi_app.wsgi_app
    wsgi_app.wsgi_app = _without(wsgi_app.wsgi_app, class_name)
    return wsgi_app


def _bare_flask():
    from flask import Flask, request
    app = Flask("bare")

    @app.post("/100hp/withdrawal")
    def withdrawal():
        body = json.loads(request.get_data())
        return {"userId": "1", "currency": "USD", "balance": "1.00", "txId": body["txId"],
                "sessionId": body["sessionId"]}
    return app


def _one_select(engine, target: str, calls: int):
    """One statement, the bet lookup by txId, inside one open transaction."""
    from wallet.hp100.your_casino import BET
    conn = engine.connect()
    conn.begin()
    tx_ids = [str(uuid.uuid4()) for _ in range(50 + calls)]
    if target == "execute":
        return lambda i: conn.execute(BET, {"tx_id": tx_ids[i]}).first()
    cursor = conn.connection.driver_connection.cursor()
    compiled = BET.compile(dialect=engine.dialect)
    params = [compiled.construct_params({"tx_id": tx_id}) for tx_id in tx_ids]
    if engine.dialect.positional:  # sqlite3: ? and a tuple
        params = [tuple(p[name] for name in compiled.positiontup) for p in params]

    def one(i):
        cursor.execute(str(compiled), params[i])
        return cursor.fetchone()
    return one


CALLS = ("withdrawal", "hash-add", "hash-update")  # --call: what the headline counts


def main():
    if sys.argv[1:2] == ["--inner"]:
        return inner(sys.argv[2], int(sys.argv[3]))
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed: apt-get install valgrind")
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    calls = int(numbers[0]) if numbers else 200
    database = sys.argv[sys.argv.index("--database") + 1] if "--database" in sys.argv else "sqlite"
    chosen = sys.argv[sys.argv.index("--call") + 1] if "--call" in sys.argv else "withdrawal"
    unknown = set(chosen.split(",")) - set(CALLS)
    if unknown:
        sys.exit(f"--call: {', '.join(sorted(unknown))}? One or more of {', '.join(CALLS)}, comma-separated")
    with _database(database) as url:
        for number, call in enumerate(chosen.split(",")):
            if call == "withdrawal":
                _report(calls, url)
            else:  # a Hash call: the wallet's only, the raw reference has none
                per_call = count(call, calls, url.format(len(TARGETS) + number)) / calls
                print(f"instructions per {call}: wallet {per_call / 1000:,.0f} k", flush=True)


@contextlib.contextmanager
def _database(kind: str):
    """The URL of a fresh database of that kind: SQLite ("", a file per run) or a throwaway server."""
    if kind == "sqlite":
        yield ""
        return
    sys.path.insert(0, str(ROOT / "tests"))
    import dbservers
    server, reason = {"postgres": dbservers.start_postgres, "mariadb": dbservers.start_mariadb}[kind]()
    if server is None:
        sys.exit(reason)
    try:
        for number in range(len(TARGETS) + len(CALLS)):
            server.admin(f"CREATE DATABASE instructions{number}")
        yield server.url("instructions{}")
    finally:
        server.stop()


def _report(calls: int, url: str) -> None:
    urls = (url.format(number) for number in range(len(TARGETS)))  # a fresh database per target
    wallet, raw = count("wallet", calls, next(urls, "")) / calls, count("raw", calls, next(urls, "")) / calls
    print(f"instructions per withdrawal: wallet {wallet / 1000:,.0f} k, raw driver {raw / 1000:,.0f} k,"
          f" raw / wallet {raw / wallet:.2f}", flush=True)
    if "--components" in sys.argv:
        for target, what in TARGETS.items():
            if target not in ("wallet", "raw", *CALLS):  # the parts of a withdrawal
                per_call = count(target, calls, next(urls, "")) / calls
                taken_out = f" (wallet - this: {(wallet - per_call) / 1000:,.0f} k)" \
                    if target.startswith("wallet-") else ""
                print(f"{per_call / 1000:8,.0f} k  {target:26} {what}{taken_out}", flush=True)


if __name__ == "__main__":
    main()
