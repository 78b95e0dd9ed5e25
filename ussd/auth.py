"""Only the gateway in: a shared secret per dialect, and an optional address allow-list.

A forged callback could change a stranger's profile, so every gateway endpoint checks, before
anything else (no Redis call at all for a refused request):

1. the client address, when the dialect has an allow-list (``USSD_<DIALECT>_ALLOW``): outside
   it, ``403``;
2. the shared secret, when the dialect has one: a token (``USSD_<DIALECT>_TOKEN``) sent as
   ``Authorization: Bearer <token>`` or in the path (``/ussd/<dialect>/<token>``, for gateways
   that can only be given a URL), or HTTP basic credentials (``USSD_<DIALECT>_BASIC_AUTH``);
   missing or wrong, ``401``.

Secrets are compared in constant time, on their SHA-256 digests so that not even their length
leaks. A production-like start (a ``REDIS_URL``) with a gateway left without a secret is
refused unless told it is insecure (``USSD_INSECURE=1``, ``ussd serve --insecure``); the
embedded store, a demo, may run open but says so.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Callable, Iterable

from flask import Request, Response, request

from . import metrics
from .errors import ConfigError
from .settings import GatewaySecrets, Settings

log = logging.getLogger("ussd.auth")

# The Authorization headers a guard remembers as passed: the gateway's one or two spellings.
MAX_PASSED_HEADERS = 8


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def client_ip(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``address`` as an IP address, or None when it is not one. Behind ``USSD_PROXY_HOPS`` it
    is the caller's ``X-Forwarded-For`` text (werkzeug's ProxyFix takes it as it came), so it
    is neither logged nor matched unless it is an address: and one with a zone (``::1%...``,
    any text after the ``%``) is not, as no gateway's forwarded address has one."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        return None
    return ip


def _same(given: str | None, digest: bytes) -> bool:
    """True when ``given`` is the secret whose digest is ``digest`` (constant time)."""
    return given is not None and hmac.compare_digest(_digest(given), digest)


class Guard:
    """The checks one dialect's endpoints make before serving a request."""

    def __init__(self, dialect: str, secrets: GatewaySecrets | None):
        secrets = secrets or GatewaySecrets()
        self.dialect = dialect
        self.token = _digest(secrets.token) if secrets.token else None
        self.basic: tuple[bytes, bytes] | None = None
        if secrets.basic_auth:
            user, _, password = secrets.basic_auth.partition(":")
            self.basic = (_digest(user), _digest(password))
        self.networks = secrets.allow
        self._passed: set[str] = set()  # Authorization headers that carried the secret

    @property
    def open(self) -> bool:
        """True when any caller that passes the allow-list is served: no secret to check."""
        return self.token is None and self.basic is None

    def protect(self, view: Callable[[], Response]) -> Callable[..., Response]:
        """``view`` behind this guard; a path token, if the route has one, is checked too."""

        @functools.wraps(view)
        def guarded(token: str | None = None) -> Response:
            refusal = self.refusal(token)
            return refusal if refusal is not None else view()

        return guarded

    def refusal(self, path_token: str | None = None) -> Response | None:
        """The ``403``/``401`` for the current request, or None when it may go on."""
        # The request itself, not Flask's proxy (about 0.8 us a read through it): 0.7-1.0 us a
        # hop of a guard with a secret and no allow-list (one read), 1.4-2.8 us with an
        # allow-list (two), timed as the view's reads are (gateways/view.py); an open guard
        # reads nothing.
        current = request._get_current_object()
        if self.networks and not self.allows(current.remote_addr):
            return self._refuse(403, "forbidden", current.remote_addr)
        if self.open or self.authenticated(path_token, current):
            return None
        return self._refuse(401, "unauthorized", current.remote_addr)

    def allows(self, address: str | None) -> bool:
        """True when ``address`` is on the allow-list (IPv4-mapped IPv6 counts as IPv4); never
        when it is not an address (:func:`client_ip`)."""
        ip = client_ip(address)
        if ip is None:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)

    def authenticated(self, path_token: str | None, current: Request) -> bool:
        """True when the request carries this dialect's secret (path token, bearer or basic).

        A gateway sends the same ``Authorization`` header on every hop: once it has passed,
        its value is recognised as it is, without parsing and hashing it again (about 5 us a
        hop). Only headers that passed are kept, a few at most, so a caller without the secret
        adds nothing and always meets the full constant-time check. A token in the path is
        always checked.
        """
        header = current.environ.get("HTTP_AUTHORIZATION") if path_token is None else None
        if header is not None and header in self._passed:
            return True
        if not self._carries_secret(path_token, current):
            return False
        if header is not None and len(self._passed) < MAX_PASSED_HEADERS:
            self._passed.add(header)
        return True

    def _carries_secret(self, path_token: str | None, current: Request) -> bool:
        credentials = current.authorization
        kind = credentials.type if credentials is not None else None
        if self.token is not None:
            if path_token is not None:
                return _same(path_token, self.token)
            if kind == "bearer" and _same(credentials.token, self.token):
                return True
        if self.basic is not None and kind == "basic":
            # Both compared, whatever the first gives: the time says nothing of which failed.
            user_ok = _same(credentials.username, self.basic[0])
            password_ok = _same(credentials.password, self.basic[1])
            return user_ok and password_ok
        return False

    def _refuse(self, status: int, reason: str, address: str | None) -> Response:
        metrics.record_rejection(self.dialect, reason)
        log.warning("refused gateway=%s status=%d from=%s", self.dialect, status,
                    client_ip(address) or "-")
        response = Response(f"{reason}\n", status=status, mimetype="text/plain")
        if status == 401:
            schemes = (["Bearer"] if self.token is not None else []) + (
                ["Basic"] if self.basic is not None else [])
            response.headers["WWW-Authenticate"] = ", ".join(
                f'{scheme} realm="ussd-{self.dialect}"' for scheme in schemes)
        return response


def open_gateways(settings: Settings, dialects: Iterable[str]) -> list[str]:
    """The enabled dialects with no secret; ConfigError for a setting naming no dialect."""
    known = tuple(dialects)
    for name in (*settings.gateway_secrets, *(settings.gateways or ())):
        if name not in known:
            raise ConfigError(
                f"no gateway dialect {name!r} (USSD_GATEWAYS, USSD_{name.upper()}_...); "
                f"known: {', '.join(known)}"
            )
    enabled = known if settings.gateways is None else settings.gateways
    return [name for name in enabled
            if not settings.gateway_secrets.get(name, GatewaySecrets()).has_secret]


def check_gateway_security(settings: Settings, dialects: Iterable[str]) -> list[str]:
    """Refuse a production-like start with an open gateway; return the open ones, to be said.

    Production-like means a ``REDIS_URL``: the embedded store (a demo, or tests that hand in
    their own client) may run open, and a warning says so.
    """
    unprotected = open_gateways(settings, dialects)
    if not unprotected:
        return []
    names = ", ".join(unprotected)
    if settings.redis_url is not None and not settings.insecure:
        variables = " or ".join(f"USSD_{unprotected[0].upper()}_{kind}"
                                for kind in ("TOKEN", "BASIC_AUTH"))
        raise ConfigError(
            f"gateway endpoint(s) with no secret: {names}. Anyone could drive a subscriber's "
            f"session. Set {variables} (and so on for each), disable the dialect "
            f"(USSD_GATEWAYS=...), or start with USSD_INSECURE=1 (ussd serve --insecure) "
            f"if this server is only reachable by the gateway."
        )
    return unprotected
