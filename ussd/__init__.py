"""The #121# USSD profile-change service.

The core (``rules``, ``menu``, ``engine``, ``text``, ``months``) is pure: it does no I/O and
imports neither Flask nor Redis. ``store``, ``service``, ``web``, ``gateways`` and ``cli``
are the thin shells around it.
"""

__version__ = "0.1.0"
