"""The benchmark: how fast is a wallet call, against the floor of the stack and the raw driver.

    python tests/bench/run.py [--databases sqlite,postgres,mariadb] [--connections 1,16,64]
                              [--workloads hot,spread] [--duration 3] [--rounds 3] [--filled 0]
                              [--baseline DIR]

For each database (PostgreSQL and MariaDB started as throwaway servers with their default commit
durability; SQLite in WAL with synchronous=FULL) it starts `gunicorn app:app` and the raw-driver
reference (tests/bench/raw_app.py) with the same settings, drives them with wrk
(tests/bench/wallet.lua), prints one table (requests/s, p50/p99 latency, ratio to the floor measured in the same run, errors and
the first error answer; each figure the median of `--rounds` runs after a warm-up round, the calls
interleaved), and then checks the books with the audit: speed is never bought with correctness.
`--filled N` first books N ledger rows (with their bets), to show throughput does not fall as the
ledger grows. `--baseline DIR` also serves the wallet from DIR, a checkout of another commit with
the same schema (`git worktree add DIR COMMIT`), on the same database, and adds its withdrawal to
the interleaved calls: a change measured against the code before it in one run, which on a shared
machine is the only comparison that holds.
"""
import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
import dbservers  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from wallet.app import create_app  # noqa: E402
from wallet.core import accounts, db, schema  # noqa: E402
from wallet.core.audit import audit  # noqa: E402
from wallet.hash.blueprint import dumps  # noqa: E402
from wallet.hash.envelope import encrypt  # noqa: E402
from wallet.hash import schema as hash_schema  # noqa: E402
from wallet.hp100 import schema as hp_schema  # noqa: E402

HP_SECRET, HASH_SECRET, MERCHANT = "bench-hp-secret", "bench-hash-secret-0123456789abcd", "1001"
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))
GUNICORN = ["-w", str(WORKERS), "-k", os.environ.get("BENCH_WORKER_CLASS", "sync"),
            "--threads", os.environ.get("BENCH_THREADS", "1")]
WITHDRAWAL, RAW_WITHDRAWAL = "100HP withdrawal", "100HP withdrawal, raw driver"
BASELINE_WITHDRAWAL = "100HP withdrawal, --baseline"
PLAYERS = {"hot": 1, "spread": 1000}  # each workload's players: one hot wallet, or calls spread over many
CALLS = [  # (name, server, wrk mode); the first is the floor
    ("floor (Flask JSON)", "raw", "floor"),
    ("100HP balance", "wallet", "balance"),
    (WITHDRAWAL, "wallet", "withdrawal"),
    (RAW_WITHDRAWAL, "raw", "withdrawal"),
    ("100HP withdrawal+deposit", "wallet", "deposit-round"),
    ("100HP withdrawal+rollback", "wallet", "rollback-round"),
    ("Hash order/add", "wallet", "hash-add"),
    ("Hash order/update", "wallet", "hash-update"),  # settles of orders booked just before
    ("Hash order/add+update", "wallet", "hash-round"),
]


def players(engine, count) -> list:
    """`count` players with USD and USDT wallets and a session each: [(user_id, token)]."""
    def work(conn):
        made = []
        for i in range(count):
            user_id = accounts.create_player(conn, f"bench{i}", "USD", Decimal(10**12))
            accounts.open_wallet(conn, user_id, "USDT", Decimal(10**12))
            made.append((user_id, accounts.create_session(conn, user_id, "USD")))
        return made
    return db.transaction(engine, work)


def fill(engine, rows: int) -> None:
    """Book `rows` ledger rows on a filler wallet: settled bets, each a withdrawal and a deposit."""
    (user_id, _), = players(engine, 1)
    with engine.connect() as conn:
        wallet = accounts.player_wallets(conn, user_id)[0]
    top, now, batch = Decimal(10**12), schema.utcnow(), 20000
    for start in range(0, rows // 2, batch // 2):
        bets, ledger = [], []
        for i in range(start, min(start + batch // 2, rows // 2)):
            tx = str(uuid.UUID(int=i + 1))
            bets.append({"tx_id": tx, "kind": "withdrawal", "wallet_id": wallet.id, "session_id": "fill",
                         "amount": 1, "status": "settled", "win_amount": 1, "promo_id": None,
                         "created_at": now, "closed_at": now})
            ledger += [{"wallet_id": wallet.id, "provider": "100hp", "op": "withdrawal", "ref": tx,
                        "amount": -1, "balance_after": top - 1, "created_at": now},
                       {"wallet_id": wallet.id, "provider": "100hp", "op": "deposit", "ref": tx,
                        "amount": 1, "balance_after": top, "created_at": now}]
        with engine.begin() as conn:
            conn.execute(insert(hp_schema.hp_transactions), bets)
            conn.execute(insert(schema.ledger), ledger)


def hash_lines(path, sessions, count, mode) -> list:
    """Encrypted Hash requests, one per line: adds, or adds with the update of the add 256 lines back;
    the adds' order_nos."""
    now = int(time.time() * 1000)
    with open(path, "w") as out:
        opened, order_nos = [], []
        for i in range(count):
            user_id, token = sessions[i % len(sessions)]
            order = uuid.uuid4().hex
            plain = {"timestamp": now, "request_id": order, "token": token, "user_id": user_id,
                     "order_no": order, "username": "bench", "entry_key": "pc28-1", "round_id": i,
                     "currency": "USDT", "amount": Decimal(1), "bet_info": "[]"}
            out.write(_line("/api/v2/order/add", plain))
            if i == 0:  # wrk builds one request to check the script and never sends it: the first
                out.write(_line("/api/v2/order/add", plain))  # line, so the first add is there twice
            opened.append(plain)
            order_nos.append(order)
            if mode == "hash-round" and len(opened) > 256:
                bet = opened.pop(0)
                out.write(_line("/api/v2/order/update", _settle(bet["order_no"], bet["user_id"], bet["round_id"], now)))
    return order_nos


def settle_lines(path, engine, order_nos) -> None:
    """The settle of each of these orders that is booked and open, one per line, in their order."""
    orders, wallets = hash_schema.hash_orders, schema.wallets
    with engine.connect() as conn:
        booked = {row.order_no: row for row in conn.execute(
            select(orders.c.order_no, orders.c.round_id, wallets.c.player_id)
            .join_from(orders, wallets, wallets.c.id == orders.c.wallet_id)
            .where(orders.c.order_no.in_(order_nos), orders.c.status == 0))}
    now = int(time.time() * 1000)
    settles = [_line("/api/v2/order/update", _settle(o, booked[o].player_id, booked[o].round_id, now))
               for o in order_nos if o in booked]
    with open(path, "w") as out:
        out.writelines(settles[:1] + settles)  # the first line twice, as in hash_lines


def _settle(order_no, user_id, round_id, now) -> dict:
    return {"timestamp": now, "order_no": order_no, "username": "bench", "entry_key": "pc28-1",
            "bet_info": "[]", "request_id": uuid.uuid4().hex, "user_id": str(user_id),
            "round_id": str(round_id), "amount": Decimal(1), "currency": "USDT", "status": 1,
            "prize": Decimal("1.5"), "tax": 0, "bonus": 0, "bet_time": now, "is_win": True}


def _line(path, plain) -> str:
    return f"{path}\t{json.dumps({'x': encrypt(dumps(plain).encode(), HASH_SECRET)})}\n"


@contextlib.contextmanager
def server(target, url, port, ready_path, cwd=ROOT):
    metrics = tempfile.mkdtemp(prefix="bench-metrics-")
    env = {**os.environ, "WALLET_ENV": "sandbox", "DATABASE_URL": url, "HP_SECRET": HP_SECRET, "HASH_SECRET": HASH_SECRET,
           "HASH_MERCHANT_ID": MERCHANT, "SANDBOX_DEMO": "0", "CONSOLE": "0", "HASH_TIMESTAMP_WINDOW_MS": "3600000",
           # the metrics as gunicorn runs them in production: each worker writes its own files
           "PROMETHEUS_MULTIPROC_DIR": metrics}
    log = open(f"/tmp/bench-{target}-{port}.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", target, *GUNICORN, "-b",
                                f"127.0.0.1:{port}", "--log-level", "warning"],
                               cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(300):
        if subprocess.run(["curl", "-sf", f"http://127.0.0.1:{port}{ready_path}"],
                          capture_output=True).returncode == 0:
            break
        time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError(f"{target} did not start: see {log.name}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(20)
        shutil.rmtree(metrics, ignore_errors=True)


def wrk(base, mode, connections, duration, env) -> dict:
    lines_mode = mode.startswith("hash")
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", "--timeout", "10s",
               "-s", str(ROOT / "tests" / "bench" / "wallet.lua"), base]
    run_env = {**os.environ, **env, "BENCH_MODE": "lines" if lines_mode else mode,
               "BENCH_SECRET": HP_SECRET, "BENCH_MERCHANT": MERCHANT}
    done = subprocess.run(command, env=run_env, capture_output=True, text=True)
    if done.returncode or "BENCH " not in done.stdout:
        raise RuntimeError(f"wrk failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    result = json.loads(done.stdout.split("BENCH ", 1)[1])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def bench_database(kind, args, tmp) -> list:
    started = None
    if kind == "sqlite":
        url = f"sqlite:///{tmp}/bench.db"
    else:
        started, reason = {"postgres": dbservers.start_postgres,
                           "mariadb": dbservers.start_mariadb}[kind](durable=True)
        if started is None:
            print(f"{kind}: skipped ({reason})")
            return []
        started.admin("CREATE DATABASE bench")
        url = started.url("bench")
    try:
        # the set-up's own app: its transactions (1,000 players in one, the --filled ledger rows)
        # are longer than a call's CALL_DEADLINE_MS, as an operator's commands may be (docs/operations.md)
        app = create_app({"WALLET_ENV": "sandbox", "DATABASE_URL": url, "HP_SECRET": HP_SECRET, "HASH_SECRET": HASH_SECRET,
                          "SANDBOX_DEMO": "0", "CONSOLE": "0", "CALL_DEADLINE_MS": "60000"})
        engine = app.extensions["engine"]
        db.init_schema(engine, app.extensions["wallet.ddl"])
        if args.filled:
            fill(engine, args.filled)
        groups = {w: players(engine, PLAYERS[w]) for w in args.workloads}
        rows = []
        calls = list(CALLS)
        if args.baseline:  # between the withdrawal and the raw driver's: the three seconds apart
            calls.insert(3, (BASELINE_WITHDRAWAL, "baseline", "withdrawal"))
        with contextlib.ExitStack() as servers:
            bases = {"wallet": servers.enter_context(server("app:app", url, dbservers.free_port(), "/healthz")),
                     "raw": servers.enter_context(server("tests.bench.raw_app:app", url, dbservers.free_port(), "/floor"))}
            if args.baseline:
                bases["baseline"] = servers.enter_context(server("app:app", url, dbservers.free_port(), "/healthz",
                                                                 cwd=args.baseline))
            for workload in args.workloads:
                sessions_file = Path(tmp) / f"sessions-{workload}.txt"
                sessions_file.write_text("\n".join(t for _, t in groups[workload]) + "\n")
                for connections in args.connections:
                    runs = {name: [] for name, _, _ in calls}
                    # Rounds interleave the calls, so drift hits all alike; the first is a warm-up
                    # (each worker's first connection and first calls), not counted.
                    for _ in range(args.rounds + 1):
                        for name, target, mode in calls:
                            env = {"BENCH_SESSIONS": str(sessions_file)}
                            if mode.startswith("hash"):
                                env["BENCH_LINES"] = f"{tmp}/{mode}.txt"
                                order_nos = hash_lines(env["BENCH_LINES"], groups[workload],
                                                       int(args.duration * 3000) + 1000, mode)
                            if mode == "hash-update":  # the orders booked first, by adds not counted
                                wrk(bases[target], "hash-add", connections, args.duration * 3 // 2 + 1, env)
                                settle_lines(env["BENCH_LINES"], engine, order_nos)
                            runs[name].append(wrk(bases[target], mode,
                                                  connections, args.duration, env))
                    results = {name: summary(found) for name, found in runs.items()}
                    floor = results[CALLS[0][0]]["rps"]
                    for name, result in results.items():
                        rows.append((kind, workload, connections, name, result, result["rps"] / floor))
                        print_row(rows[-1], flush=True)
                    # Each round's two runs were seconds apart: the spread of these is the figure's noise.
                    by_round = ", ".join(f"{w['rps'] / r['rps']:.2f}" for w, r in
                                         zip(runs[WITHDRAWAL][1:], runs[RAW_WITHDRAWAL][1:]))
                    print(f"{'':26}withdrawal / raw driver: "
                          f"{results[WITHDRAWAL]['rps'] / results[RAW_WITHDRAWAL]['rps']:.2f} "
                          f"(round by round: {by_round})", flush=True)
                    if args.baseline:
                        by_round = ", ".join(f"{w['rps'] / r['rps']:.2f}" for w, r in
                                             zip(runs[BASELINE_WITHDRAWAL][1:], runs[RAW_WITHDRAWAL][1:]))
                        print(f"{'':26}baseline withdrawal / raw driver: "
                              f"{results[BASELINE_WITHDRAWAL]['rps'] / results[RAW_WITHDRAWAL]['rps']:.2f} "
                              f"(round by round: {by_round})", flush=True)
        problems = audit(engine, app.extensions["wallet.audits"])
        print(f"{kind}: books {'ok' if not problems else 'WRONG: ' + '; '.join(problems[:5])}", flush=True)
        engine.dispose()
        return rows
    finally:
        if started:
            started.stop()


def summary(results: list) -> dict:
    """Each figure the median of the counted runs (the first is the warm-up); the errors of every
    run, warm-up included, summed, with the first error answer seen."""
    def middle(key):
        return statistics.median(r[key] for r in results[1:])
    return {"rps": middle("rps"), "p50_us": middle("p50_us"), "p99_us": middle("p99_us"),
            "status_errors": sum(r["status_errors"] for r in results),
            "socket_errors": sum(r["socket_errors"] for r in results),
            "first_error": next((r["first_error"] for r in results if r["first_error"]), "")}


HEADER = f"{'database':9} {'workload':8} {'conns':>5}  {'call':30} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'x floor':>8} {'errors':>7}"


def print_row(row, flush=False):
    kind, workload, connections, name, r, ratio = row
    errors = r["status_errors"] + r["socket_errors"]
    print(f"{kind:9} {workload:8} {connections:>5}  {name:30} {r['rps']:8.0f} {r['p50_us'] / 1000:7.1f} "
          f"{r['p99_us'] / 1000:7.1f} {ratio:8.2f} {errors:7d}  {r['first_error']}", flush=flush)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", default="sqlite,postgres,mariadb")
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--workloads", default="hot,spread")
    parser.add_argument("--duration", type=int, default=3, help="seconds a run")
    parser.add_argument("--rounds", type=int, default=3,
                        help="counted runs of each call, after one warm-up run; the median is shown")
    parser.add_argument("--filled", type=int, default=0, help="ledger rows to book first")
    parser.add_argument("--baseline", help="a checkout of another commit: its withdrawal served beside")
    args = parser.parse_args()
    args.connections = [int(c) for c in args.connections.split(",")]
    args.workloads = args.workloads.split(",")
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    print(f"gunicorn {' '.join(GUNICORN)}; wrk -t1, median of {args.rounds} runs of {args.duration:g} s "
          f"after a warm-up run; {args.filled} ledger rows booked first")
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.databases.split(","):
            bench_database(kind, args, tmp)


if __name__ == "__main__":
    main()
