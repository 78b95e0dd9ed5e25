"""The browser simulator, ``/simulator``: a handset on a web page for testers.

Served by the app with ``--demo`` or ``USSD_SIMULATOR=1`` (then behind HTTP basic auth from
``USSD_SIMULATOR_AUTH=user:password``; with ``--demo`` too when that is set, and always on a
Redis: see :func:`enabled`), never otherwise.
The page (``static/``: one HTML file, its CSS and its JavaScript, no external asset, no build
step: it works offline) is a handset: the number, the dialect, the code to dial, a keypad and
the keyboard, send, hang up, time out. Each move goes to ``POST /simulator/api/move``, which
plays it through the chosen dialect's real wire format (:mod:`ussd.simulator.play`), so the
screen shown, its length and alphabet, its page and ``CON``/``END`` are what the gateway
would get; the page also shows the HTTP exchanged, counts the session's time-to-live down,
and downloads the transcript as ``ussd sim`` command lines that replay it.

Stable hooks for automated tests: ``data-testid`` ``msisdn``, ``gateway``, ``code``, ``dial``,
``input``, ``send``, ``hangup`` and ``screen`` (and ``timeout``, ``ttl``, ``meta``,
``transcript``, ``key-<digit>``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from ..service import UssdService
    from ..settings import Settings


def enabled(settings: Settings) -> bool:
    """True when the app serves the simulator: asked for (``USSD_SIMULATOR``, or the demo),
    and guarded or harmless. It can drive any subscriber's session past the gateways'
    secrets, so on a Redis (production-like) it is served only behind its password
    (``USSD_SIMULATOR_AUTH``) or when told the server is insecure (``USSD_INSECURE``); on the
    embedded store (a demo) it may be open, as the gateways may."""
    asked = settings.simulator or settings.demo
    return asked and (settings.simulator_auth is not None or settings.redis_url is None
                      or settings.insecure)


def mount(app: Flask, service: UssdService, settings: Settings) -> None:
    """Serve the simulator at ``/simulator`` when the settings enable it."""
    if not enabled(settings):
        return
    from .views import blueprint

    app.register_blueprint(blueprint(service, settings))
