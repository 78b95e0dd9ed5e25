"""The API's clients: who may call, with which scopes, for which channel, how often.

They are read at start-up from the TOML file named by ``USSD_API_CLIENTS``, one table each::

    [clients.portal]            # the web customer area's back end
    token_sha256 = "9f86d0..."  # of its bearer token: printf %s "$TOKEN" | sha256sum
    scopes = ["subscribers:read", "migrations:write"]
    channel = "web"             # web, app or care: the channel of its migrations
    rate_limit = "20/second"    # optional: across every worker and machine (ratelimit.py)

Only the token's SHA-256 is kept, in the file and in memory. A request's bearer token is hashed
and compared with every client's digest in constant time (``hmac.compare_digest``, no early
exit: the time says nothing of which client, or how much of a digest, matched). The channel of
a client's migrations is the client's, never the request's. The embedded demo makes one client
per channel with every scope (:func:`demo_clients`), its tokens printed by ``ussd serve``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from limits import RateLimitItem

from ..errors import ConfigError
from ..rules import Channel
from .ratelimit import parse_rate_limit


class Scope(StrEnum):
    """What a client may do."""

    SUBSCRIBERS_READ = "subscribers:read"  # a subscriber's page and history
    MIGRATIONS_WRITE = "migrations:write"  # ask for a migration
    CONSUMPTION_WRITE = "consumption:write"  # feed consumption in (billing)


API_CHANNELS = (Channel.WEB, Channel.APP, Channel.CARE)
DEMO_RATE_LIMIT = "20/second"
MAX_TOKEN_LENGTH = 512  # a bearer token longer than this is no client's: not even hashed
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9._~+/-]+=*) *")
_FIELDS = {"token_sha256", "scopes", "channel", "rate_limit"}


@dataclass(frozen=True)
class Client:
    """One API client: its name, its token's SHA-256, scopes, channel and rate limits."""

    name: str
    token_sha256: bytes = field(repr=False)
    scopes: frozenset[Scope]
    channel: Channel
    rate_limit: tuple[RateLimitItem, ...] = ()

    def may(self, scope: Scope) -> bool:
        """True when the client holds ``scope``."""
        return scope in self.scopes


class Clients:
    """The clients of one server, found by their bearer token."""

    def __init__(self, clients: Iterable[Client]):
        self.all = tuple(clients)
        seen: dict[object, str] = {}
        for client in self.all:
            for mark in (client.name, client.token_sha256):
                if mark in seen:
                    what = "name" if mark == client.name else "token"
                    raise ConfigError(f"API clients {seen[mark]!r} and {client.name!r} have "
                                      f"the same {what}")
                seen[mark] = client.name

    def __bool__(self) -> bool:
        return bool(self.all)

    def identify(self, authorization: str | None) -> Client | None:
        """The client whose token the ``Authorization`` header carries (``Bearer <token>``),
        or None: no header, another scheme, a malformed or unknown token."""
        match = _BEARER.fullmatch(authorization or "")
        if match is None or len(match.group(1)) > MAX_TOKEN_LENGTH:
            return None
        digest = hashlib.sha256(match.group(1).encode()).digest()
        found = None
        for client in self.all:  # every digest compared, whatever matched
            if hmac.compare_digest(digest, client.token_sha256):
                found = client
        return found



def unauthorized(authorization: str | None) -> tuple[str, str]:
    """Why ``authorization`` names no client (a ``401``'s detail) and its ``WWW-Authenticate``
    challenge: no header, or another scheme (``Basic ...``), is told to send a bearer token,
    with no error code (RFC 6750, 3.1: no bearer credentials were sent); a bearer token that is
    no client's, ``invalid_token``."""
    send = "Send Authorization: Bearer <token>, the token of a client of this server."
    challenge = 'Bearer realm="ussd-api"'
    if not authorization:
        return send, challenge
    scheme, *token = authorization.split(None, 1) or [""]
    if scheme.lower() != "bearer":
        return f"The Authorization header is not a bearer token. {send}", challenge
    if not token:  # "Bearer" alone: malformed (RFC 6750, 3.1)
        return (f"The Authorization header has no token after Bearer. {send}",
                challenge + ', error="invalid_request"')
    return ("This bearer token is no client's of this server.",
            challenge + ', error="invalid_token"')

def load_clients(path: Path) -> list[Client]:
    """The clients of the file at ``path``; ConfigError naming the file and the client for
    anything wrong in it."""
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"USSD_API_CLIENTS: cannot read {path}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"USSD_API_CLIENTS: {path} is not TOML: {error}") from None
    tables = document.get("clients")
    if set(document) - {"clients"} or not isinstance(tables, dict) or not tables:
        raise ConfigError(f"USSD_API_CLIENTS: {path} must hold [clients.<name>] tables only, "
                          f"at least one")
    clients = []
    for name, table in tables.items():
        try:
            clients.append(_client(name, table))
        except ConfigError as error:
            raise ConfigError(f"USSD_API_CLIENTS: {path}: [clients.{name}]: {error}") from None
    Clients(clients)  # the same name or token twice is refused here
    return clients


def _client(name: str, table: object) -> Client:
    if not _NAME.fullmatch(name):
        raise ConfigError("a name is 1-64 letters, digits, '_', '.', '-'")
    if not isinstance(table, dict):
        raise ConfigError("not a table")
    unknown = set(table) - _FIELDS
    if unknown:
        raise ConfigError(f"unknown field(s) {', '.join(sorted(unknown))} "
                          f"(known: {', '.join(sorted(_FIELDS))})")
    digest = table.get("token_sha256")
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest.lower()):
        raise ConfigError("token_sha256 must be the token's SHA-256 in 64 hex digits")
    scopes = table.get("scopes")
    known = [scope.value for scope in Scope]
    if (not isinstance(scopes, list) or not scopes
            or not all(isinstance(s, str) and s in known for s in scopes)):
        raise ConfigError(f"scopes must list some of {', '.join(known)}")
    channels = [channel.value for channel in API_CHANNELS]
    if table.get("channel") not in channels:
        raise ConfigError(f"channel must be one of {', '.join(channels)}")
    rate_limit = table.get("rate_limit")
    if rate_limit is not None and not isinstance(rate_limit, str):
        raise ConfigError("rate_limit must be text, such as \"20/second\"")
    return Client(name=name, token_sha256=bytes.fromhex(digest), channel=Channel(table["channel"]),
                  scopes=frozenset(Scope(scope) for scope in scopes),
                  rate_limit=parse_rate_limit(rate_limit) if rate_limit is not None else ())


def new_demo_tokens() -> dict[str, str]:
    """A fresh bearer token for each demo client, by channel."""
    return {channel.value: secrets.token_urlsafe(24) for channel in API_CHANNELS}


def demo_clients(tokens: Mapping[str, str]) -> list[Client]:
    """The demo's clients, ``demo-web``, ``demo-app``, ``demo-care``: every scope, the tokens
    given by channel."""
    return [Client(name=f"demo-{channel}", channel=Channel(channel), scopes=frozenset(Scope),
                   token_sha256=hashlib.sha256(token.encode()).digest(),
                   rate_limit=parse_rate_limit(DEMO_RATE_LIMIT))
            for channel, token in tokens.items()]
