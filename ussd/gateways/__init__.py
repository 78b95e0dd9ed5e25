"""Gateway dialects: each a thin adapter between one gateway's wire format and a ``Hop``.

A dialect module defines ``NAME`` and a Flask blueprint-free function ``register(app,
service)`` that adds its routes; adding a dialect is one module and one line in ``DIALECTS``.
The engine knows nothing of dialects.
"""

from __future__ import annotations

import re

from ..errors import UssdError

SERVICE_CODE = "121"

# #121#, *121#, and the same with chained inputs: #121*1#, *121*1*2#...
_DIALLED = re.compile(r"^[*#]?" + SERVICE_CODE + r"((?:\*[0-9]{1,3})*)#?$")


class UnknownServiceCodeError(UssdError):
    """A request for a USSD code this service does not answer."""


def parse_service_code(code: str) -> tuple[str, ...]:
    """The inputs chained in a dialled code (``*121*1*2#`` -> ``("1", "2")``)."""
    match = _DIALLED.match((code or "").strip())
    if not match:
        raise UnknownServiceCodeError(f"unknown service code {code[:40]!r}")
    return tuple(part for part in match.group(1).split("*") if part)


def dialect_modules():
    """The dialect modules, in the order their routes are registered."""
    from . import africastalking

    return (africastalking,)
