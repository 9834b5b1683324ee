"""`gunicorn app:app` and `flask --app app`: the wallet, built from the environment by
wallet/app.py's create_app (tests and embedders call that themselves, with settings of their own)."""
from wallet.app import create_app


def __getattr__(name):
    """`app` is built on first use, so that importing this module builds nothing."""
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(name)
