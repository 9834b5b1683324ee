"""Throwaway PostgreSQL and MariaDB servers for the test suite.

Each is started from the Debian packages' binaries (postgresql, mariadb-server) on loopback, on a free
port, with its own data directory in a temp folder, and removed at the end of the run. A server
whose binaries are missing is skipped (the caller says so). `WALLET_TEST_POSTGRES_URL` and
`WALLET_TEST_MYSQL_URL` point the suite at servers of your own instead; each test run then creates
and drops its own databases on them.
"""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

import sqlalchemy as sa

SERVICE_USER = {"postgres": "postgres", "mariadb": "mysql"}  # postgres refuses to run as root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running server: `url(database)` for SQLAlchemy, `stop()` to end it."""

    def __init__(self, kind, base_url, process=None, datadir=None):
        self.kind, self.base_url, self.process, self.datadir = kind, base_url, process, datadir

    def url(self, database: str) -> str:
        return f"{self.base_url}/{database}"

    def admin(self, sql: str) -> None:
        admin_db = "postgres" if self.kind == "postgres" else ""
        engine = sa.create_engine(self.url(admin_db), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
        engine.dispose()

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.datadir:
            shutil.rmtree(self.datadir, ignore_errors=True)


def _as_service_user(kind, argv):
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", SERVICE_USER[kind], "--", *argv]


def _prepare_datadir(kind) -> str:
    datadir = tempfile.mkdtemp(prefix=f"wallet-{kind}-")
    if os.geteuid() == 0:
        user = pwd.getpwnam(SERVICE_USER[kind])
        os.chown(datadir, user.pw_uid, user.pw_gid)
    return datadir


def _wait_ready(server: Server, log_path: str, seconds=60) -> Server:
    deadline = time.monotonic() + seconds
    while True:
        try:
            server.admin("SELECT 1")
            return server
        except sa.exc.OperationalError:
            if server.process.poll() is not None or time.monotonic() > deadline:
                log = open(log_path).read()[-2000:]
                server.stop()
                raise RuntimeError(f"{server.kind} did not start:\n{log}")
            time.sleep(0.2)


def start_postgres():
    """A PostgreSQL server, or None (with the reason) if its binaries are not installed."""
    if os.environ.get("WALLET_TEST_POSTGRES_URL"):
        return Server("postgres", os.environ["WALLET_TEST_POSTGRES_URL"].rstrip("/")), None
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        return None, "PostgreSQL not installed (apt-get install postgresql)"
    bindir = os.path.dirname(bins[-1])
    datadir, port = _prepare_datadir("postgres"), free_port()
    pgdata, log_path = os.path.join(datadir, "data"), os.path.join(datadir, "server.log")
    subprocess.run(_as_service_user("postgres", [f"{bindir}/initdb", "-D", pgdata, "-U", "wallet",
                                                 "--auth=trust", "-E", "UTF8"]),
                   check=True, capture_output=True)
    # fsync off: a test server's data is thrown away anyway; the benchmark uses real durability
    process = subprocess.Popen(
        _as_service_user("postgres", [f"{bindir}/postgres", "-D", pgdata, "-p", str(port), "-k",
                                      datadir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                                      "-c", "max_connections=300"]),
        stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    server = Server("postgres", f"postgresql+psycopg://wallet@127.0.0.1:{port}", process, datadir)
    return _wait_ready(server, log_path), None


def start_mariadb():
    """A MariaDB server, or None (with the reason) if its binaries are not installed."""
    if os.environ.get("WALLET_TEST_MYSQL_URL"):
        return Server("mariadb", os.environ["WALLET_TEST_MYSQL_URL"].rstrip("/")), None
    mariadbd, install = shutil.which("mariadbd", path="/usr/sbin:/usr/bin"), shutil.which(
        "mariadb-install-db")
    if not (mariadbd and install):
        return None, "MariaDB not installed (apt-get install mariadb-server)"
    datadir, port = _prepare_datadir("mariadb"), free_port()
    data, log_path = os.path.join(datadir, "data"), os.path.join(datadir, "server.log")
    user = ["--user=" + SERVICE_USER["mariadb"]] if os.geteuid() == 0 else []
    subprocess.run([install, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
                    "--skip-test-db", *user], check=True, capture_output=True)
    process = subprocess.Popen(
        [mariadbd, "--no-defaults", f"--datadir={data}", f"--port={port}", "--bind-address=127.0.0.1",
         f"--socket={datadir}/mysqld.sock", "--skip-log-bin", "--max-connections=300",
         "--innodb-flush-log-at-trx-commit=2", "--innodb-lock-wait-timeout=10", *user],
        stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    server = Server("mariadb", f"mysql+pymysql://root@127.0.0.1:{port}", process, datadir)
    return _wait_ready(server, log_path), None
