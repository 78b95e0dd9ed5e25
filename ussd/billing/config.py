"""The billing, relay and SMS settings (``Settings.billing``), every default written once here.

=============================  ==================================  ============================
variable                       meaning                             default
=============================  ==================================  ============================
``USSD_BILLING_URL``           where ``ussd relay`` POSTs each     none: events wait in the
                               migration's event                   outbox
``USSD_BILLING_TOKEN``         its bearer token                    none: no ``Authorization``
``USSD_BILLING_TIMEOUT``       seconds per billing or SMS call     ``10``
``USSD_BILLING_MAX_ATTEMPTS``  failures before an event (or an     ``10``
                               SMS) goes to the dead letters
``USSD_RELAY_CLAIM_AFTER``     seconds before a quiet relay's      ``30`` (more than twice the
                               entries are taken by another        timeout)
``USSD_RELAY_BACKOFF``,        first retry's delay, doubled after  ``1``, at most ``60``
``USSD_RELAY_BACKOFF_MAX``     each failure, with jitter
``USSD_RELAY_CONCURRENCY``     deliveries in flight per relay      ``8``
``USSD_RELAY_METRICS_PORT``    the relay's ``/metrics`` port       ``9121`` (``0``: none)
``USSD_SMS_URL``               Africa's Talking's SMS endpoint     none: no SMS is sent
``USSD_SMS_USERNAME``,         its ``username``, ``apiKey`` header none
``USSD_SMS_API_KEY``,          and optional ``from``
``USSD_SMS_SENDER``
=============================  ==================================  ============================

An empty variable (as docker compose passes an unset one) is unset.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from ..errors import ConfigError

# Billing's variables shaped like a gateway's secret (USSD_<DIALECT>_TOKEN): settings.py skips
# them when it reads the gateways' secrets.
OWN_NAMES = frozenset({"USSD_BILLING_TOKEN"})


@dataclass(frozen=True)
class BillingSettings:
    """Where the relay delivers the outbox, how it retries, and the SMS provider."""

    url: str | None = None
    token: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    max_attempts: int = 10
    claim_after: float = 30.0
    backoff: float = 1.0
    backoff_max: float = 60.0
    concurrency: int = 8
    metrics_port: int = 9121
    sms_url: str | None = None
    sms_username: str | None = None
    sms_api_key: str | None = field(default=None, repr=False)
    sms_sender: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BillingSettings:
        """The settings from ``env``; ConfigError naming the variable of a bad value."""
        default = cls()

        def text(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        def seconds(name: str, fallback: float, most: float = 3600) -> float:
            value = text(name)
            try:
                number = float(value) if value is not None else fallback
            except ValueError:
                raise ConfigError(f"{name} must be a number of seconds, got {value!r}") from None
            if not 0 < number <= most:
                raise ConfigError(f"{name} must be between 0 and {most:g} seconds, got {value!r}")
            return number

        def count(name: str, fallback: int, least: int = 1) -> int:
            value = text(name)
            if value is None:
                return fallback
            if not value.isdigit():
                raise ConfigError(f"{name} must be a whole number, got {value!r}")
            if int(value) < least:
                raise ConfigError(f"{name} must be at least {least}, got {value}")
            return int(value)

        settings = cls(
            url=_url("USSD_BILLING_URL", text("USSD_BILLING_URL")),
            token=text("USSD_BILLING_TOKEN"),
            timeout=seconds("USSD_BILLING_TIMEOUT", default.timeout, 120),
            max_attempts=count("USSD_BILLING_MAX_ATTEMPTS", default.max_attempts),
            claim_after=seconds("USSD_RELAY_CLAIM_AFTER", default.claim_after),
            backoff=seconds("USSD_RELAY_BACKOFF", default.backoff),
            backoff_max=seconds("USSD_RELAY_BACKOFF_MAX", default.backoff_max),
            concurrency=count("USSD_RELAY_CONCURRENCY", default.concurrency),
            metrics_port=count("USSD_RELAY_METRICS_PORT", default.metrics_port, 0),
            sms_url=_url("USSD_SMS_URL", text("USSD_SMS_URL")),
            sms_username=text("USSD_SMS_USERNAME"),
            sms_api_key=text("USSD_SMS_API_KEY"),
            sms_sender=text("USSD_SMS_SENDER"),
        )
        if settings.claim_after <= 2 * settings.timeout:
            # A live relay renews its hold on an entry before every call: one call must end
            # well before another relay may take the entry over.
            raise ConfigError("USSD_RELAY_CLAIM_AFTER must be more than twice "
                              "USSD_BILLING_TIMEOUT")
        return settings

    def as_dict(self) -> dict:
        """Every field by name (for tests and tools)."""
        return {name.name: getattr(self, name.name) for name in fields(self)}


def _url(name: str, value: str | None) -> str | None:
    if value is not None and not re.match(r"^https?://[^/\s]+", value):
        raise ConfigError(f"{name} must be an http:// or https:// URL, got {value!r}")
    return value
