"""The Flask application: gateway endpoints, the HTTP API, health, readiness and metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from flask import Flask, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import api
from .assembly import build_service
from .gateways.view import check_security, mount
from .settings import Settings

log = logging.getLogger("ussd")


def create_app(
    settings: Settings | None = None,
    redis_client: Any = None,
    clock: Callable[[], datetime] | None = None,
) -> Flask:
    """Build the WSGI application (settings from the environment, Redis from them, unless given)."""
    settings = settings or Settings.from_env()
    check_security(settings)  # before any connection: an open gateway on a Redis is refused
    service = build_service(settings, redis_client, clock)
    store = service.store

    app = Flask("ussd")
    app.extensions["ussd"] = service
    if settings.proxy_hops:
        # The gateway's address, for its allow-list, as the trusted proxies in front saw it.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops)
    app.wsgi_app = ascii_query(app.wsgi_app)
    mount(app, service, settings)
    embedded = redis_client is None and settings.redis_url is None  # as build_service's
    api.mount(app, service, settings, embedded)

    @app.get("/healthz")
    def health() -> Response:
        return jsonify(status="ok")

    @app.get("/readyz")
    def ready() -> tuple[Response, int]:
        if store.ping():
            return jsonify(status="ready"), 200
        return jsonify(status="not ready", reason="store unreachable"), 503

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)

    return app


def ascii_query(wsgi_app: Callable) -> Callable:
    """Percent-encode the raw non-ASCII bytes of a malformed query string.

    The server hands them over as they came; werkzeug decodes the query as strict UTF-8, and a
    stray byte would turn a GET hop (Flares) into a 500. Encoded, it reaches the dialect as an
    invalid character, refused politely in the dialect's own reply.
    """

    def app(environ: dict, start_response: Callable):
        query = environ.get("QUERY_STRING", "")
        if not query.isascii():
            environ["QUERY_STRING"] = quote(query.encode("latin-1", "replace"),
                                            safe="&=+%;/?:@,$!*'()~")
        return wsgi_app(environ, start_response)

    return app
