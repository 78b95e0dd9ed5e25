"""The handset simulator: each dialect's client against the app, and its checks of the replies."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from conftest import ALICE, THIS_MONTH

from ussd.cli import main
from ussd.contract import Reply as Screen
from ussd.errors import SimulatorError
from ussd.gateways import DIALECTS, dialect
from ussd.settings import GatewaySecrets
from ussd.sim import Credentials, Handset, answer_of
from ussd.web import create_app

MAIN = ("Orange #121#\n1. Changer de profil\n2. Mon profil\n3. Conditions de migration"
        "\n4. Language / Langue")
MIGRATED_TIGRE = (
    "Votre profil est désormais Tigre. Vous gardez vos avantages en cours dans la limite de "
    "leur validité. Migrations restantes ce mois: 2."
)
TOKEN = "sim-token-0123456789"
PASSWORD = "sim-password-0123456789"


def wsgi_transport(app, seen: list | None = None):
    """A transport that calls the app in-process, as urllib would over HTTP."""
    client = app.test_client()

    def send(method, url, headers, body):
        parts = urlsplit(url)
        if seen is not None:
            seen.append((method, parts.path, parts.query, dict(headers), body))
        response = client.open(parts.path, method=method, query_string=parts.query,
                               headers=dict(headers), data=body)
        return answer_of(response.status_code, response.headers, response.get_data(as_text=True))

    return send


@pytest.fixture(params=list(DIALECTS), ids=str)
def gateway(request):
    return request.param


def handset(gateway, app, credentials=None, dial="#121#", seen=None):
    return Handset(dialect(gateway), "http://server", ALICE, dial, credentials,
                   transport=wsgi_transport(app, seen))


def session_key(service, phone):
    return service.store.keys.session(ALICE, phone.dialect.name, phone.session_id)


def test_a_whole_dialogue_in_every_dialect(gateway, app, service):
    phone = handset(gateway, app)
    assert phone.start() == Screen(MAIN, end=False)
    phone.send("1")
    phone.send("2")
    assert phone.send("1") == Screen(MIGRATED_TIGRE, end=True)
    assert service.store.admin.describe(ALICE, THIS_MONTH)["profile"] == "tigre"
    with pytest.raises(SimulatorError, match="already ended"):
        phone.send("1")


def test_dialling_121_star_1(gateway, app):
    assert handset(gateway, app, dial="#121*1#").start().text.startswith("Choisissez")


@pytest.mark.parametrize("ending", ["hang_up", "time_out"])
def test_ending_a_session_closes_it(gateway, app, service, ending):
    phone = handset(gateway, app)
    phone.start()
    phone.send("1")
    assert service.store.redis.exists(session_key(service, phone))
    getattr(phone, ending)()
    assert phone.ended
    assert not service.store.redis.exists(session_key(service, phone))


def test_africastalking_reports_the_end_of_a_session_as_its_gateway_does(app, service):
    seen = []
    phone = handset("africastalking", app, dial="#121*1*2#", seen=seen)
    phone.start()
    assert phone.send("1").end  # confirmed: the success screen ends the session
    method, path, _, _, body = seen[-1]
    assert (method, path) == ("POST", "/ussd/africastalking/events")
    assert b"status=Success" in body
    assert not service.store.redis.exists(session_key(service, phone))


def test_the_wire_of_hubtel_and_flares(app):
    seen = []
    hubtel = handset("hubtel", app, dial="*121*1#", seen=seen)
    hubtel.start()
    hubtel.send("2")
    first, second = (json.loads(body) for *_, body in seen)
    assert first | {"SessionId": "-"} == {
        "Type": "Initiation", "Mobile": ALICE, "SessionId": "-", "ServiceCode": "121",
        "Message": "*121*1#", "Operator": "Orange", "Sequence": 1, "ClientState": ""}
    assert (second["Type"], second["Message"], second["Sequence"]) == ("Response", "2", 2)
    seen.clear()
    flares = handset("flares", app, dial="#121*1#", seen=seen)
    flares.start()
    flares.send("2")
    flares.hang_up()
    assert [(method, path) for method, path, *_ in seen] == [("GET", "/ussd/flares")] * 3
    assert [query.split("&", 2)[2] for _, _, query, *_ in seen] == [
        "input=121%2A1", "input=2", "abort=clean"]


# --- credentials ------------------------------------------------------------------------


@pytest.fixture
def secured(redis_client, settings, clock, store):
    secrets = {name: GatewaySecrets(token=TOKEN, basic_auth=f"gw:{PASSWORD}")
               for name in DIALECTS}
    return create_app(replace(settings, gateway_secrets=secrets), redis_client=redis_client,
                      clock=clock)


@pytest.mark.parametrize("credentials", [
    Credentials(token=TOKEN), Credentials(user="gw", password=PASSWORD),
], ids=["token", "basic"])
def test_credentials_are_sent(gateway, secured, credentials):
    phone = handset(gateway, secured, credentials)
    assert phone.start() == Screen(MAIN, end=False)
    phone.send("1")
    phone.hang_up()


def test_the_token_goes_where_the_gateway_puts_it(gateway, secured):
    seen = []
    handset(gateway, secured, Credentials(token=TOKEN), seen=seen).start()
    _, path, _, headers, _ = seen[0]
    if dialect(gateway).token_in_path:
        assert (path, "Authorization" in headers) == (f"/ussd/{gateway}/{TOKEN}", False)
    else:
        assert (path, headers["Authorization"]) == (f"/ussd/{gateway}", f"Bearer {TOKEN}")


@pytest.mark.parametrize("credentials", [None, Credentials(user="gw", password="wrong")])
def test_a_refusal_is_a_simulator_error_with_a_hint(gateway, secured, credentials):
    with pytest.raises(SimulatorError, match=r"HTTP 401 .*--token"):
        handset(gateway, secured, credentials).start()


def test_credentials_from_the_servers_own_variables():
    env = {"USSD_HUBTEL_TOKEN": TOKEN, "USSD_FLARES_BASIC_AUTH": f"gw:{PASSWORD}"}
    assert Credentials.from_env("hubtel", env) == Credentials(token=TOKEN)
    assert Credentials.from_env("flares", env) == Credentials(user="gw", password=PASSWORD)
    assert Credentials.from_env("africastalking", env) == Credentials()


# --- a server that misbehaves -------------------------------------------------------------


def replying(status=200, body="", **headers):
    return lambda method, url, sent, data: answer_of(status, headers, body)


@pytest.mark.parametrize(("gateway", "reply", "message"), [
    ("africastalking", replying(body="Hello", **{"content-type": "text/plain"}),
     "neither CON nor END"),
    ("africastalking", replying(body="CON hi", **{"content-type": "text/html"}),
     "text/html, not text/plain"),
    ("africastalking", replying(500, "oops"), "HTTP 500"),
    ("africastalking", replying(body="CON " + "x" * 183, **{"content-type": "text/plain"}),
     "183 characters exceeds 182"),
    ("hubtel", replying(body="{", **{"content-type": "application/json"}), "not Hubtel JSON"),
    ("hubtel", replying(body='{"Type": "Continue", "Message": "x"}',
                        **{"content-type": "application/json"}), "not Response or Release"),
    ("flares", replying(body="hi", **{"content-type": "text/plain"}), "Freeflow None"),
    ("flares", replying(body="hi", **{"content-type": "text/plain", "freeflow": "FX"}),
     "Freeflow 'FX'"),
    ("flares", replying(403, ""), "allow-list"),
])
def test_a_misbehaving_server_is_reported(gateway, reply, message):
    with pytest.raises(SimulatorError, match=message):
        Handset(dialect(gateway), "http://server", ALICE, transport=reply).start()


def test_an_ending_answered_with_a_screen_is_reported():
    hubtel = Handset(dialect("hubtel"), "http://s", ALICE, transport=replying(
        body='{"Type": "Response", "Message": "hi"}', **{"content-type": "application/json"}))
    with pytest.raises(SimulatorError, match="not an empty Release"):
        hubtel.hang_up()
    flares = Handset(dialect("flares"), "http://s", ALICE, transport=replying(body="hi"))
    with pytest.raises(SimulatorError, match="not an empty reply"):
        flares.time_out()


# --- the command, over real HTTP ----------------------------------------------------------


@pytest.fixture
def served(secured):
    """The secured app on a real HTTP server on 127.0.0.1 (a free port)."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, secured, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()


def sim(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, ["sim", *args], env=env or {})


def test_the_command_plays_a_whole_dialogue(gateway, served, service):
    result = sim("--url", served, "--gateway", gateway, "--token", TOKEN,
                 "--input", "1", "--input", "2", "--input", "1")
    assert result.exit_code == 0, result.output
    assert "| Votre profil est désormais Tigre." in result.output
    assert result.output.count("+---------------------------- END") == 1
    assert service.store.admin.describe(ALICE, THIS_MONTH)["profile"] == "tigre"


@pytest.mark.parametrize(("flag", "said"), [("--hang-up", "(hung up)"),
                                            ("--time-out", "(timed out)")])
def test_the_command_leaves_a_session(gateway, served, flag, said):
    env = {f"USSD_{gateway.upper()}_BASIC_AUTH": f"gw:{PASSWORD}"}
    result = sim("--url", served, "--gateway", gateway, "--input", "1", flag, env=env)
    assert result.exit_code == 0, result.output
    assert result.output.endswith(said + "\n")


def test_the_command_fails_on_a_refusal(served):
    result = sim("--url", served, "--gateway", "hubtel", "--token", "wrong-token-0123456789")
    assert result.exit_code == 1
    assert "HTTP 401" in result.output


def test_the_command_fails_when_inputs_outlive_the_session(served):
    result = sim("--url", served, "--token", TOKEN, "--dial", "#121*1*2#", "--input", "1",
                 "--input", "1")
    assert result.exit_code == 1
    assert "ended with 1 input(s) unused" in result.output


def test_the_command_interactive_hang_up(served, service):
    result = CliRunner().invoke(main, ["sim", "--url", served, "--gateway", "flares",
                                       "--token", TOKEN], input="1\n")
    assert result.exit_code == 0, result.output
    assert result.output.endswith("(hung up)\n")
