"""Redis Sentinel: the ``redis+sentinel://`` URL, and a client that follows the master.

A Sentinel deployment (a master, its replicas, and three or more ``redis-sentinel`` watching
them) is the usual way to make one Redis highly available: when the master dies, the
sentinels promote a replica. The client asks the sentinels where the master is whenever it
opens a connection (redis-py's ``redis.sentinel``), so a connection to the old master, once
broken, reconnects to the new one: no restart of the app.

The URL names the sentinels, the master's name as they know it, and the database::

    redis+sentinel://s1:26379,s2:26379,s3:26379/mymaster/0
    redis+sentinel://:PASSWORD@s1:26379,s2:26379/mymaster/0         the master's password
    redis+sentinel://USER:PASSWORD@s1,s2/mymaster/0                  an ACL user (port 26379)
    redis+sentinel://:PASSWORD@s1,s2/mymaster?sentinel_password=SP  the sentinels' own password
                                                        (also sentinel_username=...)

A password is percent-encoded as in any URL (``%40`` for ``@``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from redis.sentinel import Sentinel

from ..errors import ConfigError

SCHEME = "redis+sentinel://"
DEFAULT_PORT = 26379


@dataclass(frozen=True)
class SentinelUrl:
    """What a ``redis+sentinel://`` URL says."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)


def is_sentinel_url(url: str) -> bool:
    """True for a ``redis+sentinel://`` URL."""
    return url.lower().startswith(SCHEME)


def parse_sentinel_url(url: str) -> SentinelUrl:
    """The parts of a ``redis+sentinel://`` URL; ConfigError (never quoting a password) for
    one that is not well formed."""
    rest = url[len(SCHEME):]
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        userinfo, hosts = "", netloc
    username, colon, password = userinfo.partition(":")
    sentinels = tuple(_address(host) for host in hosts.split(",") if host)
    if not sentinels:
        raise ConfigError("a redis+sentinel:// URL names no sentinel host")
    parts = [part for part in path.split("/") if part]
    if not parts or len(parts) > 2:
        raise ConfigError("a redis+sentinel:// URL needs /<master name>[/<db>] after its hosts")
    db = parts[1] if len(parts) == 2 else "0"
    if not db.isdecimal():
        raise ConfigError(f"redis+sentinel:// URL: the database must be a number, got {db!r}")
    options = dict(parse_qsl(query))
    unknown = set(options) - {"sentinel_username", "sentinel_password"}
    if unknown:
        raise ConfigError(f"redis+sentinel:// URL: unknown option(s) {', '.join(sorted(unknown))}"
                          " (known: sentinel_username, sentinel_password)")
    return SentinelUrl(
        sentinels=sentinels, service=unquote(parts[0]), db=int(db),
        username=unquote(username) or None,
        password=unquote(password) if colon else None,
        sentinel_username=options.get("sentinel_username"),
        sentinel_password=options.get("sentinel_password"),
    )


def sentinel_client(url: str, options: dict[str, Any]) -> Any:
    """A client of the master the URL's sentinels name, with ``options`` (time-outs, retry,
    decoding) on its connections, and their time-outs and retry on the sentinels'.

    The sentinels' connections need the service's retry as much as its time-outs: built with
    redis-py's default (retries with exponential back-off) they made asking three sentinels
    that refuse connections take 25 s, and a hop or ``/readyz`` waited that long for its
    polite "unavailable". With them, a refused sentinel costs a couple of milliseconds, a
    hung one a time-out.
    """
    parsed = parse_sentinel_url(url)
    timeouts = {name: value for name, value in options.items()
                if name.startswith("socket_") or name == "retry"}
    sentinel_auth = {"username": parsed.sentinel_username,
                     "password": parsed.sentinel_password}
    sentinels = Sentinel(
        parsed.sentinels,
        sentinel_kwargs={**timeouts, **{k: v for k, v in sentinel_auth.items() if v}},
    )
    return sentinels.master_for(parsed.service, db=parsed.db, username=parsed.username,
                                password=parsed.password, health_check_interval=30, **options)


def _address(host: str) -> tuple[str, int]:
    """``host[:port]`` or ``[v6]:port``, the port 26379 when not given."""
    name, port = host, str(DEFAULT_PORT)
    if host.startswith("["):
        name, _, after = host[1:].partition("]")
        if after.startswith(":"):
            port = after[1:]
    elif host.count(":") == 1:
        name, port = host.split(":")
    if not name or not port.isdecimal() or not 0 < int(port) < 65536:
        raise ConfigError(f"redis+sentinel:// URL: not a host[:port]: {host!r}")
    return name, int(port)
