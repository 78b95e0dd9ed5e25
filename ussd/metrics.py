"""Prometheus metrics of the service (``prometheus_client``), served at ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HOPS = Counter("ussd_hops_total", "USSD hops answered", ["gateway", "outcome", "end"])
HOP_SECONDS = Histogram(
    "ussd_hop_seconds",
    "Time to answer one hop",
    ["gateway"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
MIGRATIONS = Counter("ussd_migrations_total", "Migrations applied, by channel and target",
                     ["channel", "target"])
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


# The children of HOPS and HOP_SECONDS for each (gateway, outcome, end), bound once: looking
# them up by their labels took a lock and built a key on every hop, two thirds of what the
# hop's metrics cost. A handful of entries (dialects x outcomes x 2); a race only binds twice.
_HOP_CHILDREN: dict[tuple[str, str, bool], tuple] = {}


def record_hop(gateway: str, outcome: str, end: bool, seconds: float) -> None:
    """Count one answered hop and its duration."""
    children = _HOP_CHILDREN.get((gateway, outcome, end))
    if children is None:
        children = _HOP_CHILDREN[gateway, outcome, end] = (
            HOPS.labels(gateway, outcome, "true" if end else "false"),
            HOP_SECONDS.labels(gateway),
        )
    children[0].inc()
    children[1].observe(seconds)

# The relay's (ussd relay): every attempt at an outbox entry, and what became of it.
DELIVERIES = Counter("ussd_relay_deliveries_total",
                     "Attempts at delivering outbox entries, by queue (events, sms) and outcome "
                     "(delivered; retried; refused or failed: the last, dead-lettered; taken_over: "
                     "by another relay)", ["queue", "outcome"])
DEAD_LETTERS = Counter("ussd_relay_dead_letters_total",
                       "Entries moved to the dead letters, by queue and why (refused: a 4xx or "
                       "the provider's refusal; attempts: too many failures)", ["queue", "why"])
