"""tests/bench/run.py, the README's benchmark command, end to end on SQLite: every call answers without an
error, the table has every row, and the books are audited afterwards."""
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
    assert len(rows) == 8  # the floor, 100HP balance / withdrawal / raw / two rounds, Hash add / round
    for row in rows:
        requests_per_second, errors = float(row[-5]), row[-1]
        assert requests_per_second > 0 and errors == "0", row
    assert re.search(r"withdrawal / raw driver: \d\.\d\d \(round by round: \d\.\d\d\)", done.stdout)
    assert "sqlite: books ok" in done.stdout
