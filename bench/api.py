"""The HTTP API in the bench, in the same run as the USSD hops: reads and migrations a second
under wrk, and Redis round trips per request.

The API's client in the load has a rate limit (``RATE_LIMIT``, high enough never to refuse
here), as a deployment's clients have: every request pays the limiter's round trip. Its own
subscribers (numbers from ``FIRST``, of the load's kinds, 9.000 F CFA last month) are each
migrated once, to their kind's target, so every migration is approved and applied (``201``);
reads go over the same numbers. Every answer's status is checked, and that its body is about
the subscriber asked for.

Round trips are counted as ``footprint.round_trips`` counts a hop's, on the client's socket,
through the service's Flask app: a read, a history, a migration and the same migration again
(its answer found by the first read), for a client without a rate limit (the store's own
round trips) and for one with (plus the limiter's).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import footprint
import load

from ussd.store import Store

TOKEN = "bench-api-token-6f0e2d41c9b7"
UNLIMITED = "bench-unlimited-token-3a8c5e17"
RATE_LIMIT = "5000/second"
FIRST = 10_000_000  # the API's subscribers: +225071xxxxxxx, apart from the dialogues'
PER_RUN = 12_000  # migrations a run can apply, at most: one subscriber each


def write_clients(path: Path) -> Path:
    """The bench's clients file: the load's client (rate-limited) and one without a limit."""
    tables = []
    for name, token, limit in (("bench", TOKEN, RATE_LIMIT), ("unlimited", UNLIMITED, None)):
        digest = hashlib.sha256(token.encode()).hexdigest()
        tables.append(f'[clients.{name}]\ntoken_sha256 = "{digest}"\n'
                      f'scopes = ["subscribers:read", "migrations:write"]\nchannel = "web"\n'
                      + (f'rate_limit = "{limit}"\n' if limit else ""))
    path.write_text("\n".join(tables))
    return path


def seed(store, first: int, count: int, month: str) -> None:
    """Store subscribers ``first`` to ``first + count - 1`` of the load's kinds."""
    numbers = range(first, first + count)
    store.admin.put_subscribers((load.msisdn(n), load.kind_of(n).profile,
                                 load.kind_of(n).language) for n in numbers)
    store.admin.put_consumption((load.msisdn(n), month, load.CONSUMED) for n in numbers)


@dataclass(frozen=True)
class ApiRoundTrips:
    """Redis round trips of one request of each kind: the store's, and the rate limiter's."""

    read: int
    history: int
    migration: int
    replay: int
    limiter: int


def round_trips(redis_url: str, prefix: str, first: int, month: str,
                clients: Path) -> ApiRoundTrips:
    """Count the round trips of each kind of request through the service's app."""
    from ussd.settings import Settings
    from ussd.store import connect
    from ussd.web import create_app

    settings = replace(Settings.from_env({}), redis_url=redis_url, key_prefix=prefix)
    client = connect(settings)
    client.connection_pool.connection_class = footprint.CountingConnection
    client.connection_pool.disconnect()
    client.script_flush()  # a script the app did not load at start-up would show
    seed(Store(client, prefix=prefix), first, 2, month)
    app = create_app(replace(settings, redis_url=None, api_clients=clients), redis_client=client)
    http = app.test_client()

    def count(token: str, method: str, path: str, **options) -> int:
        before = footprint.CountingConnection.sent
        response = http.open(path, method=method,
                             headers={"Authorization": f"Bearer {token}", **options.pop(
                                 "headers", {})}, **options)
        assert response.status_code in (200, 201), response.get_data(as_text=True)
        return footprint.CountingConnection.sent - before

    def requests(token: str, number: int) -> tuple[int, ...]:
        path = f"/api/v1/subscribers/{load.msisdn(number)}"
        body = {"profile": load.kind_of(number).target.title}
        key = {"Idempotency-Key": f"round-trips-{number}"}
        return (count(token, "GET", path), count(token, "GET", f"{path}/migrations"),
                count(token, "POST", f"{path}/migrations", json=body, headers=key),
                count(token, "POST", f"{path}/migrations", json=body, headers=key))

    store_only = requests(UNLIMITED, first)
    # The limiter loads its script on its first call in a process (NOSCRIPT, SCRIPT LOAD: two
    # round trips more, once per worker): counted from the second.
    count(TOKEN, "GET", f"/api/v1/subscribers/{load.msisdn(first)}")
    limited = requests(TOKEN, first + 1)
    extra = {b - a for a, b in zip(store_only, limited, strict=True)}
    assert len(extra) == 1, (store_only, limited)
    client.close()
    return ApiRoundTrips(*store_only, limiter=extra.pop())


def write_data(path: Path, run: str, first: int, last: int, method: str) -> Path:
    """The Lua data file of one wrk run of ``api.lua``."""
    targets = ", ".join(f'"{kind.target.title}"' for kind in load.KINDS)
    path.write_text(f'FIRST, LAST = {first}, {last}\nKINDS = {len(load.KINDS)}\n'
                    f'METHOD = "{method}"\nSTATUS = {200 if method == "GET" else 201}\n'
                    f'TARGETS = {{{targets}}}\nRUN = "{run}"\nTOKEN = "{TOKEN}"\n')
    return path


def play(url: str, data: Path, concurrency: int, seconds: float) -> load.LoadResult:
    """One wrk run of ``api.lua``: every answer checked (``hops`` counts the requests)."""
    return load.play(url, data, concurrency, seconds, None, script="api.lua")
