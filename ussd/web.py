"""The Flask application: gateway endpoints, the HTTP API, health, readiness, metrics, and
the browser simulator for testers when it is enabled (ussd/simulator/)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from flask import Flask, Response, jsonify, request
from flask.json.provider import DefaultJSONProvider

from . import api, metrics, simulator
from .assembly import build_service
from .gateways.paths import canonical_paths
from .gateways.view import check_security, mount
from .observe import where_raised
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

    app = UssdFlask("ussd")
    app.extensions["ussd"] = service
    if settings.proxy_hops:
        # The gateway's address, for its allow-list, as the trusted proxies in front saw it.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops)
    app.wsgi_app = canonical_paths(ascii_query(app.wsgi_app))
    mount(app, service, settings)
    simulator.mount(app, service, settings)
    embedded = redis_client is None and settings.redis_url is None  # as build_service's
    api.mount(app, service, settings, embedded)

    @app.get("/healthz")
    def health() -> Response:
        return jsonify(status="ok")

    @app.get("/readyz")
    def ready() -> tuple[Response, int]:
        # Ready only if Redis takes a write now: a PING is answered out of memory too.
        reason = store.unready()
        if reason is None:
            return jsonify(status="ready"), 200
        return jsonify(status="not ready", reason=reason), 503

    if settings.metrics_port is None:  # else on their own listener (ussd serve), not here

        @app.get("/metrics")
        def prometheus() -> Response:
            body, content_type = metrics.exposition()
            return Response(body, content_type=content_type)

    return app


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, with a body nested too deeply for the parser read as invalid JSON.

    The standard library's parser raises ``RecursionError`` at about 1,000 levels, which
    ``request.get_json(silent=True)`` does not catch (it catches ``ValueError``): a 2 KB body of
    ``[`` characters was a 500, to a gateway, to the API and to the simulator alike. As a
    ``ValueError`` it is what any other malformed body is: the dialect's polite end, the API's
    400 problem. Every other body parses exactly as before.
    """

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


class UssdFlask(Flask):
    """Flask, logging a request that fails inside it without the request's path: a gateway's
    token may be in the path (``/ussd/<dialect>/<token>``), and the exception's message may
    quote a phone number. The route's pattern, the exception's type and where it was raised
    say what failed; the gateway gets Flask's 500 as before. Request bodies are read by
    :class:`BoundedJSONProvider`."""

    json_provider_class = BoundedJSONProvider

    def log_exception(self, exc_info) -> None:
        rule = request.url_rule.rule if request.url_rule is not None else "-"
        self.logger.error("request failed: %s %s: %s at %s", request.method, rule,
                          exc_info[0].__name__, where_raised(exc_info[1]))


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
