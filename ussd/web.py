"""The Flask application: gateway endpoints, the HTTP API, health, readiness, metrics, and
the browser simulator for testers when it is enabled (ussd/simulator/)."""

from __future__ import annotations

import json
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


def one_value_a_name(members: list[tuple[str, Any]]) -> dict:
    """A JSON object's members as a dict; ValueError when a name is given more than once."""
    found = dict(members)
    if len(found) != len(members):
        raise ValueError("a member name given more than once")
    return found


# Made once: json.loads(..., object_pairs_hook=...) makes a decoder on every call (3.5 us).
_DECODER = json.JSONDecoder(object_pairs_hook=one_value_a_name)


class RequestJSONProvider(DefaultJSONProvider):
    """Flask's JSON, reading a request body strictly: a member name given twice in one object,
    or nesting too deep for the parser, is invalid JSON (``ValueError``), as any other
    malformed body is (``request.get_json(silent=True)`` is None: the API's 400 problem).

    A name given twice was read as its last value, silently: ``{"profile": "Tigre",
    "profile": "Dauphin"}`` migrated to Dauphin. The check is :func:`one_value_a_name` on each
    object, which costs, by timeit: 0.1 us on a migration's body, read 0.4 us faster than
    before all the same (4.2 us to 3.8: one decoder made once, no keyword arguments); 0.6 ms
    on 1,000 consumption entries (1.0 ms to 1.6, 0.6 us an entry, where pydantic then takes 2
    ms over them and ``consumption.check`` 6). Named where the body is refused, by
    ``api/openapi.py`` (``repeated_members``), which reads it again only then. The standard
    library's parser raises ``RecursionError`` at about 1,000 levels, which
    ``get_json(silent=True)`` does not catch (it catches ``ValueError``): a 2 KB body of ``[``
    characters was a 500. Every other body parses exactly as before.
    """

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            if kwargs:  # a caller's own options (none of the app's): each name once still
                return super().loads(s, **{"object_pairs_hook": one_value_a_name, **kwargs})
            if isinstance(s, bytes | bytearray):  # as json.loads reads bytes
                s = s.decode(json.detect_encoding(s), "surrogatepass")
            return _DECODER.decode(s)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


class UssdFlask(Flask):
    """Flask, logging a request that fails inside it without the request's path: a gateway's
    token may be in the path (``/ussd/<dialect>/<token>``), and the exception's message may
    quote a phone number. The route's pattern, the exception's type and where it was raised
    say what failed; the gateway gets Flask's 500 as before. Request bodies are read by
    :class:`RequestJSONProvider`."""

    json_provider_class = RequestJSONProvider

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
