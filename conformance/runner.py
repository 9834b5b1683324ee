"""The runner: plays a provider's cases against a wallet URL and gives each case a verdict.

A case is a name, where its rule comes from, and a list of steps; a step sends requests and checks
the answers and the balance the wallet itself reports, so the runner needs no access to the
wallet's database. The cases are in conformance/hp100.py and conformance/hash.py.

Verdicts: PASS; FAIL (a rule of the provider's is broken); WARN (a rule that is this project's
decision, not the provider's, is broken: a FAIL with --strict); SKIP (the case needs an option that
was not given, or --no-concurrency). Every case ends with the target's clean-up, pass or fail: what
the case left open (a debited bet, an unsettled order) is settled, or the report says it stayed open.
"""
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

PASS, FAIL, WARN, SKIP = "PASS", "FAIL", "WARN", "SKIP"
PROVIDER, OURS = "provider", "ours"  # whose rule a check enforces


class CaseFailed(Exception):
    def __init__(self, sent, got, expected: str, rule: str = PROVIDER):
        super().__init__(expected)
        self.sent, self.got, self.expected, self.rule = sent, got, expected, rule


@dataclass
class Case:
    name: str
    steps: list
    source: str = ""          # where the rule is written, e.g. "100HP §4.4"
    ours: str = ""            # set: the rule is this project's decision (what it decides)
    concurrent: bool = False  # skipped with --no-concurrency
    needs: str = ""           # the option the case needs, e.g. "--blocked-session"


@dataclass
class Result:
    name: str
    verdict: str
    source: str = ""
    ours: str = ""
    problems: list = field(default_factory=list)   # {"sent", "got", "expected", "rule"}
    left_open: list = field(default_factory=list)  # what the clean-up could not settle
    why_skipped: str = ""
    seconds: float = 0.0


class Ids:
    """Fresh ids per case: "T1" is the same UUID everywhere in one case, a new one in the next."""

    def __init__(self):
        self.ids = {}

    def __getitem__(self, name):
        return self.ids.setdefault(name, str(uuid.uuid4()))


class Context:
    """What the steps of one case share: the target, the case's ids, and its problems so far."""

    def __init__(self, target, case: Case, strict: bool):
        self.target, self.ids, self.strict = target, Ids(), strict
        self.default_rule = OURS if case.ours else PROVIDER
        self.warnings = []
        self._lock = threading.Lock()

    def check(self, condition: bool, sent, got, expected: str, rule: str | None = None) -> bool:
        """A provider's rule stops the case (FAIL); one of ours is noted (WARN) and the case goes
        on, unless --strict. `rule` None: the case's own (ours if the case is a decision)."""
        if condition:
            return True
        rule = rule or self.default_rule
        if rule == PROVIDER or self.strict:
            raise CaseFailed(sent, got, expected, rule)
        with self._lock:
            self.warnings.append({"sent": sent, "got": got, "expected": expected, "rule": OURS})
        return False


def at_once(calls):
    """Run the calls in parallel threads; their results in order."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def run(cases, target, *, strict=False, concurrency=True, options=(), only=None) -> list[Result]:
    """Every case in order; `options` names the optional inputs given (e.g. "--second-session")."""
    results = []
    for case in cases:
        if only and only.lower() not in case.name.lower():
            continue
        if case.concurrent and not concurrency:
            results.append(Result(case.name, SKIP, case.source, case.ours, why_skipped="--no-concurrency"))
        elif case.needs and case.needs not in options:
            results.append(Result(case.name, SKIP, case.source, case.ours, why_skipped=f"needs {case.needs}"))
        else:
            results.append(run_case(case, target, strict))
    return results


def run_case(case: Case, target, strict: bool) -> Result:
    context = Context(target, case, strict)
    result = Result(case.name, PASS, case.source, case.ours)
    started = time.monotonic()
    target.begin_case()
    try:
        for step in case.steps:
            step(context)
    except CaseFailed as failed:
        result.problems.append({"sent": failed.sent, "got": failed.got, "expected": failed.expected,
                                "rule": failed.rule})
        result.verdict = FAIL
    except OSError as exc:  # NoAnswer carries the request it got no answer to
        explain = getattr(target, "no_answer", None)
        result.problems.append({"sent": getattr(exc, "sent", None), "got": f"no answer: {exc}",
                                "expected": explain(exc) if explain and hasattr(exc, "kind") else "an answer",
                                "rule": PROVIDER})
        result.verdict = FAIL
    except Exception as exc:  # an answer the kit could not read: the wallet's mistake, shown as one
        result.problems.append({"sent": None, "got": f"{type(exc).__name__}: {exc}",
                                "expected": "an answer in the protocol's format",
                                "rule": PROVIDER, "trace": traceback.format_exc(limit=3)})
        result.verdict = FAIL
    finally:
        result.left_open = target.clean_up()
    result.problems[:0] = context.warnings
    if result.verdict == PASS and context.warnings:
        result.verdict = WARN
    result.seconds = time.monotonic() - started
    return result


def exit_status(results: list[Result]) -> int:
    """0: nothing failed (warnings allowed); 1: a case failed."""
    return 1 if any(r.verdict == FAIL for r in results) else 0
