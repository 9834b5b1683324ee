"""`gunicorn app:app` and `flask --app app`: the wallet, built from the environment by
wallet/app.py's create_app (tests and embedders call that themselves, with settings of their own).

`flask --app app conformance ...` is `python -m conformance ...` (the kit, conformance/): it is
added here, to the command line's app, so that no wallet module imports the kit.
"""
from wallet.app import create_app


def __getattr__(name):
    """`app` is built on first use, so that importing this module builds nothing."""
    if name == "app":
        from conformance.cli import conformance  # optional: delete with conformance/

        app = globals()["app"] = create_app()
        app.cli.add_command(conformance)
        return app
    raise AttributeError(name)
