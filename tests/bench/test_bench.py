"""tests/bench/run.py, the README's benchmark command, end to end on SQLite: every call answers without an
error, the table has every row, and the books are audited afterwards."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not shutil.which("wrk"), reason="wrk is not installed")
def test_the_benchmark_runs_every_call_and_checks_the_books():
    done = subprocess.run([sys.executable, "tests/bench/run.py", "--databases", "sqlite", "--connections", "2",
                           "--workloads", "hot", "--duration", "1", "--rounds", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("sqlite ")]
    assert len(rows) == 9  # the floor, 100HP balance / withdrawal / raw / two rounds, Hash add / update / round
    for row in rows:
        requests_per_second, errors = float(row[-5]), row[-1]
        assert requests_per_second > 0 and errors == "0", row
    assert re.search(r"withdrawal / raw driver: \d\.\d\d \(round by round: \d\.\d\d\)", done.stdout)
    assert "sqlite: books ok" in done.stdout


@pytest.mark.skipif("postgres" not in os.environ.get("WALLET_TEST_DATABASES", "postgres"),
                    reason="postgres: not in WALLET_TEST_DATABASES")
def test_the_server_cpu_count_runs_with_and_without_prepared_statements():
    """tests/bench/server_cpu.py, whose figures tests/bench/README.md quotes: each setting counted."""
    done = subprocess.run([sys.executable, "tests/bench/server_cpu.py", "50"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 4 and all(re.search(r"wallet +\d+ us, PostgreSQL +\d+ us", line) for line in lines)
    assert [line.split(" wallet")[0].strip() for line in lines[:2]] == [
        "prepared (psycopg's default)", "?prepare_threshold=none"]


def test_the_hash_parts_count_times_each_call_with_each_part_taken_out():
    """tests/bench/hash_parts.py, whose figures tests/bench/README.md quotes: every call answered code 0
    in every variant (a stand-in that broke a call would stop it), and a figure in every cell."""
    done = subprocess.run([sys.executable, "tests/bench/hash_parts.py", "--batch", "5", "--rounds", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {line.split(" | ")[0]: line.split(" | ")[1:] for line in done.stdout.splitlines() if " | " in line}
    assert rows["call"] == ["as served", "without decryption", "without digest", "without request_id row",
                            "without purge", "without all four"]
    for call in ("order/add", "order/update"):
        assert len(rows[call]) == 6 and all(re.fullmatch(r"\d+ us \(\d\.\d\d\)", cell) for cell in rows[call])
