"""`flask --app app conformance ...`: the same command as `python -m conformance ...`.

A thin alias for this repository's Flask CLI: every argument goes to conformance/main.py as it is.
Loading the app for the Flask CLI builds what `create_app()` builds (the sandbox database); the
standalone `python -m conformance` builds nothing.
"""
import click

from .main import main


@click.command("conformance", add_help_option=False, context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def conformance(args):
    """Play 100HP or Hash Game against a wallet URL (python -m conformance --help)."""
    raise SystemExit(main(list(args)))
