"""100HP's errCodes are HTTP statuses (601-609, 702): they must pass a real reverse proxy unchanged.
nginx (Debian package) in front of gunicorn, with the proxy snippet of docs/operations.md; the wallet trusts
nginx's address (TRUSTED_PROXIES) for its IP allow-list."""
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import HP_SECRET, ROOT, TEST_CONFIG, gunicorn, new_player, tx
from dbservers import free_port
from httpclient import request

from wallet.app import create_app
from conftest import init_schema

NGINX = shutil.which("nginx", path="/usr/sbin:/usr/bin")
PROVIDER, OTHER = "127.0.0.7", "127.0.0.5"  # where the provider calls from, and someone else (both this host)
pytestmark = pytest.mark.skipif(not NGINX, reason="nginx not installed (apt-get install nginx)")


def operations_snippet() -> str:
    text = (ROOT / "docs" / "operations.md").read_text()
    return text.split("```nginx\n", 1)[1].split("```", 1)[0]


@pytest.fixture
def nginx(tmp_path):
    def start(upstream_port):
        port = free_port()
        tmp_path.chmod(0o777)
        location = operations_snippet().replace("127.0.0.1:8000", f"127.0.0.1:{upstream_port}")
        conf = tmp_path / "nginx.conf"
        conf.write_text(f"""
daemon off; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;
events {{}}
http {{
  access_log off;
  client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/proxy;
  fastcgi_temp_path {tmp_path}/fcgi; uwsgi_temp_path {tmp_path}/uwsgi; scgi_temp_path {tmp_path}/scgi;
  server {{ listen 127.0.0.1:{port}; {location} }}
}}""")
        processes.append(subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp_path)]))
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                request(base, "GET", "/healthz")
                return base
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(Path(tmp_path / "error.log").read_text())
    processes = []
    yield start
    for process in processes:
        process.terminate()
        process.wait(10)


def test_error_statuses_pass_nginx_unchanged(tmp_path, nginx):
    url = f"sqlite:///{tmp_path}/wallet.db"
    app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    init_schema(app.extensions["engine"])
    _, session = new_player(app, "10")
    user_id, broken = new_player(app, "10")
    with app.extensions["engine"].begin() as conn:  # a wallet the code cannot read: a 702
        conn.exec_driver_sql(f"UPDATE wallets SET balance = 'garbage' WHERE player_id = {user_id}")
    port = free_port()
    env = {"TRUSTED_PROXIES": "127.0.0.1", "HP_ALLOWED_IPS": PROVIDER}
    with gunicorn(url, workers=2, port=port, extra_env=env, allow_errors=True):
        base = nginx(port)
        settled, refunded = tx(), tx()
        calls = [
            ("withdrawal", {"sessionId": session, "txId": settled, "amount": "1"}, 200),
            ("deposit", {"txId": settled, "amount": "1"}, 200),
            ("withdrawal", {"sessionId": session, "txId": refunded, "amount": "1"}, 200),
            ("rollback", {"txId": refunded}, 200),
            ("withdrawal", {"sessionId": session, "txId": "bad", "amount": "1"}, 400),
            ("auth", {"sessionId": session, "secret": "wrong"}, 601),
            ("withdrawal", {"sessionId": session, "txId": tx(), "amount": "99"}, 603),
            ("auth", {"sessionId": "nobody"}, 604),
            ("rollback", {"txId": tx()}, 605),
            ("withdrawal", {"sessionId": session, "txId": settled, "amount": "1"}, 607),
            ("deposit", {"txId": refunded, "amount": "1"}, 608),
            ("rollback", {"txId": settled}, 609),
            ("auth", {"sessionId": broken}, 702),
        ]
        for endpoint, fields, expected in calls:
            direct = request(f"http://127.0.0.1:{port}", "POST", f"/100hp/{endpoint}",
                             post_body({"secret": HP_SECRET, **fields}), {"X-Forwarded-For": PROVIDER},
                             source=OTHER)
            assert direct[0] == 601  # a forged X-Forwarded-For around the proxy counts for nothing
            status, body, headers = request(base, "POST", f"/100hp/{endpoint}",
                                            post_body({"secret": HP_SECRET, **fields}), source=PROVIDER)
            assert status == expected, (endpoint, body)
            assert headers["Content-Type"] == "application/json"
            if expected != 200:
                assert body["errCode"] == expected and body["message"]


def post_body(fields) -> bytes:
    return json.dumps(fields).encode()
