"""The README's walk-through of the HTTP API, as a newcomer plays it: ``ussd serve --demo`` on
a loopback port, its printed tokens, real HTTP; the offers read, a migration asked with an
idempotency key and asked again, one migration recorded, seen on the USSD "Mon profil" screen
and in the history."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest
from served import Served


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("USSD_") and key != "REDIS_URL"}
    server = Served(["--demo"], env, tmp_path_factory.mktemp("demo") / "serve.log").start()
    yield server
    server.stop()


def call(url: str, token: str | None, method: str = "GET", body: dict | None = None,
         **headers: str) -> tuple[int, dict[str, str], dict]:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={k.replace("_", "-"): v for k, v in headers.items()})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, _lower(reply.headers), json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers), json.loads(error.read())


def _lower(headers) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def test_the_demo_prints_a_token_per_channel_and_the_walk_through_holds(demo):
    printed = dict(re.findall(r"^  demo-(web|app|care) +(\S+)$", demo.output(), re.MULTILINE))
    assert set(printed) == {"web", "app", "care"}
    assert "HTTP API on " + demo.url + "/api/v1" in demo.output()
    api, token = f"{demo.url}/api/v1", printed["web"]
    # What "Mon profil" shows for 0700000001 (Novamix, 3.000 F CFA last month).
    status, _, page = call(f"{api}/subscribers/0700000001", token)
    assert status == 200
    assert [(o["profile"], o["eligible"]) for o in page["offers"]] == [
        ("Novamix", False), ("Tigre", True), ("Dauphin", True), ("Aigle", False)]
    # Migrated with a key, then the same again: the same answer, one migration.
    first = call(f"{api}/subscribers/0700000001/migrations", token, "POST",
                 {"profile": "Tigre"}, Idempotency_Key="readme-1")
    again = call(f"{api}/subscribers/0700000001/migrations", token, "POST",
                 {"profile": "Tigre"}, Idempotency_Key="readme-1")
    assert (first[0], again[0], again[1]["idempotent-replayed"]) == (201, 201, "true")
    assert first[2] == again[2]
    assert (first[2]["migration"]["channel"], first[2]["migrations_left"]) == ("web", 2)
    # The USSD screen and the history see it; every channel's token reads it.
    body = urllib.parse.urlencode({"sessionId": "readme", "serviceCode": "*121#",
                                   "phoneNumber": "+2250700000001", "text": "2"}).encode()
    with urllib.request.urlopen(f"{demo.url}/ussd/africastalking", data=body) as reply:
        screen = reply.read().decode()
    assert screen.startswith("CON Votre profil: Tigre.\nMigrations restantes ce mois: 2 sur 3.")
    status, _, history = call(f"{api}/subscribers/0700000001/migrations", printed["care"])
    assert (status, [(m["from"], m["to"], m["client"]) for m in history["migrations"]]) == (
        200, [("Novamix", "Tigre", "demo-web")])
    # The tokens are printed, never logged.
    logged = [line for line in demo.output().splitlines() if " INFO " in line]
    assert not any(token in line for line in logged for token in printed.values())


def test_serve_refuses_a_bad_clients_file_before_touching_redis(tmp_path):
    from click.testing import CliRunner

    from ussd.cli import main

    bad = tmp_path / "clients.toml"
    bad.write_text("[clients.portal]\nchannel = 'web'\n")
    result = CliRunner().invoke(main, ["serve", "--port", "1", "--insecure"], env={
        "REDIS_URL": "redis://127.0.0.1:1/0", "USSD_API_CLIENTS": str(bad)})
    assert result.exit_code == 1
    assert (f"USSD_API_CLIENTS: {bad}: [clients.portal]: token_sha256 must be the token's "
            f"SHA-256 in 64 hex digits") in result.output
    assert "Using Redis" not in result.output


@pytest.mark.real_redis
def test_with_a_redis_and_no_clients_file_the_api_is_off_and_says_so(real_redis_url,
                                                                     key_prefix, tmp_path):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("USSD_") and key != "REDIS_URL"}
    env |= {"REDIS_URL": real_redis_url, "USSD_KEY_PREFIX": key_prefix, "USSD_INSECURE": "1"}
    server = Served(["--workers", "1"], env, tmp_path / "serve.log").start()
    try:
        status, headers, body = call(f"{server.url}/api/v1/subscribers/0700000001", "x")
        output = server.output()
    finally:
        server.stop()
    assert (status, headers["content-type"], body["type"]) == (
        404, "application/problem+json", "about:blank")
    assert ("HTTP API off: no clients (USSD_API_CLIENTS names none; see the README's clients "
            "file). Every path under /api/ answers 404.") in output
