"""The ceiling app: the least a stateful USSD hop can cost on Flask and Redis.

It parses the same Africa's Talking form as the service, reads the session key and writes it
back with its time-to-live (``GET``, then ``SET ... EX``: two Redis round trips, as a hop of
the service) and answers one fixed ``CON`` screen. Served by the same WSGI server, worker count
and Redis as the service, it is what "as fast as Flask and Redis allow" means in
``bench/run.py``. ``REDIS_URL`` names the Redis; the WSGI callable is ``ceiling:app``.
"""

from __future__ import annotations

import os

import redis
from flask import Flask, Response, request

SCREEN = "CON Orange #121#\n1. Changer de profil\n2. Mon profil\n3. Conditions de migration"
TTL = 180


def create_app(redis_url: str | None = None) -> Flask:
    """The ceiling app on the Redis at ``redis_url`` (default: ``REDIS_URL``)."""
    # The client settings of the service's own (ussd.store.connect): replies decoded, 1 s timeouts.
    client = redis.Redis.from_url(redis_url or os.environ["REDIS_URL"], decode_responses=True,
                                  socket_timeout=1.0, socket_connect_timeout=1.0)
    app = Flask("ceiling")

    @app.post("/ussd/africastalking")
    def hop() -> Response:
        form = request.form
        key = f"ceiling:{{{form['phoneNumber']}}}:{form['sessionId']}"
        record = client.get(key) or ""
        client.set(key, f"{record}{form.get('text', '')}|"[-200:], ex=TTL)
        return Response(SCREEN, mimetype="text/plain")

    return app


app = create_app() if "REDIS_URL" in os.environ else None
