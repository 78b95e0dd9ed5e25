"""The API's clients (ussd/api/clients.py): the clients file, tokens and scopes, as a request
meets them (401, 403) before anything else, without a single Redis call."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace

import pytest
import redis
from api_calls import API_CLIENTS, API_TOKENS, ApiCaller, write_clients_file
from conftest import ALICE

from ussd.api.clients import Clients, Scope, demo_clients, load_clients, unauthorized
from ussd.errors import ConfigError
from ussd.rules import Channel
from ussd.settings import Settings
from ussd.store import connect
from ussd.web import create_app

UNAUTHORIZED = {"type": "/api/v1/problems/unauthorized",
                "title": "Missing or unknown bearer token", "status": 401}
NO_HEADER = {**UNAUTHORIZED, "detail": "Send Authorization: Bearer <token>, the token of a "
                                       "client of this server."}
UNKNOWN_TOKEN = {**UNAUTHORIZED, "detail": "This bearer token is no client's of this server."}


def test_the_clients_file_is_read_as_written(clients_file):
    clients = {client.name: client for client in load_clients(clients_file)}
    assert set(clients) == set(API_CLIENTS)
    portal = clients["portal"]
    assert (portal.channel, portal.scopes, portal.rate_limit) == (
        Channel.WEB, {Scope.SUBSCRIBERS_READ, Scope.MIGRATIONS_WRITE}, ())
    assert portal.token_sha256 == hashlib.sha256(API_TOKENS["portal"].encode()).digest()
    assert str(clients["limited"].rate_limit[0]) == "3 per 1 minute"
    assert "token" not in repr(portal).replace("token_sha256", "")  # no digest in a repr


@pytest.mark.parametrize(("text", "message"), [
    ("", "must hold [clients.<name>] tables only, at least one"),
    ("[other]\nx = 1\n", "must hold [clients.<name>] tables only, at least one"),
    ("[clients.a]\n", "[clients.a]: token_sha256 must be the token's SHA-256 in 64 hex digits"),
    ('[clients.a]\ntoken_sha256 = "abc"\n', "[clients.a]: token_sha256 must be the token's "
                                             "SHA-256 in 64 hex digits"),
    (f'[clients.a]\ntoken_sha256 = "{"a" * 64}"\nscopes = ["admin"]\nchannel = "web"\n',
     "[clients.a]: scopes must list some of subscribers:read, migrations:write, "
     "consumption:write"),
    (f'[clients.a]\ntoken_sha256 = "{"a" * 64}"\nscopes = ["subscribers:read"]\n'
     f'channel = "ussd"\n', "[clients.a]: channel must be one of web, app, care"),
    (f'[clients.a]\ntoken_sha256 = "{"a" * 64}"\nscopes = ["subscribers:read"]\n'
     f'channel = "web"\nrate_limit = "lots"\n',
     "[clients.a]: not a rate limit: 'lots' (for example \"20/second\" or "
     "\"20/second; 600/minute\")"),
    (f'[clients.a]\ntoken_sha256 = "{"a" * 64}"\nscopes = ["subscribers:read"]\n'
     f'channel = "web"\nscope = "x"\n',
     "[clients.a]: unknown field(s) scope (known: channel, rate_limit, scopes, token_sha256)"),
    (f'[clients."a b"]\ntoken_sha256 = "{"a" * 64}"\n',
     "[clients.a b]: a name is 1-64 letters, digits, '_', '.', '-'"),
    ("[clients.a\n", "is not TOML"),
])
def test_a_bad_clients_file_is_refused_naming_file_and_client(tmp_path, text, message):
    path = tmp_path / "clients.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_clients(path)
    assert str(refused.value).startswith(f"USSD_API_CLIENTS: {path}")
    assert message in str(refused.value)


def test_two_clients_with_one_token_are_refused(tmp_path):
    twice = {"a": API_CLIENTS["portal"], "b": API_CLIENTS["portal"]}
    with pytest.raises(ConfigError, match="API clients 'a' and 'b' have the same token"):
        load_clients(write_clients_file(tmp_path / "clients.toml", twice))


def test_a_missing_clients_file_stops_the_app(tmp_path, settings):
    with pytest.raises(ConfigError, match="cannot read"):
        create_app(replace(settings, api_clients=tmp_path / "none.toml"))


@pytest.mark.parametrize(("header", "found"), [
    (f"Bearer {API_TOKENS['portal']}", "portal"),
    (f"bearer {API_TOKENS['care']}", "care"),
    (f"Bearer  {API_TOKENS['care']} ", "care"),
    (None, None), ("", None), ("Bearer", None), ("Bearer ", None),
    (f"Basic {API_TOKENS['portal']}", None), (f"Bearer {API_TOKENS['portal']}x", None),
    (f"Bearer {API_TOKENS['portal'][:-1]}", None), ("Bearer a b", None),
    (f"Bearer {'a' * 600}", None),
])
def test_a_token_identifies_its_client_and_nothing_else_does(clients_file, header, found):
    client = Clients(load_clients(clients_file)).identify(header)
    assert (client.name if client else None) == found


def test_demo_clients_one_per_channel_with_every_scope():
    clients = Clients(demo_clients({"web": "w" * 20, "app": "a" * 20, "care": "c" * 20}))
    assert [(c.name, c.channel, c.scopes == set(Scope)) for c in clients.all] == [
        ("demo-web", Channel.WEB, True), ("demo-app", Channel.APP, True),
        ("demo-care", Channel.CARE, True)]
    assert clients.identify("Bearer " + "a" * 20).name == "demo-app"


@pytest.mark.parametrize(("method", "path"), [
    ("GET", f"/api/v1/subscribers/{ALICE}"),
    ("GET", f"/api/v1/subscribers/{ALICE}/migrations"),
    ("POST", f"/api/v1/subscribers/{ALICE}/migrations"),
])
def test_no_or_an_unknown_token_is_401_with_its_challenge(api, method, path):
    response = api.call(method, path, client=None)
    assert (response.status_code, response.get_json()) == (401, NO_HEADER)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="ussd-api"'
    response = api.call(method, path, client=None,
                        headers={"Authorization": "Bearer not-a-token"})
    assert (response.status_code, response.get_json()) == (401, UNKNOWN_TOKEN)
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="ussd-api", error="invalid_token"')


NOT_BEARER = {**UNAUTHORIZED, "detail": "The Authorization header is not a bearer token. Send "
                                        "Authorization: Bearer <token>, the token of a client "
                                        "of this server."}
NO_TOKEN = {**UNAUTHORIZED, "detail": "The Authorization header has no token after Bearer. Send "
                                      "Authorization: Bearer <token>, the token of a client of "
                                      "this server."}
CHALLENGE = 'Bearer realm="ussd-api"'


@pytest.mark.parametrize(("authorization", "problem", "challenge"), [
    # Another scheme: no bearer credentials were sent, so no error code (RFC 6750, 3.1); not
    # "this bearer token is no client's".
    *[(other, NOT_BEARER, CHALLENGE)
      for other in ("Basic dXNlcjpwYXNz", "Token abc", "Digest x", "Bearerxyz", "bearer-token")],
    # "Bearer" alone: malformed.
    *[(bare, NO_TOKEN, CHALLENGE + ', error="invalid_request"') for bare in ("Bearer", "bearer")],
    # A bearer token that cannot be any client's.
    *[(token, UNKNOWN_TOKEN, CHALLENGE + ', error="invalid_token"')
      for token in ("bearer not a token", "Bearer " + "x" * 600)],
])
def test_an_authorization_that_names_no_client_is_told_why(api, authorization, problem,
                                                            challenge):
    response = api.call("GET", f"/api/v1/subscribers/{ALICE}", client=None,
                        headers={"Authorization": authorization})
    assert (response.status_code, response.get_json()) == (401, problem)
    assert response.headers["WWW-Authenticate"] == challenge


def test_a_blank_authorization_is_told_to_send_a_bearer_token():
    """Blanks only (the suite's HTTP client will not send them; a server may pass them on)."""
    assert unauthorized("   ") == (NOT_BEARER["detail"], CHALLENGE)


@pytest.mark.parametrize(("method", "path", "client", "scope"), [
    ("POST", f"/api/v1/subscribers/{ALICE}/migrations", "reader", "migrations:write"),
    ("GET", f"/api/v1/subscribers/{ALICE}", "writer", "subscribers:read"),
    ("GET", f"/api/v1/subscribers/{ALICE}/migrations", "writer", "subscribers:read"),
])
def test_a_scope_the_client_lacks_is_403(api, store, method, path, client, scope):
    response = api.call(method, path, client, headers={"Idempotency-Key": "k"},
                        json={"profile": "Tigre"} if method == "POST" else None)
    assert (response.status_code, response.get_json()) == (403, {
        "type": "/api/v1/problems/missing-scope",
        "title": "The client lacks the scope this call needs", "status": 403,
        "detail": f"The client {client} lacks the scope {scope}.", "scope": scope})
    assert store.redis.hget(store.keys.subscriber(ALICE), "p") == "novamix"


def test_a_refused_client_costs_no_redis_call(settings, clients_file, api_document):
    # On a Redis that cannot be reached, the refusals are answered as ever (any Redis call
    # would make them a 503), and a request that gets through meets the 503.
    dead = connect(Settings(redis_url="redis://127.0.0.1:1/0", redis_timeout=0.2))
    app = create_app(replace(settings, api_clients=clients_file), redis_client=dead)
    api = ApiCaller(app.test_client(), api_document)
    assert api.get(f"/api/v1/subscribers/{ALICE}", client=None).status_code == 401
    assert api.migrate(ALICE, "Tigre", client="reader").status_code == 403
    assert api.get(f"/api/v1/subscribers/{ALICE}", client="writer").status_code == 403
    unavailable = api.get(f"/api/v1/subscribers/{ALICE}")
    assert (unavailable.status_code, unavailable.headers["Retry-After"]) == (503, "1")
    assert unavailable.get_json() == {
        "type": "/api/v1/problems/unavailable", "title": "Temporarily unavailable",
        "status": 503, "detail": "The service cannot reach its store just now.",
        "retry_after": 1}


@pytest.mark.real_redis
def test_a_refused_client_sends_nothing_to_redis(real_redis, settings, clients_file,
                                                 api_document):
    sent = []

    class Counting(redis.Connection):
        def send_packed_command(self, command, check_health=True):
            sent.append(command)
            return super().send_packed_command(command, check_health)

    real_redis.connection_pool.connection_class = Counting
    real_redis.connection_pool.reset()
    app = create_app(replace(settings, api_clients=clients_file), redis_client=real_redis)
    api = ApiCaller(app.test_client(), api_document)
    at_start = len(sent)
    api.get(f"/api/v1/subscribers/{ALICE}", client=None)
    api.migrate(ALICE, "Tigre", client="reader")
    assert len(sent) == at_start
    api.get(f"/api/v1/subscribers/{ALICE}")  # the count would see a call
    assert len(sent) == at_start + 1


def test_one_audit_line_per_migration_request_masks_the_number(api, caplog):
    caplog.set_level(logging.INFO, logger="ussd.audit")
    api.migrate("0700000001", "Tigre", key="audit-1")
    api.migrate("0700000001", "Tigre", key="audit-1")
    api.migrate("0700000001", "Aigle", key="audit-2", client="mobile")
    api.migrate("0700000001", "Dauphin", key="audit-1")
    api.migrate("0700000001", "Aigle", key="audit-3", client="reader")
    api.migrate("0700000001", "Aigle", client=None)
    api.migrate("12", "Aigle", key="audit-4", client="care")
    lines = [r.getMessage() for r in caplog.records if r.name == "ussd.audit"]
    digest = hashlib.blake2b(b"portal\0audit-1", digest_size=16).hexdigest()[:12]
    digest2 = hashlib.blake2b(b"mobile\0audit-2", digest_size=16).hexdigest()[:12]
    assert lines == [
        f"api_migration client=portal channel=web msisdn=+225*******001 status=201 "
        f"decision=approved replayed=false request={digest} from=novamix to=tigre",
        f"api_migration client=portal msisdn=+225*******001 status=201 decision=approved "
        f"replayed=true request={digest}",
        f"api_migration client=mobile msisdn=+225*******001 status=422 "
        f"decision=insufficient_consumption replayed=false request={digest2}",
        f"api_migration client=portal msisdn=+225*******001 status=422 "
        f"decision=idempotency_key_reused replayed=- request={digest}",
        "api_migration client=reader msisdn=- status=403 decision=- replayed=- request=-",
        "api_migration client=- msisdn=- status=401 decision=- replayed=- request=-",
        "api_migration client=care msisdn=- status=400 decision=- replayed=- request=-",
    ]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "0700000001" not in logged and ALICE not in logged
    assert not any(token in logged for token in API_TOKENS.values())


def test_the_audit_line_carries_the_subscriber_hash_under_a_log_key(
        redis_client, settings, store, clients_file, api_document, caplog):
    from ussd.observe import subscriber_hash

    key = b"k" * 32
    app = create_app(replace(settings, api_clients=clients_file, log_key=key),
                     redis_client=redis_client)
    caplog.set_level(logging.INFO, logger="ussd.audit")
    ApiCaller(app.test_client(), api_document).migrate(ALICE, "Dauphin", key="hashed")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "ussd.audit"]
    assert f" msisdn=+225*******001 subscriber={subscriber_hash(key, ALICE)} " in line
