"""`python -m conformance 100hp|hash|soak ...`: play a provider against a wallet URL.

Runs from a checkout with only conformance/requirements.txt installed: it imports nothing from
the wallet, builds nothing and writes no file (but the --junit report you ask for).

The secret (100HP's shared secret, Hash's AES key) is read from the environment (HP_SECRET,
HASH_SECRET: the wallet's own setting names), or from --secret-file, or given with --secret, which
every user of the machine sees in `ps`.

The wallet is not trusted: each call ends by --timeout however slowly its answer comes, at most
1 MB of an answer is read, and what it answered is printed escaped (conformance/http.py, report.py).
A 702 (100HP) or 5000 (Hash) answered to a call a correct wallet must answer is a failure, never a
refusal, with or without --strict; --strict makes the rules of this project's own fail as well.

Exit status: 0 every case passed (warnings allowed), 1 a case failed (or, soak: money was lost or
doubled, or an answer was wrong), 2 the run could not start (unreachable wallet, a test session or
token that is not valid, not enough funds, no secret, bad options).
"""
import argparse
import os
import sys
from decimal import Decimal

from . import hash as hash_cases
from . import hp100, report, runner, soak
from .envelope import IV_FORMS
from .report import printable
from .runner import CaseFailed


class CannotStart(Exception):
    """The run cannot begin; the message says what to fix."""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m conformance",
        description="Play 100HP or Hash Game against a wallet (this one, or yours in any language).",
        epilog="Exit status: 0 all passed (warnings allowed), 1 a case failed, 2 the run could not start.")
    commands = top.add_subparsers(dest="command", required=True, metavar="100hp|hash|soak")

    hp = commands.add_parser("100hp", help="100HP's cases against a Game Flow API wallet",
                             description="100HP's cases against a Game Flow API wallet.")
    _hp_options(hp)
    _run_options(hp)
    hs = commands.add_parser("hash", help="Hash Game's cases against a merchant wallet",
                             description="Hash Game's cases against a no-transfer merchant wallet.")
    _hash_options(hs)
    _run_options(hs)

    play = commands.add_parser("soak", help="play the provider for N minutes, then check the money",
                               description="Play the provider as in production for N minutes: concurrent "
                                           "players, timeouts and rollbacks, late and repeated calls; then "
                                           "check from the balances the wallet reported that nothing was "
                                           "lost or doubled.")
    providers = play.add_subparsers(dest="provider", required=True, metavar="100hp|hash")
    for name, add_options in (("100hp", _hp_options), ("hash", _hash_options)):
        sub = providers.add_parser(name, help=f"soak a {name} wallet")
        add_options(sub, soak=True)
        sub.add_argument("--minutes", type=float, required=True, help="how long, e.g. 0.2 (12 seconds)")
        sub.add_argument("--threads", type=int, default=8, help="concurrent callers (default 8)")
        sub.add_argument("--timeout", type=float, default=5.0,
                         help="seconds a call may take in all before it counts as timed out (default 5)")
    return top


def _hp_options(p, soak=False):
    p.add_argument("--url", required=True, help="the wallet's base, e.g. http://127.0.0.1:8000/100hp")
    _secret_options(p, "HP_SECRET", "the shared secret 100HP sends in every request")
    if soak:
        p.add_argument("--session", required=True, action="append",
                       help="a live sessionId of a test player; repeat for more players")
        return
    p.add_argument("--session", required=True,
                   help=f"a live sessionId of a test player with at least {hp100.FUNDS_NEEDED}")
    p.add_argument("--second-session", help="a live session of another player: isolation and userId cases")
    p.add_argument("--blocked-session", help="a session of a blocked player (its cases are skipped without it)")
    p.add_argument("--closed-session", help="a session of the test player that was closed (this wallet's "
                   "close-session, or your equivalent) or has expired: auth, balance and bets on it are 604 "
                   "'session is closed' / 'session has expired'")


def _hash_options(p, soak=False):
    p.add_argument("--url", required=True, help="the wallet's base (the /api/v2 paths are added), "
                                                "e.g. http://127.0.0.1:8000")
    p.add_argument("--merchant-id", required=True)
    _secret_options(p, "HASH_SECRET", "the 32-character AES key")
    p.add_argument("--currency", default="USDT", help="default USDT")
    p.add_argument("--iv-mode", choices=IV_FORMS, default="prefix",
                   help="the IV form the wallet accepts (HASH_IV_MODE); default prefix")
    if soak:
        p.add_argument("--token", required=True, action="append",
                       help="a token of a test player; repeat for more players")
        return
    p.add_argument("--token", required=True,
                   help=f"a token of a test player with at least {hash_cases.FUNDS_NEEDED}")
    p.add_argument("--second-token", help="a token of another player (the user_id cases)")
    p.add_argument("--payout", choices=hash_cases.PAYOUTS,
                   help="what the wallet pays on a settle (HASH_PAYOUT); default: either, as long as every "
                        "settle pays by the same one")


def _secret_options(p, variable, what):
    """The secret from the environment (`variable`), a file, or the command line (which `ps` shows
    to every user of the machine: the other two are for shared machines and CI)."""
    p.set_defaults(secret_variable=variable)
    p.add_argument("--secret-file", metavar="FILE", help=f"{what}: read from FILE (one line)")
    p.add_argument("--secret", help=f"{what}, on the command line (visible in ps: prefer ${variable} "
                                    f"in the environment, or --secret-file); default ${variable}")


def read_secret(args) -> str:
    """--secret, else --secret-file, else the environment variable; CannotStart if none."""
    if args.secret:
        return args.secret
    if args.secret_file:
        try:
            with open(args.secret_file, encoding="utf-8") as f:
                return f.read().rstrip("\r\n")
        except (OSError, UnicodeError) as exc:
            raise CannotStart(f"--secret-file: {exc}") from None
    if os.environ.get(args.secret_variable):
        return os.environ[args.secret_variable]
    raise CannotStart(f"no secret: set ${args.secret_variable} in the environment, or give --secret-file FILE "
                      f"(or --secret, which ps shows)")


def _run_options(p):
    p.add_argument("--no-concurrency", action="store_true", help="skip the cases that send requests at once")
    p.add_argument("--strict", action="store_true",
                   help="fail, not warn, where a rule of this project's (not the provider's) is broken")
    p.add_argument("--only", metavar="TEXT", help="run only the cases whose name contains TEXT")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--junit", metavar="FILE", help="also write the report as JUnit XML to FILE")
    p.add_argument("--timeout", type=float, default=15.0,
                   help="seconds a call may take in all, its whole answer included (default 15)")


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        args.secret = read_secret(args)
        if args.command == "soak":
            return soak.main(args)
        run = run_100hp if args.command == "100hp" else run_hash
        return run(args)
    except CannotStart as exc:
        print(printable(f"cannot start: {exc}"), file=sys.stderr)  # it may quote the wallet's answer
        return 2


# ---- 100HP ------------------------------------------------------------------------------------------
def run_100hp(args) -> int:
    target = hp100.Target(args.url, args.secret, args.session, args.timeout)
    target.user_id = _start_100hp(target, args.session, "--session")["userId"]
    before = _funded(target.balance, hp100.FUNDS_NEEDED, "the test player")
    options = {"--second-session": args.second_session, "--blocked-session": args.blocked_session,
               "--closed-session": args.closed_session}
    if args.second_session:
        target.second_session = args.second_session
        target.second_user = _start_100hp(target, args.second_session, "--second-session")["userId"]
    target.blocked_session, target.closed_session = args.blocked_session, args.closed_session
    results = runner.run(hp100.cases(), target, strict=args.strict, concurrency=not args.no_concurrency,
                         options={name for name, value in options.items() if value}, only=args.only)
    after = _quietly(target.balance)
    note = (f"balance before {before}, after {after} (on a wallet that passes, the cases end where they "
            f"started, but for a cent per bonusWin and the lost round's cent)")
    return finish(args, f"100HP conformance: {args.url}", "conformance.100hp", results, note)


def _start_100hp(target, session, option) -> dict:
    try:
        _, (status, body, _) = target.call("auth", {"sessionId": session})
    except OSError as exc:
        raise CannotStart(f"{target.url}/auth did not answer: {exc}") from None
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("userId"), str):
        raise CannotStart(f"{option}: /auth answered {status} {body} (is the session still valid?)")
    return body


# ---- Hash ------------------------------------------------------------------------------------------
def run_hash(args) -> int:
    if len(args.secret) != 32:
        raise CannotStart("--secret must be 32 characters: it is the AES-256 key")
    target = hash_cases.Target(args.url, args.merchant_id, args.secret, args.token, args.currency,
                               args.iv_mode, args.timeout)
    target.user_id = _start_hash(target, args.token, "--token")
    target.payout = args.payout
    before = _funded(target.balance, hash_cases.FUNDS_NEEDED, "the test player")
    if args.second_token:
        target.second_token = args.second_token
        target.second_user = _start_hash(target, args.second_token, "--second-token")
    results = runner.run(hash_cases.cases(), target, strict=args.strict, concurrency=not args.no_concurrency,
                         options={"--second-token"} if args.second_token else set(), only=args.only)
    after = _quietly(target.balance)
    note = f"balance before {before}, after {after} (on a wallet that passes, the cases end where they started)"
    return finish(args, f"Hash conformance: {args.url}", "conformance.hash", results, note)


def _start_hash(target, token, option) -> int:
    try:
        _, (status, answer, _) = target.call(hash_cases.Request("user/info", {"token": token}))
    except OSError as exc:
        raise CannotStart(f"{target.url}/api/v2/user/info did not answer: {exc}") from None
    data = answer.get("data") if isinstance(answer, dict) else None
    if not (isinstance(answer, dict) and answer.get("code") == 0 and isinstance(data, dict)
            and type(data.get("user_id")) is int):
        raise CannotStart(f"{option}: user/info answered {status} {answer} (is the token valid, and are "
                          f"--merchant-id, --secret and --iv-mode the wallet's?)")
    return data["user_id"]


# ---- both --------------------------------------------------------------------------------------------
def _funded(balance, needed: Decimal, who: str) -> Decimal:
    try:
        have = balance()
    except (CaseFailed, OSError, ArithmeticError) as exc:  # ArithmeticError: not a decimal
        raise CannotStart(f"the balance of {who}: {getattr(exc, 'expected', exc)} {getattr(exc, 'got', '')}") \
            from None
    if have < needed:
        raise CannotStart(f"{who} needs at least {needed} (has {have}): top it up")
    return have


def _quietly(balance):
    try:
        return balance()
    except (CaseFailed, OSError, ArithmeticError) as exc:
        return f"unknown ({exc})"


def finish(args, title, suite, results, note) -> int:
    notes = [note]
    if args.json:
        print(report.as_json(title, results, notes))
    else:
        print(report.text(title, results, notes))
    if args.junit:
        with open(args.junit, "w", encoding="utf-8") as out:
            out.write(report.junit(suite, results))
    return runner.exit_status(results)
