"""CPU per 100HP withdrawal on both sides, the wallet's process and the PostgreSQL server's, with
psycopg's prepared statements (its default, which the wallet keeps) and without
(`?prepare_threshold=none`, for PgBouncer's transaction pooling: docs/scaling.md).

    python tests/bench/server_cpu.py [N]

In-process: N withdrawals through the wallet's WSGI callable on a throwaway server
(tests/dbservers.py), after a warm-up; the CPU time (user + system) of this process and of the
server's processes (its postmaster, and the backends it forked) read from the kernel around them.
CPU time, not wall time: a busy machine slows both alike, so the two settings still compare.
"""
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
import dbservers  # noqa: E402
from tests.bench.instructions import start_response, wallet_with_player, withdrawal_environ  # noqa: E402


def server_seconds(postmaster: int) -> float:
    """User + system CPU of the server: the postmaster's own and its reaped children's, and each
    live backend's."""
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
    ticks = 0
    for pid in [postmaster, *map(int, children)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a backend that ended meanwhile: its time is in the postmaster's
            continue
        ticks += int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if pid == postmaster else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def per_withdrawal(url: str, postmaster: int, calls: int) -> tuple[float, float]:
    """Microseconds of CPU a withdrawal: (the wallet's process, the server)."""
    app, _, session = wallet_with_player(url)
    engine = app.extensions["engine"]
    for _ in range(200):  # warm-up: the connection, and each statement past psycopg's 5th run
        b"".join(app(withdrawal_environ(session), start_response))
    requests = [withdrawal_environ(session) for _ in range(calls)]
    own, server = own_seconds(), server_seconds(postmaster)
    for environ in requests:
        b"".join(app(environ, start_response))
    own, server = own_seconds() - own, server_seconds(postmaster) - server
    engine.dispose()
    return own / calls * 1e6, server / calls * 1e6


def main():
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    server, reason = dbservers.start_postgres()
    if server is None:
        sys.exit(reason)
    try:
        for number, (what, query) in enumerate([("prepared (psycopg's default)", ""),
                                                ("?prepare_threshold=none", "?prepare_threshold=none")] * 2):
            server.admin(f"CREATE DATABASE cpu{number}")
            own, by_server = per_withdrawal(server.url(f"cpu{number}") + query, server.process.pid, calls)
            print(f"{what:30} wallet {own:6.0f} us, PostgreSQL {by_server:6.0f} us of CPU a withdrawal",
                  flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
