"""Gateway dialects: one module per gateway wire format, each holding both of its halves.

A dialect module (``africastalking``, ``hubtel``, ``flares``) defines ``DIALECT``, one object
implementing :class:`ussd.contract.Dialect`: the server half that ``view.py`` mounts under
``/ussd/<name>`` (parse a request into a hop or an end, write a reply) and the client half that
``ussd sim``, the tests and the bench speak (build the gateway's requests, read our answers).
``fields.py`` holds what they share. Adding a dialect is one module and one name in
``DIALECTS``; the engine and the service know nothing of dialects. No Flask here: HTTP is the
view's job.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..contract import Dialect
    from ..settings import Settings

# The registration: one module of this package per name, mounted in this order.
DIALECTS = ("africastalking", "hubtel", "flares")


def dialect(name: str) -> Dialect:
    """The dialect registered as ``name``; KeyError for a name that is not one."""
    if name not in DIALECTS:
        raise KeyError(f"no gateway dialect {name!r}; known: {', '.join(DIALECTS)}")
    return importlib.import_module(f"{__name__}.{name}").DIALECT


def dialects(names: tuple[str, ...] | None = None) -> tuple[Dialect, ...]:
    """The dialects named (default: all), in registration order."""
    return tuple(dialect(name) for name in DIALECTS if names is None or name in names)


def enabled(settings: Settings) -> tuple[Dialect, ...]:
    """The dialects the settings enable (``USSD_GATEWAYS``; default: all), in order."""
    return dialects(settings.gateways)
