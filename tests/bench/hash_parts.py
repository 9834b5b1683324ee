"""CPU time of a Hash order/add and order/update against a 100HP withdrawal's, and how much of it
is the Hash protocol's own work, which a withdrawal does not do: opening the AES envelope
(docs/hash.md §3), the request digest and the request_id's row (docs/hash.md §11.2), the purge of old
request_ids. Each part is taken out in turn, then all four together, and the calls timed again.

    python tests/bench/hash_parts.py [--batch 300] [--rounds 12]

In-process on SQLite, as gunicorn runs the app (the call-log line written to /dev/null, the metrics
in multiprocess mode): batches of withdrawals, adds and updates (each update settling an add of
its batch) through the WSGI callable, every variant in every round, each round starting with
another, so that drift hits all alike; the median of the rounds. CPU time (time.process_time:
user + system), in calls as served, where each library's code and data are cold: a part costs
several times what it costs in a tight loop.

A part is taken out in this process only, never in the app's code: the envelope opened beforehand
(its JSON is still parsed at call time), a constant digest, no request_id row claimed (every request
is new here), no purge. What is left is the rest of a Hash call: Flask, the field rules, the
order rules and their statements, the answer.
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.bench.instructions import (HASH_SECRET, _hash_requests, _hash_success,  # noqa: E402
                                      start_response, wallet_with_player, withdrawal_environ)

PARTS = {  # column -> what is taken out
    "decryption": "the envelope: Base64, AES-256-CBC, the padding",
    "digest": "the request digest (canonical JSON, SHA-256)",
    "request_id row": "the request_id's INSERT-or-nothing",
    "purge": "the purge of old request_ids, every PURGE_EVERY-th call",
}
VARIANTS = [(), *((part,) for part in PARTS), tuple(PARTS)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=300, help="calls of each kind in a batch")
    parser.add_argument("--rounds", type=int, default=12, help="rounds counted, after one warm-up")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    os.makedirs(f"{tmp}/metrics")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = f"{tmp}/metrics"  # read when prometheus_client loads
    app, player, session = wallet_with_player(f"sqlite:///{tmp}/hash_parts.db")
    adds, updates = _hash_requests(player, session, args.batch * (args.rounds + 1) * len(VARIANTS))
    withdrawals = [withdrawal_environ(session) for _ in range(args.batch * (args.rounds + 1))]
    opened = _opened_beforehand(adds + updates)

    def cpu_per_call(environs, check=lambda body: body) -> float:
        start = time.process_time()
        for environ in environs:
            check(b"".join(app(environ, start_response)))
        return (time.process_time() - start) / len(environs) * 1e6

    times = {(call, variant): [] for variant in VARIANTS for call in ("order/add", "order/update")}
    times["withdrawal"] = []
    def batch(n: int) -> slice:
        return slice(n * args.batch, (n + 1) * args.batch)

    for round_ in range(args.rounds + 1):  # round 0 warms up
        spent = {"withdrawal": cpu_per_call(withdrawals[batch(round_)])}
        turn = round_ % len(VARIANTS)  # each round starts with another variant: no order favours one
        for n, variant in enumerate(VARIANTS[turn:] + VARIANTS[:turn]):
            hash_batch = batch(round_ * len(VARIANTS) + n)
            with _taken_out(variant, opened):
                spent["order/add", variant] = cpu_per_call(adds[hash_batch], _hash_success)
                spent["order/update", variant] = cpu_per_call(updates[hash_batch], _hash_success)
        if round_:
            for key, value in spent.items():
                times[key].append(value)
    _report({key: statistics.median(values) for key, values in times.items()}, args)


def _opened_beforehand(environs) -> dict:
    """Each request's `x` -> its plaintext as JSON text, so that opening it costs only the parse."""
    from wallet.hash import envelope, fields
    opened = {}
    for environ in environs:
        x = json.loads(environ["wsgi.input"].getvalue())["x"]
        opened[x] = fields.dumps(envelope.decrypt(x, HASH_SECRET, "prefix"))
    return opened


@contextlib.contextmanager
def _taken_out(parts: tuple, opened: dict):
    from wallet.hash import blueprint, envelope, fields, orders
    from wallet.hash.sql_wallet import SqlHashWallet
    stand_ins = {
        "decryption": (blueprint, "decrypt", lambda x, secret, iv_mode: envelope._JSON.decode(opened[x])),
        "digest": (fields, "request_digest", lambda endpoint, plain: "0" * 64),
        "request_id row": (SqlHashWallet, "claim_request", lambda self, conn, request: None),
        "purge": (orders, "PURGE_EVERY", 10**9),
    }
    with contextlib.ExitStack() as undo:
        for part in parts:
            owner, name, stand_in = stand_ins[part]
            undo.callback(setattr, owner, name, getattr(owner, name))
            setattr(owner, name, stand_in)
        yield


def _report(median: dict, args) -> None:
    withdrawal = median["withdrawal"]
    print(f"CPU time per call, in-process on SQLite (median of {args.rounds} rounds of {args.batch} "
          f"calls); in brackets, against the withdrawal's")
    print(f"withdrawal: {withdrawal:.0f} us")
    header = ["as served", *(f"without {part}" for part in PARTS), "without all four"]
    print("call | " + " | ".join(header))
    for call in ("order/add", "order/update"):
        cells = [f"{median[call, variant]:.0f} us ({median[call, variant] / withdrawal:.2f})" for variant in VARIANTS]
        print(f"{call} | " + " | ".join(cells))
    for part, what in PARTS.items():
        print(f"  {part}: {what}")


if __name__ == "__main__":
    main()
