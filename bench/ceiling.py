"""The ceiling app: the least a stateful USSD hop can cost on Flask and Redis.

It parses the same Africa's Talking form as the service, reads the session key and writes it
back with its time-to-live (``GET``, then ``SET ... EX``: two Redis round trips, as a hop of
the service) and answers one fixed ``CON`` screen. Served by the same WSGI server, worker count
and Redis as the service, it is what "as fast as Flask and Redis allow" means in
``bench/run.py``. ``REDIS_URL`` names the Redis; the WSGI callable is ``ceiling:app``.

``CEILING_CONNECTIONS=held`` (``bench/run.py --ceiling-connections held``) sends the two
commands the way the service's hops do (``ussd.store.client.HeldConnections``): on connections kept
from hop to hop instead of through redis-py's pool, to show how much of the ratio that is.
"""

from __future__ import annotations

import os

import redis
from flask import Flask, Response, request

from ussd.store.client import HeldConnections

SCREEN = ("CON Orange #121#\n1. Changer de profil\n2. Mon profil\n3. Conditions de migration"
          "\n4. Language / Langue")
TTL = 180


def create_app(redis_url: str | None = None, held: bool = False) -> Flask:
    """The ceiling app on the Redis at ``redis_url`` (default: ``REDIS_URL``)."""
    # The client settings of the service's own (ussd.store.connect): replies decoded, 1 s timeouts.
    client = redis.Redis.from_url(redis_url or os.environ["REDIS_URL"], decode_responses=True,
                                  socket_timeout=1.0, socket_connect_timeout=1.0)
    call = held_connections(client) if held else client.execute_command
    app = Flask("ceiling")

    @app.post("/ussd/africastalking")
    def hop() -> Response:
        form = request.form
        key = f"ceiling:{{{form['phoneNumber']}}}:{form['sessionId']}"
        record = call("GET", key) or ""
        call("SET", key, f"{record}{form.get('text', '')}|"[-200:], "EX", TTL)
        return Response(SCREEN, mimetype="text/plain")

    return app


def held_connections(client: redis.Redis):
    """``execute_command`` on the service's held connections (no retry: a bench's ceiling)."""
    connections = HeldConnections(client.connection_pool)

    def call(*command):
        connection = connections.take()
        try:
            connection.send_command(*command)
            return connection.read_response()
        finally:
            connections.put_back(connection)

    return call


app = (create_app(held=os.environ.get("CEILING_CONNECTIONS") == "held")
       if "REDIS_URL" in os.environ else None)
