"""The conformance runner: plays a provider's side against any wallet URL and reports a checklist.

A case is a name and a list of steps; a step sends one request (or several at once) and checks the
answer and the balance the wallet itself reports before and after, so the runner needs no access to
the wallet's database. The cases themselves are in conformance/hp100.py and conformance/hash.py.
"""
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field


class CaseFailed(Exception):
    def __init__(self, sent, got, expected: str):
        super().__init__(expected)
        self.sent, self.got, self.expected = sent, got, expected


@dataclass
class Case:
    name: str
    steps: list
    concurrent: bool = False  # skipped with --no-concurrency


@dataclass
class Result:
    name: str
    passed: bool
    skipped: bool = False
    failure: dict = field(default_factory=dict)


class Ids:
    """Fresh ids per case: "$T1" is the same id everywhere in one case, a new one in the next."""

    def __init__(self):
        self.ids = {}

    def __getitem__(self, name):
        return self.ids.setdefault(name, str(uuid.uuid4()))


def check(condition: bool, sent, got, expected: str) -> None:
    if not condition:
        raise CaseFailed(sent, got, expected)


def at_once(calls):
    """Run the calls in parallel threads; their results in order."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def run(cases, target, concurrency=True) -> list[Result]:
    results = []
    for case in cases:
        if case.concurrent and not concurrency:
            results.append(Result(case.name, True, skipped=True))
            continue
        ids = Ids()
        try:
            for step in case.steps:
                step(target, ids)
            results.append(Result(case.name, True))
        except CaseFailed as failed:
            results.append(Result(case.name, False, failure={
                "sent": failed.sent, "got": failed.got, "expected": failed.expected}))
        except OSError as exc:
            results.append(Result(case.name, False, failure={
                "sent": None, "got": f"no answer: {exc}", "expected": "an answer"}))
    return results


def report(title: str, results: list[Result], as_json: bool, note: str = "") -> str:
    passed = sum(r.passed and not r.skipped for r in results)
    failed = sum(not r.passed for r in results)
    skipped = sum(r.skipped for r in results)
    if as_json:
        return json.dumps({"title": title, "passed": passed, "failed": failed, "skipped": skipped,
                           "cases": [r.__dict__ for r in results]}, indent=2, default=str)
    lines = [title] + ([note] if note else [])
    for r in results:
        lines.append(f"  {'SKIP' if r.skipped else 'PASS' if r.passed else 'FAIL'}  {r.name}")
        if not r.passed:
            lines += [f"        sent:     {_short(r.failure['sent'])}",
                      f"        got:      {_short(r.failure['got'])}",
                      f"        expected: {r.failure['expected']}"]
    lines.append(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return "\n".join(lines)


def _short(value, limit=400) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "..."
