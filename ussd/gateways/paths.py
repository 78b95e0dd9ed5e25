"""The URL shapes a gateway's operator may configure, made the one the routes answer.

An operator types the callback URL into the gateway's console by hand: a base URL ending in
``/`` joined to ``/ussd/flares`` gives ``//ussd/flares``, a habit adds a trailing ``/``, a
brand's spelling capitalises the dialect (``/ussd/AfricasTalking``). Each of these would be a
``404`` (or a ``308`` redirect that gateways do not follow), so the session would never open.
:func:`canonical_paths` rewrites such a path under ``/ussd/`` to its canonical form before
routing: slashes merged, no trailing slash, ``ussd``, the dialect's name and ``events`` in
lower case. A token in the path is kept as it is (it is a secret: its case matters).
"""

from __future__ import annotations

from collections.abc import Callable

from . import DIALECTS, dialects

_DIALECTS = frozenset(DIALECTS)
# The last part of every suffixed route (Africa's Talking's ``/events``), from the dialects.
_SUFFIXES = frozenset(route.suffix.rsplit("/", 1)[-1] for dialect in dialects()
                      for route in dialect.routes if route.suffix)


def canonical_path(path: str) -> str:
    """``path`` as the routes spell it when it names a gateway endpoint; else unchanged."""
    parts = [part for part in path.split("/") if part]
    if len(parts) < 2 or parts[0].lower() != "ussd" or parts[1].lower() not in _DIALECTS:
        return path
    parts[0], parts[1] = "ussd", parts[1].lower()
    if len(parts) > 2 and parts[-1].lower() in _SUFFIXES:
        parts[-1] = parts[-1].lower()
    return "/" + "/".join(parts)


def canonical_paths(wsgi_app: Callable) -> Callable:
    """WSGI middleware: a gateway endpoint's path made canonical (see the module's doc).

    A path already canonical (every hop of a well-configured gateway) costs a few string
    checks and a set lookup.
    """

    def app(environ: dict, start_response: Callable):
        path = environ.get("PATH_INFO", "")
        if "ussd" in path[:8].lower() and _needs_care(path):
            environ["PATH_INFO"] = canonical_path(path)
        return wsgi_app(environ, start_response)

    return app


def _needs_care(path: str) -> bool:
    if "//" in path or path.endswith("/") or not path.startswith("/ussd/"):
        return True
    dialect = path[6:].split("/", 1)[0]
    return dialect not in _DIALECTS
