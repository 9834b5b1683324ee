"""Prometheus metrics at `GET /metrics` (prometheus-client). Optional: delete this module and its
line in app.py, and the wallet is unchanged.

What a scrape shows:
- `wallet_calls_total{provider, operation, result}`: provider calls by result code (100HP: the
  errCode, which is the HTTP status; Hash: the `code` of the answer), so 702 / 5000 are visible;
- `wallet_call_duration_seconds{provider, operation}`: a latency histogram;
- `wallet_db_retries_total{reason}`: transaction runs that wallet/core/db.py retried (deadlock, Galera
  certification conflict, lock timeout, unique race, serialization failure, connection lost), and
  `wallet_db_deadline_passed_total`: calls that ran out of CALL_DEADLINE_MS. Both are counted from
  db.py's own log records on logger `wallet.core.db` (their `retry_reason` / `deadline_passed`
  fields), so they count only while that logger passes INFO records (the app's default);
- `wallet_alarms_total{reason}`: log records that carry an `alarm` field, on any `wallet.*` logger
  (e.g. `hash_request_id_reused`: another body under a Hash request_id already applied, what a
  rewritten capture looks like; `hash_payout_over_bound`; `hash_amount_too_precise`,
  `hash_amount_rounded`: docs/hash.md §11.5). Alert on any increase;
- `wallet_open_bets{provider, older_than_seconds}`: 100HP withdrawals and Hash orders still open,
  and `wallet_database_up`: read from the database at scrape time, one query per provider.
  Open bets are found by each provider's (status, created_at) index.

gunicorn: each worker is a process with counters of its own. Set PROMETHEUS_MULTIPROC_DIR to an
empty directory that the workers can write (empty it before each start of gunicorn): each worker
then writes its counters to files there, and a scrape, answered by any worker, sums them
(prometheus-client's multiprocess mode). No gunicorn hook is needed: this module has no live
gauges, which is all `mark_process_dead` cleans up; a dead worker's counts stay in the sums.
Without the variable the counters are the answering process's own (one process: `flask run`).

Access: METRICS_ALLOWED_IPS (wallet/settings.py: addresses / CIDR ranges, default 127.0.0.1/32,::1;
empty = any, refused in production), checked like HP_ALLOWED_IPS, behind TRUSTED_PROXIES; others get 403.
"""
import logging
import os
import time
from datetime import timedelta

from flask import Blueprint, Response, abort, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import case, func, select

from .core.schema import metadata, utcnow
from .guard import RESULT, address_allowed, call_of

OPEN_BET_AGES = (0, 60, 600, 3600, 86400)  # seconds: "open", "open for over a minute", ...

COUNTERS = CollectorRegistry()  # this process's metrics (gunicorn: written to the multiprocess files)
CALLS = Counter("wallet_calls", "Provider calls by result code", ["provider", "operation", "result"],
                registry=COUNTERS)
DURATION = Histogram("wallet_call_duration_seconds", "Provider call latency", ["provider", "operation"],
                     buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=COUNTERS)
RETRIES = Counter("wallet_db_retries", "Transaction runs retried by wallet/core/db.py, by reason", ["reason"],
                  registry=COUNTERS)
DEADLINES = Counter("wallet_db_deadline_passed", "Calls whose CALL_DEADLINE_MS passed (702 / 5000)",
                    registry=COUNTERS)

ALARMS = Counter("wallet_alarms", "Refusals that look like tampering, and amounts the rules changed, "
                 "by reason (the `alarm` field of their log line)", ["reason"], registry=COUNTERS)

bp = Blueprint("metrics", __name__)


def install(app) -> None:
    """The /metrics view, the call counting middleware and the wallet.core.db log counter."""
    app.wsgi_app = CallMetrics(app.wsgi_app)
    app.register_blueprint(bp)
    db_log = logging.getLogger("wallet.core.db")
    if not any(isinstance(handler, RetryCounter) for handler in db_log.handlers):  # once a process
        db_log.addHandler(RetryCounter())
    wallet_log = logging.getLogger("wallet")
    if not any(isinstance(handler, AlarmCounter) for handler in wallet_log.handlers):
        # alarms are warnings and errors: a call's INFO line skips this handler, its lock included
        wallet_log.addHandler(AlarmCounter(logging.WARNING))


class CallMetrics:
    """WSGI middleware: counts each provider call by result and times it, classified by the route
    it matched (wallet/guard.py `classify`: `//100hp/withdrawal` is a withdrawal). Paths that are no
    route are counted as operation "other", so a scan of random URLs adds no new series."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        started, status = time.perf_counter(), ""

        def start(status_line, headers, exc_info=None):
            nonlocal status
            status = status_line
            return start_response(status_line, headers, exc_info)

        body = self.wsgi_app(environ, start)
        call = call_of(environ)
        if call is None:  # not a provider call: /metrics, /healthz, the console
            return body
        provider, operation = call
        result = str(environ.get(RESULT, status[:3]))  # Hash's code; else the HTTP status (100HP)
        count_call(provider, operation, result, time.perf_counter() - started)
        return body


_SERIES = {}  # (provider, operation, result) -> its counter and histogram, as labels() gave them


def count_call(provider: str, operation: str, result: str, seconds: float) -> None:
    """One call counted and timed. The series are looked up once a process: labels() checks and
    locks on every call, about a third of the metrics' CPU a call (tests/bench/README.md)."""
    series = _SERIES.get((provider, operation, result))
    if series is None:
        series = _SERIES[provider, operation, result] = (CALLS.labels(provider, operation, result),
                                                         DURATION.labels(provider, operation))
    series[0].inc()
    series[1].observe(seconds)


class RetryCounter(logging.Handler):
    """Counts wallet/core/db.py's retry and deadline log records (their `extra` fields)."""

    def emit(self, record):
        reason = getattr(record, "retry_reason", None)
        if reason:
            RETRIES.labels(reason).inc()
        if getattr(record, "deadline_passed", False):
            DEADLINES.inc()


class AlarmCounter(logging.Handler):
    """Counts the log records of wallet.* that carry an `alarm` field (wallet/hash/orders.py: a
    reused request_id, a payout over its bound; wallet/hash/fields.py: amounts past 6 places)."""

    def emit(self, record):
        reason = getattr(record, "alarm", None)
        if reason:
            ALARMS.labels(reason).inc()


class OpenBets:
    """A collector that reads the open bets from the database at scrape time."""

    def __init__(self, engine):
        self.engine = engine

    def collect(self):
        up = GaugeMetricFamily("wallet_database_up", "1 if the scrape's database queries answered")
        bets = GaugeMetricFamily("wallet_open_bets", "100HP withdrawals and Hash orders still open, "
                                 "by minimum age", labels=["provider", "older_than_seconds"])
        try:
            for provider, counts in self._counts():
                for age, count in zip(OPEN_BET_AGES, counts):
                    bets.add_metric([provider, str(age)], int(count or 0))  # SUM of nothing: NULL
            up.add_metric([], 1)
        except Exception:  # the metrics must answer when the database does not: that is when they matter
            current_app.logger.warning("metrics: the database did not answer", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        yield up
        yield bets

    def _counts(self):
        now = utcnow()
        with self.engine.connect() as conn:
            for provider, name, open_statuses in (("100hp", "hp_transactions", ["open"]),
                                                  ("hash", "hash_orders", [0, 3])):  # pending
                table = metadata.tables.get(name)  # there only if that provider is registered
                if table is None:
                    continue
                is_open = table.c.status.in_(open_statuses)
                older = [func.sum(case((table.c.created_at <= now - timedelta(seconds=age), 1), else_=0))
                         for age in OPEN_BET_AGES]
                yield provider, list(conn.execute(select(*older).where(is_open)).one())


@bp.get("/metrics")
def metrics():
    config = current_app.config
    if not address_allowed(config["METRICS_ALLOWED_IPS"]):
        abort(403)
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # every worker's files, summed
    else:
        registry.register(COUNTERS)
    registry.register(OpenBets(current_app.extensions["engine"]))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
