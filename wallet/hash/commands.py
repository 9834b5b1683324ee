"""`flask --app app hash-encrypt`: a Hash request encrypted by hand, with its curl line
(docs/hash.md §3: the envelope). `hash-reconcile` lives in wallet/hash/reconcile.py."""
import json
import shlex
import time
import uuid
from decimal import Decimal

import click
from flask import current_app
from flask.cli import with_appcontext

from ..core.commands import sandbox_only
from .fields import dumps
from .envelope import encrypt


@click.command("hash-encrypt")
@with_appcontext
@sandbox_only
@click.argument("plaintext")
@click.option("--path", default="/api/v2/user/info", show_default=True,
              help="The merchant endpoint, for the curl line.")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True)
def hash_encrypt(plaintext, path, url):
    """Encrypt a Hash request by hand: PLAINTEXT is its JSON; `timestamp` and `request_id` are
    added when missing. Prints the body and a curl line for this wallet's settings."""
    try:
        fields = json.loads(plaintext, parse_float=Decimal)  # amounts kept digit for digit
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}") from None
    fields.setdefault("timestamp", int(time.time() * 1000))
    fields.setdefault("request_id", uuid.uuid4().hex)
    config = current_app.config
    body = json.dumps({"x": encrypt(dumps(fields).encode(), config["HASH_SECRET"],
                                    config["HASH_IV_MODE"])})
    click.echo(body)
    click.echo(f"curl -s -X POST {url}{path} -H 'Content-Type: application/json' "
               f"-H 'merchant-id: {config['HASH_MERCHANT_ID']}' -d {shlex.quote(body)}")
