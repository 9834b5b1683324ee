"""Throwaway database clusters for tests/cluster/test_cluster.py, beside tests/dbservers.py's single
servers.

- `start_postgres_pair()`: a PostgreSQL primary and a synchronous standby (streaming replication
  cloned with pg_basebackup, `synchronous_standby_names`, `synchronous_commit=on`); `promote()` is
  the failover step (`pg_ctl promote`), no Patroni;
- `start_galera()`: a three-node MariaDB Galera cluster (galera-4; the first node bootstraps with
  `--wsrep-new-cluster`, the others join by rsync SST);
- `start_pgbouncer(server)`: PgBouncer in transaction pooling mode in front of a PostgreSQL server.

All on loopback, from the Debian packages' binaries, each in its own temp folder, removed by
`stop()`. A cluster whose packages are missing is not started: each function returns
(None, reason) instead, for the test to skip with. Every server runs in a process group of its
own, so that `kill()` ends it and every process it started at once, as a crash of its host would.
"""
import glob
import os
import shutil
import signal
import subprocess
import time

import sqlalchemy as sa

import dbservers
from dbservers import SERVICE_USER, free_port


class Node(dbservers.Server):
    """A dbservers.Server on `port` in its own process group, with `kill()` (SIGKILL to the whole
    group) and `query()`; `extra` attributes are kept (a PostgreSQL node's `pgdata`)."""
    BASE_URLS = {"postgres": "postgresql+psycopg://wallet@127.0.0.1:{}",
                 "mariadb": "mysql+pymysql://root@127.0.0.1:{}"}

    def __init__(self, kind, port, argv, datadir, **extra):
        self.port = port
        self.__dict__.update(extra)
        super().__init__(kind, self.BASE_URLS[kind].format(port), argv, datadir)

    def start(self):
        log_path = os.path.join(self.datadir, "server.log")
        self.process = subprocess.Popen(self.argv, stdout=open(log_path, "a"), stderr=subprocess.STDOUT,
                                        user=self.user, group=self.user, start_new_session=True)
        dbservers._wait_ready(self, log_path, seconds=120)

    def kill(self):
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def query(self, sql: str, database: str = ""):
        """The rows of one statement, run in autocommit on this node."""
        engine = sa.create_engine(self.url(database or ("postgres" if self.kind == "postgres" else "")),
                                  isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                result = conn.exec_driver_sql(sql)
                return result.all() if result.returns_rows else []
        finally:
            engine.dispose()


def _run_as(user, argv, **kwargs):
    return subprocess.run(argv, check=True, capture_output=True, user=user, group=user, **kwargs)


def _wait_for(condition, what: str, seconds=60):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


# ---- PostgreSQL: a primary and a synchronous standby -------------------------------------------
class PostgresPair:
    """`primary` and `standby` (Nodes), `url(database)`: the multi-host URL that finds the
    read-write one by itself, `promote()`: the standby becomes the primary."""

    def __init__(self, bindir, primary, standby):
        self.bindir, self.primary, self.standby = bindir, primary, standby

    def url(self, database: str) -> str:
        # SQLAlchemy's documented multi-host form for libpq: host=a:port&host=b:port; libpq tries
        # each in turn and keeps the first that accepts writes.
        hosts = "&".join(f"host=127.0.0.1:{node.port}" for node in (self.primary, self.standby))
        return f"postgresql+psycopg://wallet@/{database}?{hosts}&target_session_attrs=read-write"

    def replication_state(self) -> list:
        """(application_name, sync_state) of each standby streaming from the primary."""
        return self.primary.query("SELECT application_name, sync_state FROM pg_stat_replication")

    def promote(self) -> None:
        """The failover step: end the standby's recovery; it accepts writes when this returns."""
        _run_as(self.standby.user, [f"{self.bindir}/pg_ctl", "promote", "-w", "-t", "60",
                                    "-D", self.standby.pgdata])

    def stop(self) -> None:
        for node in (self.standby, self.primary):
            if node.process:
                node.stop(remove=False)
        shutil.rmtree(self.primary.root, ignore_errors=True)


def start_postgres_pair():
    """A primary and its synchronous standby, or (None, reason) if PostgreSQL is not installed.

    fsync is off as on dbservers' test servers: the tests kill processes, not the machine, and a
    killed process loses nothing the kernel already has. `synchronous_commit=on` still makes each
    COMMIT wait until the standby has written the transaction's WAL.
    """
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_basebackup"))
    if not bins:
        return None, "PostgreSQL not installed (apt-get install postgresql)"
    bindir = os.path.dirname(bins[-1])
    root = dbservers._prepare_datadir("postgres")
    user = SERVICE_USER["postgres"] if os.geteuid() == 0 else None
    primary_data, standby_data = os.path.join(root, "primary"), os.path.join(root, "standby")
    _run_as(user, [f"{bindir}/initdb", "-D", primary_data, "-U", "wallet", "--auth=trust", "-E", "UTF8"])
    common = ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300", "-c", "fsync=off",
              "-k", root]
    primary_port, standby_port = free_port(), free_port()
    primary = _postgres_node(bindir, root, primary_data, primary_port, [
        *common, "-c", "synchronous_standby_names=*", "-c", "synchronous_commit=on"])
    try:
        # -R writes standby.signal and primary_conninfo; the standby is started without
        # synchronous_standby_names, so once promoted it commits alone (its own standby is gone)
        _run_as(user, [f"{bindir}/pg_basebackup", "-h", "127.0.0.1", "-p", str(primary_port),
                       "-U", "wallet", "-D", standby_data, "-R", "-X", "stream", "-c", "fast"])
        standby = _postgres_node(bindir, root, standby_data, standby_port,
                                 [*common, "-c", "cluster_name=standby1"])
        pair = PostgresPair(bindir, primary, standby)
        _wait_for(lambda: ("standby1", "sync") in [tuple(r) for r in pair.replication_state()],
                  "the standby to stream synchronously")
    except BaseException:
        primary.stop(remove=False)
        shutil.rmtree(root, ignore_errors=True)
        raise
    return pair, None


def _postgres_node(bindir, root, pgdata, port, options) -> Node:
    # its server.log is written into its data directory (a file PostgreSQL ignores)
    return Node("postgres", port, [f"{bindir}/postgres", "-D", pgdata, "-p", str(port), *options],
                pgdata, pgdata=pgdata, root=root)


# ---- MariaDB Galera: three nodes ----------------------------------------------------------------
GALERA_PROVIDER = "/usr/lib/galera/libgalera_smm.so"


class Galera:
    """`nodes` (Nodes), `url(database, node)` for one node; `stop()` ends them all."""

    def __init__(self, root, nodes):
        self.root, self.nodes = root, nodes

    def url(self, database: str, node: int = 0) -> str:
        return self.nodes[node].url(database)

    def status(self, name: str) -> list:
        """A wsrep status variable (wsrep_local_cert_failures, ...) on each node, as an int."""
        return [int(node.query(f"SHOW GLOBAL STATUS LIKE '{name}'")[0][1]) for node in self.nodes]

    def stop(self) -> None:
        for node in reversed(self.nodes):
            if node.process:
                node.stop(remove=False)
        shutil.rmtree(self.root, ignore_errors=True)


def start_galera(size=3):
    """A Galera cluster of `size` MariaDB nodes, or (None, reason) if galera-4, MariaDB or rsync
    (the SST method used) is missing."""
    mariadbd, install = shutil.which("mariadbd", path="/usr/sbin:/usr/bin"), shutil.which(
        "mariadb-install-db")
    if not (mariadbd and install):
        return None, "MariaDB not installed (apt-get install mariadb-server)"
    if not os.path.exists(GALERA_PROVIDER):
        return None, "Galera not installed (apt-get install galera-4)"
    if not shutil.which("rsync"):
        return None, "rsync not installed (apt-get install rsync): the Galera nodes join by rsync SST"
    root = dbservers._prepare_datadir("mariadb")
    user = SERVICE_USER["mariadb"] if os.geteuid() == 0 else None
    ports = [dict(sql=free_port(), group=free_port(), ist=free_port(), sst=free_port())
             for _ in range(size)]
    members = ",".join(f"127.0.0.1:{p['group']}" for p in ports)
    nodes = []
    try:
        for i, p in enumerate(ports):
            datadir = os.path.join(root, f"node{i + 1}")
            os.makedirs(datadir)
            if user:
                shutil.chown(datadir, user, user)
            if i == 0:  # the others get their data from a member (SST)
                _run_as(user, [install, "--no-defaults", f"--datadir={datadir}/data",
                               "--auth-root-authentication-method=normal", "--skip-test-db"])
            argv = [
                mariadbd, "--no-defaults", f"--datadir={datadir}/data", f"--port={p['sql']}",
                "--bind-address=127.0.0.1", f"--socket={datadir}/mysqld.sock", "--max-connections=300",
                "--innodb-lock-wait-timeout=10", "--innodb-flush-log-at-trx-commit=2",
                # what Galera requires: row-based replication, InnoDB, interleaved auto-increment
                "--binlog-format=ROW", "--default-storage-engine=InnoDB", "--innodb-autoinc-lock-mode=2",
                "--wsrep-on=ON", f"--wsrep-provider={GALERA_PROVIDER}", "--wsrep-cluster-name=wallet",
                f"--wsrep-node-name=node{i + 1}", f"--wsrep-node-address=127.0.0.1:{p['group']}",
                f"--wsrep-cluster-address=gcomm://{members}",
                f"--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:{p['group']};"
                f"ist.recv_addr=127.0.0.1:{p['ist']};gcache.size=64M",
                "--wsrep-sst-method=rsync", f"--wsrep-sst-receive-address=127.0.0.1:{p['sst']}",
                # reads wait until this node has applied every write committed before them (see
                # docs/scaling.md): without it a deposit may not find the bet another node just took
                "--wsrep-sync-wait=1",
                *(["--wsrep-new-cluster"] if i == 0 else []),
            ]
            os.makedirs(f"{datadir}/data", exist_ok=True)
            if user:
                shutil.chown(f"{datadir}/data", user, user)
            nodes.append(Node("mariadb", p["sql"], argv, datadir))
        cluster = Galera(root, nodes)
        _wait_for(lambda: cluster.status("wsrep_cluster_size") == [size] * size
                  and all(node.query("SHOW GLOBAL STATUS LIKE 'wsrep_local_state_comment'")[0][1]
                          == "Synced" for node in nodes), "every Galera node to be synced")
    except BaseException:
        for node in reversed(nodes):
            node.stop(remove=False)
        shutil.rmtree(root, ignore_errors=True)
        raise
    return cluster, None


# ---- PgBouncer ----------------------------------------------------------------------------------
class PgBouncer:
    """A running PgBouncer: `url(database)` for SQLAlchemy, `stop()`."""

    def __init__(self, root, port, process):
        self.root, self.port, self.process = root, port, process

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://wallet@127.0.0.1:{self.port}/{database}"

    def wallet_url(self, database: str) -> str:
        """The wallet's DATABASE_URL behind it: PgBouncer 1.18's transaction pooling shares no
        prepared statements, so psycopg prepares none (docs/scaling.md, PgBouncer)."""
        return f"{self.url(database)}?prepare_threshold=none"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def start_pgbouncer(server, pool_size=20, **settings):
    """PgBouncer in transaction pooling mode in front of the PostgreSQL `server` (a dbservers
    Server), every database name passed through; or (None, reason) if it is not installed.
    `settings` are more [pgbouncer] lines (server_idle_timeout=1, ...)."""
    binary = shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")
    if not binary:
        return None, "PgBouncer not installed (apt-get install pgbouncer)"
    target = sa.engine.make_url(server.base_url)
    root = dbservers._prepare_datadir("postgres")  # owned by postgres: PgBouncer refuses root
    user = SERVICE_USER["postgres"] if os.geteuid() == 0 else None
    port = free_port()
    with open(os.path.join(root, "userlist.txt"), "w") as f:
        f.write('"wallet" ""\n')  # auth_type=trust still wants the user listed
    lines = {
        "listen_addr": "127.0.0.1", "listen_port": port, "unix_socket_dir": root,
        "auth_type": "trust", "auth_file": os.path.join(root, "userlist.txt"),
        "pool_mode": "transaction", "default_pool_size": pool_size, "max_client_conn": 1000,
        "admin_users": "wallet", "logfile": os.path.join(root, "pgbouncer.log"),
        **settings,
    }
    config = os.path.join(root, "pgbouncer.ini")
    with open(config, "w") as f:
        f.write(f"[databases]\n* = host={target.host} port={target.port}\n\n[pgbouncer]\n")
        f.writelines(f"{name} = {value}\n" for name, value in lines.items())
    process = subprocess.Popen([binary, config], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                               user=user, group=user, start_new_session=True)
    bouncer = PgBouncer(root, port, process)

    def ready():
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer did not start:\n{open(lines['logfile']).read()[-2000:]}")
        try:
            engine = sa.create_engine(bouncer.url("postgres"), isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            engine.dispose()
            return True
        except sa.exc.OperationalError:
            return False
    _wait_for(ready, "PgBouncer to accept connections", seconds=30)
    return bouncer, None
