"""The HTTP API, ``/api/v1``: the web customer area, the app and customer care over the rules.

One module per job::

    clients.py      the clients file: token digests, scopes, channel, rate limit; who calls
    ratelimit.py    each client's rate limit (``limits``), held across workers and machines
    idempotency.py  the Idempotency-Key header, and how a replayed answer says so
    models.py       the requests and answers (pydantic)
    openapi.py      the OpenAPI 3.1 document and the request checks, from the models (spectree)
    problems.py     RFC 9457 problem details: every error under /api/, whatever the input
    views.py        the routes: the client, then the request, then ``ussd.accounts``

The API is on when the server has clients: a clients file (``USSD_API_CLIENTS``), and on the
embedded demo one client per channel. With none, every path under ``/api/`` answers ``404``.
"""

from __future__ import annotations

import logging

from flask import Flask

from ..service import UssdService
from ..settings import Settings
from .clients import Client, Clients, demo_clients, load_clients, new_demo_tokens
from .problems import install
from .ratelimit import RateLimiter, storage_for
from .views import ApiState, blueprint

log = logging.getLogger("ussd.api")


def api_clients(settings: Settings, embedded: bool) -> list[Client]:
    """The clients of a server with these settings (``embedded``: on its own embedded store):
    the clients file's, and the demo's on an embedded demo (its tokens from the settings, or
    made up). ConfigError for a bad clients file."""
    clients = load_clients(settings.api_clients) if settings.api_clients else []
    if embedded and settings.demo:
        clients += demo_clients(settings.api_demo_tokens or new_demo_tokens())
    Clients(clients)  # the same name or token twice is refused here
    return clients


def api_summary(clients: list[Client], settings: Settings, url: str) -> list[str]:
    """What ``ussd serve`` says of the API at start-up: on, its clients (the demo's with their
    tokens, printed here only, never logged), or off and why."""
    if not clients:
        return ["HTTP API off: no clients (USSD_API_CLIENTS names none; see the README's "
                "clients file). Every path under /api/ answers 404."]
    lines = [f"HTTP API on {url}/api/v1 (its OpenAPI document: {url}/api/v1/openapi.json), "
             f"clients: " + ", ".join(f"{client.name} ({client.channel})" for client in clients)]
    if settings.api_demo_tokens:
        lines.append("Demo API clients, every scope, tokens for this run only "
                     "(Authorization: Bearer <token>):")
        lines.extend(f"  demo-{channel:<5} {token}"
                     for channel, token in settings.api_demo_tokens.items())
    return lines


def mount(app: Flask, service: UssdService, settings: Settings, embedded: bool) -> list[Client]:
    """Serve the API on ``app`` if the server has clients (see :func:`api_clients`); the
    clients. Paths under ``/api/`` answer problems either way."""
    clients = Clients(api_clients(settings, embedded))
    if not clients:
        install(app, None)
        log.warning("api off: no clients (USSD_API_CLIENTS names no file)")
        return []
    store = service.store
    app.extensions["ussd.api"] = ApiState(
        accounts=service.accounts, clients=clients,
        limiter=RateLimiter(lambda: storage_for(store.redis, store.keys)),
        observer=service.observer)
    api = blueprint()
    install(app, api)
    app.register_blueprint(api)
    log.info("api on /api/v1: %s", ", ".join(f"{client.name} ({client.channel})"
                                             for client in clients.all))
    return list(clients.all)
