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
import signal
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
    """A running server: `url(database)` for SQLAlchemy, `stop()` to end it, `start()` to bring it
    back on the same data and port (for the fault tests)."""

    def __init__(self, kind, base_url, argv=None, datadir=None):
        self.kind, self.base_url, self.argv, self.datadir = kind, base_url, argv, datadir
        self.user = SERVICE_USER[kind] if os.geteuid() == 0 else None
        self.process = None
        if argv:
            self.start()

    def start(self):
        log_path = os.path.join(self.datadir, "server.log")
        self.process = subprocess.Popen(self.argv, stdout=open(log_path, "a"), stderr=subprocess.STDOUT,
                                        user=self.user, group=self.user)
        _wait_ready(self, log_path)

    def url(self, database: str) -> str:
        return f"{self.base_url}/{database}"

    def admin(self, sql: str) -> None:
        admin_db = "postgres" if self.kind == "postgres" else ""
        engine = sa.create_engine(self.url(admin_db), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
        engine.dispose()

    def stop(self, remove=True) -> None:
        if self.process:
            # PostgreSQL: SIGINT is the "fast" shutdown that closes client connections
            self.process.send_signal(signal.SIGINT if self.kind == "postgres" else signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if remove and self.datadir:
            shutil.rmtree(self.datadir, ignore_errors=True)


def _prepare_datadir(kind) -> str:
    datadir = tempfile.mkdtemp(prefix=f"wallet-{kind}-")
    if os.geteuid() == 0:
        user = pwd.getpwnam(SERVICE_USER[kind])
        os.chown(datadir, user.pw_uid, user.pw_gid)
    return datadir


def _wait_ready(server, log_path: str, seconds=60):
    deadline = time.monotonic() + seconds
    while True:
        try:
            server.admin("SELECT 1")
            return server
        except sa.exc.OperationalError:
            if server.process.poll() is not None or time.monotonic() > deadline:
                log = open(log_path).read()[-2000:]
                server.process.kill()
                raise RuntimeError(f"{server.kind} did not start:\n{log}")
            time.sleep(0.2)


def start_postgres(durable=False):
    """A PostgreSQL server, or None (with the reason) if its binaries are not installed.
    `durable` keeps PostgreSQL's default commit durability (the benchmark); tests turn fsync off."""
    if os.environ.get("WALLET_TEST_POSTGRES_URL"):
        return Server("postgres", os.environ["WALLET_TEST_POSTGRES_URL"].rstrip("/")), None
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        return None, "PostgreSQL not installed (apt-get install postgresql)"
    bindir = os.path.dirname(bins[-1])
    datadir, port = _prepare_datadir("postgres"), free_port()
    pgdata = os.path.join(datadir, "data")
    user = SERVICE_USER["postgres"] if os.geteuid() == 0 else None
    subprocess.run([f"{bindir}/initdb", "-D", pgdata, "-U", "wallet", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True, user=user, group=user)
    # fsync off: a test server's data is thrown away anyway; the benchmark uses real durability
    argv = [f"{bindir}/postgres", "-D", pgdata, "-p", str(port), "-k", datadir,
            "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300",
            *([] if durable else ["-c", "fsync=off"])]
    return Server("postgres", f"postgresql+psycopg://wallet@127.0.0.1:{port}", argv, datadir), None


def start_mariadb(durable=False):
    """A MariaDB server, or None (with the reason) if its binaries are not installed.
    `durable` keeps InnoDB's default flush at every commit (the benchmark)."""
    if os.environ.get("WALLET_TEST_MYSQL_URL"):
        return Server("mariadb", os.environ["WALLET_TEST_MYSQL_URL"].rstrip("/")), None
    mariadbd, install = shutil.which("mariadbd", path="/usr/sbin:/usr/bin"), shutil.which(
        "mariadb-install-db")
    if not (mariadbd and install):
        return None, "MariaDB not installed (apt-get install mariadb-server)"
    datadir, port = _prepare_datadir("mariadb"), free_port()
    data = os.path.join(datadir, "data")
    user = SERVICE_USER["mariadb"] if os.geteuid() == 0 else None
    subprocess.run([install, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
                    "--skip-test-db"], check=True, capture_output=True, user=user, group=user)
    argv = [mariadbd, "--no-defaults", f"--datadir={data}", f"--port={port}", "--bind-address=127.0.0.1",
            f"--socket={datadir}/mysqld.sock", "--skip-log-bin", "--max-connections=300",
            "--innodb-lock-wait-timeout=10", f"--innodb-flush-log-at-trx-commit={1 if durable else 2}"]
    return Server("mariadb", f"mysql+pymysql://root@127.0.0.1:{port}", argv, datadir), None
