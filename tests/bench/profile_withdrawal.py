"""Profile the hottest path: N 100HP withdrawals through the Flask app in-process (no HTTP), on a
fresh SQLite database. Prints the time per call and the top functions by cumulative time.

    python tests/bench/profile_withdrawal.py [N] [DATABASE_URL]
"""
import cProfile
import logging
import pstats
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from wallet.app import create_app  # noqa: E402
from wallet.core import accounts, db  # noqa: E402


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    url = sys.argv[2] if len(sys.argv) > 2 else f"sqlite:///{tempfile.mkdtemp()}/profile.db"
    logging.getLogger("wallet.calls").setLevel(logging.WARNING)  # the call log is not the subject
    app = create_app({"WALLET_ENV": "sandbox", "DATABASE_URL": url, "SANDBOX_DEMO": "0", "CONSOLE": "0", "HP_SECRET": "s"})
    engine = app.extensions["engine"]
    db.init_schema(engine, app.extensions["wallet.ddl"])
    session = db.transaction(engine, lambda c: accounts.create_session(
        c, accounts.create_player(c, "p", "USD", Decimal(10**9))))
    client = app.test_client()
    bodies = [{"secret": "s", "sessionId": session, "txId": str(uuid.uuid4()), "amount": "1.00"}
              for _ in range(count)]
    for body in bodies[:100]:  # warm up: statement caches, connection pool
        client.post("/100hp/withdrawal", json=body)
    half = (count + 100) // 2
    started = time.perf_counter()
    for body in bodies[100:half]:
        client.post("/100hp/withdrawal", json=body)
    print(f"{(time.perf_counter() - started) / (half - 100) * 1000:.3f} ms per withdrawal, not profiled")
    bodies = bodies[half - 100:]
    count = len(bodies)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for body in bodies[100:]:
        assert client.post("/100hp/withdrawal", json=body).status_code == 200
    profiler.disable()
    elapsed = time.perf_counter() - started
    print(f"{(elapsed / (count - 100)) * 1000:.3f} ms per withdrawal (profiled) on {engine.dialect.name}")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(70)


if __name__ == "__main__":
    main()
