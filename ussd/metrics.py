"""Prometheus metrics of the service (``prometheus_client``), true across worker processes.

``ussd serve`` runs several worker processes; each scrape reaches one of them. So the server
runs prometheus_client's multiprocess mode (:func:`multiprocess_dir`, set up before this
module is first imported): every worker writes its samples to memory-mapped files in one
directory, and a scrape of any worker, or of the metrics listener (``USSD_METRICS_PORT``),
sums the files of all of them, those of a worker that died and was replaced included.

Every label takes its value from a closed set written here (a value outside it is counted as
``other``): a gateway cannot make a series per value it sends. No ``_created`` series.

========================================  ==================================================
metric                                    labels
========================================  ==================================================
``ussd_hops_total``                       gateway, outcome (:data:`OUTCOMES`), reason (of a
                                          refusal: :data:`REASONS`; else empty)
``ussd_hop_seconds``                      gateway (a histogram)
``ussd_sessions_started_total``           gateway
``ussd_sessions_ended_total``             gateway, how (:data:`ENDINGS`)
``ussd_funnel_total``                     step (:data:`FUNNEL`): sessions reaching it
``ussd_migrations_total``                 channel, target
``ussd_redis_seconds``                    operation (:data:`REDIS_OPERATIONS`; a histogram)
``ussd_retried_hops_total``               gateway
``ussd_rejected_requests_total``          gateway, reason (:data:`REJECTIONS`)
``ussd_session_end_notifications_total``  gateway, status (:data:`END_STATUSES`)
``ussd_api_requests_total``               endpoint (:data:`API_ENDPOINTS`), client (of the
                                          clients file, or ``-``), status
``ussd_api_request_seconds``              endpoint (a histogram)
========================================  ==================================================
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from .gateways import DIALECTS, dialects
from .rules import Channel, Profile, Reason

disable_created_metrics()

OTHER = "other"
# The registered gateway dialects: a new dialect module is counted under its own name.
GATEWAYS = frozenset(DIALECTS)
# What a hop did: a screen shown; a migration applied; a refusal (with its reason); a wrong
# input; a retried hop answered again; a migration whose outcome is not known yet (the "being
# processed" screen); a hop not served in time, answered "busy" (overload); Redis out of reach;
# a bug (the polite end either way).
OUTCOMES = frozenset({"shown", "approved", "refused", "invalid", "replayed", "pending", "busy",
                      "unavailable", "error"})
REASONS = frozenset(reason.value for reason in Reason if reason is not Reason.APPROVED)
# How a session ended: the service's last screen, or the gateway's report of a session still
# open (the subscriber left it, it timed out, the network failed).
ENDINGS = frozenset({"completed", "abandoned", "timed_out", "failed"})
FUNNEL = ("dial", "list", "confirmation", "result")
REDIS_OPERATIONS = frozenset({"read", "save", "migrate", "close", "load", "api_read",
                              "api_history", "api_migrate", "api_answer"})
# The HTTP API's endpoints (ussd/api/views.py) and the statuses it answers. Its clients are
# the server's clients file's (a request names none it has not authenticated as), or "-".
API_ENDPOINTS = frozenset({"get_subscriber", "get_migrations", "post_migration",
                           "post_consumption", "get_openapi", "get_problem_type"})
API_STATUSES = frozenset(str(status) for status in (200, 201, 202, 400, 401, 403, 404, 405, 408,
                                                     413, 415, 422, 429, 500, 503))
# Why a gateway's request was refused before the engine: what its dialect could not read
# (a body that is not JSON, nested too deeply, not UTF-8, is read as empty and refused so),
# the gateway's secret or address, or a body over the bounds of gateways/reading.py (413, 408).
REJECTIONS = frozenset({"BadRequestError", "UnknownServiceCodeError", "UnknownSessionError",
                        "InvalidMsisdnError", "unauthorized", "forbidden", "body_too_large",
                        "body_too_slow"})
# Each gateway's words for how a session ended, and what they mean here (None: the service
# ended it, counted already when its last screen was sent): each dialect's ``end_meanings``.
END_STATUSES = {each.name: dict(each.end_meanings) for each in dialects()}
CHANNELS = frozenset(channel.value for channel in Channel)
PROFILES = frozenset(profile.value for profile in Profile)

HOPS = Counter("ussd_hops_total", "USSD hops answered, by what they did",
               ["gateway", "outcome", "reason"])
HOP_SECONDS = Histogram(
    "ussd_hop_seconds",
    "Time to answer one hop",
    ["gateway"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
SESSIONS_STARTED = Counter("ussd_sessions_started_total", "Sessions started (first hops)",
                           ["gateway"])
SESSIONS_ENDED = Counter("ussd_sessions_ended_total", "Sessions ended, by how",
                         ["gateway", "how"])
FUNNEL_STEPS = Counter("ussd_funnel_total",
                       "Hops that bring a session to a step of the dialogue: dial, the "
                       "profile list, the confirmation, the result (a migration applied)",
                       ["step"])
MIGRATIONS = Counter("ussd_migrations_total", "Migrations applied, by channel and target",
                     ["channel", "target"])
REDIS_SECONDS = Histogram(
    "ussd_redis_seconds",
    "Time of one call to Redis, by operation",
    ["operation"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
RETRIES = Counter("ussd_retried_hops_total", "Hops answered again from the record", ["gateway"])
SESSION_ENDS = Counter(
    "ussd_session_end_notifications_total", "End-of-session notifications", ["gateway", "status"]
)
REJECTED = Counter("ussd_rejected_requests_total", "Requests refused before the engine",
                   ["gateway", "reason"])
API_REQUESTS = Counter("ussd_api_requests_total", "HTTP API requests answered, by endpoint, "
                       "client and status", ["endpoint", "client", "status"])
API_SECONDS = Histogram("ussd_api_request_seconds", "Time to answer one HTTP API request",
                        ["endpoint"],
                        buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))


def closed(value: str, allowed: Iterable[str]) -> str:
    """``value`` if it is one of ``allowed``, else ``other``: a label never takes a value
    from outside a closed set."""
    return value if value in allowed else OTHER


# The children of HOPS and HOP_SECONDS for each (gateway, outcome, reason), bound once:
# looking them up by their labels took a lock and built a key on every hop, two thirds of what
# the hop's metrics cost. The keys are closed (gateways x outcomes x reasons): a handful.
_HOP_CHILDREN: dict[tuple[str, str, str], tuple] = {}
_REDIS_CHILDREN: dict[str, object] = {}


def record_hop(gateway: str, outcome: str, reason: str, seconds: float) -> None:
    """Count one answered hop, by what it did, and its duration."""
    children = _HOP_CHILDREN.get((gateway, outcome, reason))
    if children is None:
        children = _HOP_CHILDREN[gateway, outcome, reason] = (
            HOPS.labels(closed(gateway, GATEWAYS), closed(outcome, OUTCOMES),
                        closed(reason, REASONS) if reason else ""),
            HOP_SECONDS.labels(closed(gateway, GATEWAYS)),
        )
    children[0].inc()
    children[1].observe(seconds)


def record_redis(operation: str, seconds: float) -> None:
    """One call to Redis and its duration."""
    child = _REDIS_CHILDREN.get(operation)
    if child is None:
        child = _REDIS_CHILDREN[operation] = REDIS_SECONDS.labels(
            closed(operation, REDIS_OPERATIONS))
    child.observe(seconds)


@contextmanager
def redis_call(operation: str):
    """Time the Redis call in the block (counted when it fails too): the other channels'
    calls. The hop's own calls time themselves inline (store/hops.py): this generator costs a
    microsecond a call."""
    started = time.perf_counter()
    try:
        yield
    finally:
        record_redis(operation, time.perf_counter() - started)


def record_api_request(endpoint: str, client: str, status: int, seconds: float) -> None:
    """One HTTP API request answered, and its duration."""
    endpoint = closed(endpoint, API_ENDPOINTS)
    API_REQUESTS.labels(endpoint, client, closed(str(status), API_STATUSES)).inc()
    API_SECONDS.labels(endpoint).observe(seconds)


def record_migration(channel: str, target: str) -> None:
    """One migration applied."""
    MIGRATIONS.labels(closed(channel, CHANNELS), closed(target, PROFILES)).inc()


_SESSION_CHILDREN: dict[tuple, object] = {}


def _session_child(metric, *labels: str):
    """A child of SESSIONS_STARTED, SESSIONS_ENDED or FUNNEL_STEPS, bound once (see above;
    the labels are closed already, so the keys are few)."""
    key = (metric, *labels)
    child = _SESSION_CHILDREN.get(key)
    if child is None:
        child = _SESSION_CHILDREN[key] = metric.labels(*labels)
    return child


def record_session(gateway: str, started: bool, ended: bool, steps: Iterable[str]) -> None:
    """A hop's part in the sessions: one started, one ended by its last screen, the steps of
    the dialogue it reached (most hops: none of them)."""
    if started:
        _session_child(SESSIONS_STARTED, closed(gateway, GATEWAYS)).inc()
    if ended:
        _session_child(SESSIONS_ENDED, closed(gateway, GATEWAYS), "completed").inc()
    for step in steps:
        _session_child(FUNNEL_STEPS, closed(step, FUNNEL)).inc()


def record_end_report(gateway: str, status: str, live: bool) -> None:
    """A gateway's report that a session ended; a session it finds open counts as ended."""
    statuses = END_STATUSES.get(gateway, {})
    gateway = closed(gateway, GATEWAYS)
    SESSION_ENDS.labels(gateway, closed(status, statuses)).inc()
    how = statuses.get(status, OTHER)
    if live and how is not None:
        SESSIONS_ENDED.labels(gateway, how).inc()


def record_rejection(gateway: str, reason: str) -> None:
    """A request refused before the engine (malformed, unauthorised...)."""
    REJECTED.labels(closed(gateway, GATEWAYS), closed(reason, REJECTIONS)).inc()


def record_retry(gateway: str) -> None:
    """A hop answered again from the session record."""
    RETRIES.labels(closed(gateway, GATEWAYS)).inc()


# --- exposition ------------------------------------------------------------------------------

# prometheus_client chooses its mode when first imported, from PROMETHEUS_MULTIPROC_DIR: this
# module is where the service first imports it (``ussd serve`` sets the variable before).
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
_registry: CollectorRegistry | None = None


def registry() -> CollectorRegistry:
    """What a scrape reads: every worker's files in multiprocess mode, else this process."""
    global _registry
    if not MULTIPROCESS:
        return REGISTRY
    if _registry is None:
        _registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(_registry)
    return _registry


def exposition() -> tuple[bytes, str]:
    """The text a scrape gets, and its content type (written once, with its charset)."""
    return generate_latest(registry()), CONTENT_TYPE_LATEST
