"""`flask --app app conformance 100hp|hash ...`: run a provider's cases against a wallet URL.

Exit status: 0 all passed, 1 a case failed, 2 the run could not start (unreachable wallet, test
session invalid, not enough funds).
"""
import click

from . import hash as hash_cases
from . import hp100, runner
from .runner import CaseFailed


@click.group("conformance")
def conformance():
    """Play 100HP or Hash Game against a wallet (this one, or yours in any language)."""


def _start(target, funds_needed, what):
    try:
        balance = target.balance()
    except (CaseFailed, OSError) as exc:
        raise click.ClickException(f"cannot start: {getattr(exc, 'expected', exc)}; got "
                                   f"{getattr(exc, 'got', '')}") from None
    if balance < funds_needed:
        raise click.ClickException(f"{what} needs at least {funds_needed} (has {balance}): top it up")
    return balance


def _finish(title, results, as_json, before, after):
    note = f"balance before {before}, after {after} (the cases leave it as they found it, bonusWin aside)"
    click.echo(runner.report(title, results, as_json, note))
    if any(not r.passed for r in results):
        raise SystemExit(1)


@conformance.command("100hp")
@click.option("--url", required=True, help="The wallet's base, e.g. http://127.0.0.1:8000/100hp")
@click.option("--secret", required=True)
@click.option("--session", required=True, help=f"A live sessionId of a test player with >= {hp100.FUNDS_NEEDED}.")
@click.option("--second-session", help="A session of another player: isolation and userId checks.")
@click.option("--concurrency/--no-concurrency", default=True, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
def conformance_100hp(url, secret, session, second_session, concurrency, as_json):
    """The cases of spec/100hp.md §15."""
    target = hp100.Target(url, secret, session, second_session)
    before = _start(target, hp100.FUNDS_NEEDED, "the test player")
    if second_session:
        _, (status, body, _) = target.call("auth", {"sessionId": second_session})
        if status != 200:
            raise click.ClickException(f"--second-session: auth answered {status} {body}")
        target.second_user = body["userId"]
    results = runner.run(hp100.cases(bool(second_session)), target, concurrency)
    _finish(f"100HP conformance: {url}", results, as_json, before, target.balance())


@conformance.command("hash")
@click.option("--url", required=True, help="The wallet's base, e.g. http://127.0.0.1:8000")
@click.option("--merchant-id", required=True)
@click.option("--secret", required=True, help="The 32-character AES key.")
@click.option("--token", required=True, help=f"A token of a test player with >= {hash_cases.FUNDS_NEEDED}.")
@click.option("--currency", default="USDT", show_default=True)
@click.option("--iv-mode", type=click.Choice(["prefix", "key16"]), default="prefix", show_default=True)
@click.option("--concurrency/--no-concurrency", default=True, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
def conformance_hash(url, merchant_id, secret, token, currency, iv_mode, concurrency, as_json):
    """The merchant side of spec/hash.md §5 and §7."""
    target = hash_cases.Target(url, merchant_id, secret, token, currency, iv_mode)
    before = _start(target, hash_cases.FUNDS_NEEDED, "the test player")
    _, (_, body, _) = target.call("user/info", {"token": token})
    target.user_id = body["data"]["user_id"]
    results = runner.run(hash_cases.cases(), target, concurrency)
    _finish(f"Hash conformance: {url}", results, as_json, before, target.balance())
