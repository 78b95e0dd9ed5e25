"""The bounds a bad day is met with: how long a hop waits, how much of a request is read.

Set from ``USSD_``-prefixed environment variables, each default written once, here:

===============================  ======================================  ==================
variable                         meaning                                 default
===============================  ======================================  ==================
``USSD_UNKNOWN_OUTCOME_WAIT``    seconds spent sending again a           ``1.5``
                                 migration that got no answer, before
                                 the "being processed" screen
                                 (``ussd/settle.py``)
``USSD_MAX_BODY``                bytes of a gateway request's body;      ``16384``
                                 larger is refused (``413``) unread
``USSD_BODY_TIMEOUT``            seconds a request's body may take to    ``2.0``
                                 arrive once its headers have
``USSD_BUSY_AFTER``              seconds from a hop's arrival within     ``0.5``
                                 which it must get its turn, else it is
                                 answered "busy" (``ussd/overload.py``)
===============================  ======================================  ==================

One more is the server's, not a variable, set by ``ussd serve`` (``server.serving_limits``):
``hops_at_once``, the hops a worker runs at once (``--threads``, 3). Turns are worth having
only where every request gets a thread as it arrives, as ``ussd serve`` sees to; an app served
otherwise (None, the default: a test's, gunicorn's) runs hops as its server's threads come.

A gateway's whole request is well under a kilobyte, and it waits a few seconds for an answer:
these leave room for both, and nothing more (docs/reliability.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ConfigError
from .variables import seconds


@dataclass(frozen=True)
class Limits:
    """The service's bounds (see the table above)."""

    unknown_outcome_wait: float = 1.5
    max_body: int = 16_384
    body_timeout: float = 2.0
    busy_after: float = 0.5
    hops_at_once: int | None = None  # None: no turns (see above)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Limits:
        """The bounds ``env`` sets, the others at their defaults; ConfigError by name."""
        default = cls()
        return cls(
            unknown_outcome_wait=_seconds(env, "USSD_UNKNOWN_OUTCOME_WAIT",
                                          default.unknown_outcome_wait, least=0),
            max_body=_bytes(env, "USSD_MAX_BODY", default.max_body),
            body_timeout=_seconds(env, "USSD_BODY_TIMEOUT", default.body_timeout),
            busy_after=_seconds(env, "USSD_BUSY_AFTER", default.busy_after),
        )


def _seconds(env: Mapping[str, str], name: str, default: float, least: float = 0.001) -> float:
    return seconds(name, env.get(name), default, least=least)


def _bytes(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if value is None:
        return default
    if not value.isdecimal() or not 1024 <= int(value) <= 1 << 24:
        raise ConfigError(f"{name} must be a number of bytes from 1024 to 16777216, "
                          f"got {value!r}")
    return int(value)
