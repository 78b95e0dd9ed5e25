"""Settings, from ``USSD_``-prefixed environment variables, with every default in one place.

=========================  ===============================  ================================
variable                   meaning                          default
=========================  ===============================  ================================
``REDIS_URL``              Redis to use (``USSD_REDIS_URL``  none: the embedded store
                           wins); ``?cluster=true`` for a
                           cluster, ``redis+sentinel://``
                           for Sentinel (store/sentinel.py)
``USSD_REDIS_MIN_         replicas a migration must reach  ``0``
REPLICAS``                 before its success is shown
``USSD_KEY_PREFIX``        first part of every key          ``ussd``
``USSD_SESSION_TTL``       seconds a session record lives   ``180``
``USSD_TIMEZONE``          zone of the calendar month       ``Africa/Abidjan``
``USSD_MONTHLY_CAP``       migrations per month             ``3``
``USSD_THRESHOLD_<NAME>``  F CFA consumed last month to     ``TIGRE=2500``, ``AIGLE=8000``
                           migrate to profile NAME
``USSD_MENUS_DIR``         a folder of menu and text files  the package's own ``menus/``
                           to use instead of the package's
``USSD_REDIS_TIMEOUT``     seconds to wait on Redis         ``1.0``
``USSD_DEMO``              load the demo data set at start  off
                           (embedded store only)
``USSD_SEED_FILES``        CSV files to load at start,      none
                           separated by ``:`` (embedded
                           store only)
``USSD_GATEWAYS``          the gateway dialects served,     all of them
                           separated by ``,``
``USSD_<DIALECT>_TOKEN``   the dialect's shared token       none
                           (16 characters at least)
``USSD_<DIALECT>_BASIC_    ``user:password`` the gateway    none
AUTH``                     sends with HTTP basic auth
``USSD_<DIALECT>_ALLOW``   addresses or CIDR networks the   any address
                           gateway calls from, by ``,``
``USSD_PROXY_HOPS``        proxies in front that set        ``0``
                           ``X-Forwarded-For``
``USSD_INSECURE``          serve gateways without a secret  off
                           even with a Redis (see auth.py)
``USSD_SERVICE_CODES``     the USSD codes answered, by      ``*121#,#121#``
                           ``,`` (a sandbox's ``*384*1234#``)
``USSD_RESUME_WINDOW``     seconds after a drop in which a  ``120``
                           redial may resume (0: never)
``USSD_SIMULATOR``         serve the browser simulator at   off (on with ``--demo``)
                           ``/simulator``
``USSD_SIMULATOR_AUTH``    ``user:password`` for it (needed none
                           with ``USSD_SIMULATOR``)
``USSD_METRICS_PORT``      serve ``/metrics`` on this port  none: ``/metrics`` on the
                           instead of the gateways' port    gateways' port
``USSD_METRICS_HOST``      the metrics listener's address   ``ussd serve --host``
``USSD_LOG_FORMAT``        ``text`` or ``json`` (one JSON   ``text``
                           object per line)
``USSD_LOG_KEY``           the key of the subscriber hash   none: no hash in the logs
                           in log lines (HMAC-SHA256)
``USSD_API_CLIENTS``       the HTTP API's clients file      none: the API is off (404)
                           (TOML: ``ussd/api/clients.py``)
``USSD_BILLING_*`` ...     billing, the relay, the SMS      ``ussd/billing/config.py``
``USSD_MAX_BODY`` ...      the bounds of a bad day          ``ussd/limits.py``
=========================  ===============================  ================================

``<DIALECT>`` is a gateway dialect's name in capitals (``AFRICASTALKING``, ``HUBTEL``...).

``USSD_DEMO`` and ``USSD_SEED_FILES`` let each worker process of ``ussd serve`` fill its own
embedded store; with a Redis, ``ussd serve --demo/--seed`` and ``ussd seed`` load the data once,
before serving. ``api_demo_tokens`` is no variable: ``ussd serve --demo`` makes the demo API
clients' tokens, prints them and hands them to its workers in their settings.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .billing.config import OWN_NAMES, BillingSettings  # OWN_NAMES: not gateway secrets
from .errors import ConfigError
from .limits import Limits
from .rules import DEFAULT_THRESHOLDS, Policy, Profile
from .variables import LOG_FORMATS, MIN_SECRET_LENGTH
from .variables import choice as _choice
from .variables import codes as _codes
from .variables import flag as _flag
from .variables import log_key as _log_key
from .variables import names as _names
from .variables import number as _number
from .variables import port as _port
from .variables import seconds as _seconds
from .variables import user_password as _user_password


def shipped_menus() -> Traversable:
    """The menus shipped with the service: ``ussd/menus`` inside an installed wheel (package
    data, pyproject.toml maps the top-level ``menus/`` there), else the repository's own
    top-level ``menus/`` (an editable install, or a checkout on ``PYTHONPATH``)."""
    installed = files("ussd") / "menus"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent / "menus"


DEFAULT_MENUS_DIR: Traversable = shipped_menus()


# The codes answered unless USSD_SERVICE_CODES says otherwise (gateways/fields.py reads them).
DEFAULT_SERVICE_CODES = ("*121#", "#121#")
_GATEWAY_SECRET = re.compile(r"^USSD_([A-Z0-9]+)_(TOKEN|BASIC_AUTH|ALLOW)$")


@dataclass(frozen=True)
class GatewaySecrets:
    """How one gateway dialect's callers prove they are the gateway (see ``ussd/auth.py``).

    ``allow`` holds the addresses and networks it may call from (empty: any), parsed here.
    """

    token: str | None = field(default=None, repr=False)
    basic_auth: str | None = field(default=None, repr=False)  # "user:password"
    allow: tuple = ()  # given as strings or networks, kept as ipaddress networks

    def __post_init__(self):
        networks = []
        for entry in self.allow:
            try:
                networks.append(ipaddress.ip_network(str(entry).strip(), strict=False))
            except ValueError:
                raise ConfigError(f"not an IP address or network: {entry!r}") from None
        object.__setattr__(self, "allow", tuple(networks))

    @property
    def has_secret(self) -> bool:
        """True when callers must show a token or credentials."""
        return bool(self.token or self.basic_auth)


@dataclass(frozen=True)
class Settings:
    """Everything the service can be configured with."""

    redis_url: str | None = None
    key_prefix: str = "ussd"
    session_ttl: int = 180
    timezone: str = "Africa/Abidjan"
    monthly_cap: int = 3
    thresholds: Mapping[Profile, int] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    menus_dir: Traversable | Path = DEFAULT_MENUS_DIR
    redis_timeout: float = 1.0
    redis_min_replicas: int = 0
    limits: Limits = field(default_factory=Limits)
    demo: bool = False
    seed_files: tuple[str, ...] = ()
    seed_replace: bool = False  # ussd serve --seed ... --replace (embedded store)
    gateways: tuple[str, ...] | None = None  # None: every dialect
    gateway_secrets: Mapping[str, GatewaySecrets] = field(default_factory=dict, repr=False)
    proxy_hops: int = 0
    insecure: bool = False
    service_codes: tuple[str, ...] = DEFAULT_SERVICE_CODES
    resume_window: int = 120  # seconds; 0: a dropped session is never offered again
    simulator: bool = False
    simulator_auth: str | None = field(default=None, repr=False)  # "user:password"
    billing: BillingSettings = field(default_factory=BillingSettings)
    metrics_port: int | None = None  # None: /metrics on the gateways' port
    metrics_host: str | None = None  # None: the address ussd serve listens on
    log_format: str = "text"
    log_key: bytes | None = field(default=None, repr=False)
    api_clients: Path | None = None  # None: no clients file
    # The demo API clients' tokens by channel (embedded store and demo only); none: made up.
    api_demo_tokens: Mapping[str, str] = field(default_factory=dict, repr=False)

    def secrets(self) -> tuple[str, ...]:
        """Every secret value a log line must never show (tokens, passwords, keys)."""
        found = []
        for gateway in self.gateway_secrets.values():
            found += [gateway.token or "", gateway.basic_auth or ""]
            found.append((gateway.basic_auth or "").partition(":")[2])
        if self.log_key:
            found.append(self.log_key.decode(errors="replace"))
        if self.simulator_auth:
            found += [self.simulator_auth, self.simulator_auth.partition(":")[2]]
        found += [self.billing.token or "", self.billing.sms_api_key or "",
                  *self.api_demo_tokens.values()]
        if self.redis_url:  # the user part's, and a sentinel_password=
            from urllib.parse import unquote

            for user_part, option in re.findall(r":([^:@/]*)@|password=([^&]*)", self.redis_url):
                found.append(unquote(user_part or option))
        return tuple(sorted({secret for secret in found if len(secret) >= 4}, key=len,
                            reverse=True))

    @property
    def policy(self) -> Policy:
        """The rules' figures."""
        return Policy(monthly_cap=self.monthly_cap, thresholds=self.thresholds)

    @property
    def zone(self) -> ZoneInfo:
        """The operator's time zone."""
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown time zone {self.timezone!r}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from the environment (``os.environ`` unless given)."""
        env = os.environ if environ is None else environ
        thresholds = dict(DEFAULT_THRESHOLDS)
        for name, value in env.items():
            if name.startswith("USSD_THRESHOLD_"):
                profile = Profile.parse(name.removeprefix("USSD_THRESHOLD_"))
                if profile is None:
                    raise ConfigError(f"{name}: no such profile")
                thresholds[profile] = _number(name, value, 0)
        default = cls()  # every default is written once, in the fields above
        settings = cls(
            redis_url=env.get("USSD_REDIS_URL") or env.get("REDIS_URL") or default.redis_url,
            key_prefix=env.get("USSD_KEY_PREFIX", default.key_prefix),
            session_ttl=_number("USSD_SESSION_TTL", env.get("USSD_SESSION_TTL"),
                                default.session_ttl),
            timezone=env.get("USSD_TIMEZONE", default.timezone),
            monthly_cap=_number("USSD_MONTHLY_CAP", env.get("USSD_MONTHLY_CAP"),
                                default.monthly_cap),
            thresholds=thresholds,
            menus_dir=Path(env["USSD_MENUS_DIR"]) if env.get("USSD_MENUS_DIR")
            else default.menus_dir,
            redis_timeout=_seconds("USSD_REDIS_TIMEOUT", env.get("USSD_REDIS_TIMEOUT"),
                                   default.redis_timeout),
            redis_min_replicas=_number("USSD_REDIS_MIN_REPLICAS",
                                       env.get("USSD_REDIS_MIN_REPLICAS"),
                                       default.redis_min_replicas),
            limits=Limits.from_env(env),
            demo=_flag(env.get("USSD_DEMO")),
            seed_files=tuple(f for f in env.get("USSD_SEED_FILES", "").split(os.pathsep) if f),
            gateways=_names(env.get("USSD_GATEWAYS", "")) or default.gateways,
            gateway_secrets=_gateway_secrets(env),
            proxy_hops=_number("USSD_PROXY_HOPS", env.get("USSD_PROXY_HOPS"), default.proxy_hops),
            insecure=_flag(env.get("USSD_INSECURE")),
            service_codes=_codes(env.get("USSD_SERVICE_CODES")) or default.service_codes,
            resume_window=_number("USSD_RESUME_WINDOW", env.get("USSD_RESUME_WINDOW"),
                                  default.resume_window),
            simulator=_flag(env.get("USSD_SIMULATOR")),
            simulator_auth=_user_password("USSD_SIMULATOR_AUTH", env.get("USSD_SIMULATOR_AUTH")),
            billing=BillingSettings.from_env(env),
            metrics_port=_port("USSD_METRICS_PORT", env.get("USSD_METRICS_PORT")),
            metrics_host=env.get("USSD_METRICS_HOST") or default.metrics_host,
            log_format=_choice("USSD_LOG_FORMAT", env.get("USSD_LOG_FORMAT"), LOG_FORMATS),
            log_key=_log_key(env.get("USSD_LOG_KEY")),
            api_clients=(Path(env["USSD_API_CLIENTS"]) if env.get("USSD_API_CLIENTS")
                         else default.api_clients),
        )
        if settings.simulator and settings.simulator_auth is None:
            raise ConfigError("USSD_SIMULATOR needs USSD_SIMULATOR_AUTH=user:password: the "
                              "simulator can drive any subscriber's session")
        settings.zone  # noqa: B018  (fail at start-up, not on the first hop)
        if settings.session_ttl < 1:
            raise ConfigError("USSD_SESSION_TTL must be at least 1 second")
        return settings


def _gateway_secrets(env: Mapping[str, str]) -> dict[str, GatewaySecrets]:
    """``USSD_<DIALECT>_TOKEN``, ``_BASIC_AUTH`` and ``_ALLOW``, by dialect (checked at start)."""
    found: dict[str, dict[str, object]] = {}
    for name, value in env.items():
        match = _GATEWAY_SECRET.match(name)
        if not match or not value.strip() or name in OWN_NAMES:
            continue  # compose passes unset variables as empty strings
        dialect, kind = match.group(1).lower(), match.group(2).lower()
        if kind == "token" and len(value) < MIN_SECRET_LENGTH:
            raise ConfigError(f"{name} must be at least {MIN_SECRET_LENGTH} characters")
        if kind == "basic_auth":
            user, _, password = value.partition(":")
            if not user or len(password) < MIN_SECRET_LENGTH:
                raise ConfigError(f"{name} must be user:password, the password at least "
                                  f"{MIN_SECRET_LENGTH} characters")
        if kind == "allow":
            value = tuple(entry for entry in value.replace(" ", ",").split(",") if entry)
        found.setdefault(dialect, {})[kind] = value
    secrets = {}
    for dialect, fields in found.items():
        try:
            secrets[dialect] = GatewaySecrets(**fields)
        except ConfigError as error:
            raise ConfigError(f"USSD_{dialect.upper()}_ALLOW: {error}") from None
    return secrets
