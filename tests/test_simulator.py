"""The browser simulator's server side (ussd/simulator/): when it is served, its guard, and
that each move is what the gateway would get, through each dialect's real wire format.

The page itself is played in a real headless Chromium in tests/test_browser.py.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shlex
import urllib.request
from dataclasses import replace

import pytest
from click.testing import CliRunner
from conftest import ALICE, THIS_MONTH
from handsets import GATEWAYS, serving

from ussd.cli import main
from ussd.simulator.views import STATIC
from ussd.web import create_app

AUTH = "tester:correct-horse-battery-staple"
MAIN = ("Orange #121#\n1. Changer de profil\n2. Mon profil\n3. Conditions de migration\n"
        "4. Language / Langue")
CONFIRM_TIGRE = (
    "Migration vers Tigre: gratuite. Il vous restera 2 migration(s) ce mois. Vos avantages en "
    "cours sont conservés.\n1. Confirmer\n2. Annuler\n0 Retour | 00 Accueil")
MIGRATED_TIGRE = (
    "Votre profil est désormais Tigre. Vous gardez vos avantages en cours dans la limite de "
    "leur validité. Migrations restantes ce mois: 2.")


@pytest.fixture
def simulated(redis_client, settings, clock, store):
    """The app with the simulator on (as ``--demo`` does), and its test client."""
    app = create_app(replace(settings, simulator=True), redis_client=redis_client, clock=clock)
    return app.test_client()


@pytest.fixture(params=list(GATEWAYS), ids=str)
def gateway(request):
    return request.param


def fetch(client, path: str, **options):
    """A GET, its body read and the response closed (a static file is streamed)."""
    with client.get(path, **options) as response:
        response.get_data()
        return response


class Page:
    """What the page's JavaScript does: one session, its moves, its inputs."""

    def __init__(self, client, gateway: str, msisdn: str = "0700000001", code: str = "#121#",
                 session: str = "web-0001", headers: dict | None = None):
        self.client, self.gateway, self.msisdn, self.code = client, gateway, msisdn, code
        self.session, self.headers, self.inputs = session, headers or {}, []

    def move(self, action: str, text: str | None = None) -> dict:
        if text is not None:
            self.inputs.append(text)
        response = self.client.post("/simulator/api/move", headers=self.headers, json={
            "gateway": self.gateway, "action": action, "session": self.session,
            "msisdn": self.msisdn, "code": self.code, "inputs": self.inputs})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.json


# --- served only when asked, guarded when it must be ------------------------------------------


def test_not_served_unless_asked(client):
    for path in ("/simulator/", "/simulator/api/config", "/simulator/static/simulator.js"):
        assert fetch(client, path).status_code == 404


def test_the_page_and_its_assets(simulated):
    assert fetch(simulated, "/simulator").status_code == 308  # to /simulator/
    page = fetch(simulated, "/simulator/")
    assert (page.status_code, page.mimetype) == (200, "text/html")
    html = page.get_data(as_text=True)
    for hook in ("msisdn", "gateway", "code", "dial", "input", "send", "hangup", "screen",
                 "timeout", "ttl", "meta", "transcript"):
        assert f'data-testid="{hook}"' in html, hook
    for asset, mimetype in (("simulator.css", "text/css"), ("simulator.js", "text/javascript")):
        response = fetch(simulated, f"/simulator/static/{asset}")
        assert (response.status_code, response.mimetype) == (200, mimetype)


def test_nothing_is_fetched_from_elsewhere():
    """It works offline: no URL outside the app in the page, its CSS or its JavaScript."""
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|url\(", text), path


def test_behind_basic_auth_when_a_password_is_set(redis_client, settings, clock, store):
    app = create_app(replace(settings, simulator=True, simulator_auth=AUTH),
                     redis_client=redis_client, clock=clock)
    client = app.test_client()
    good = "Basic " + base64.b64encode(AUTH.encode()).decode()
    wrong = "Basic " + base64.b64encode(b"tester:guess").decode()
    for path in ("/simulator/", "/simulator/api/config", "/simulator/static/simulator.js"):
        for headers in ({}, {"Authorization": wrong}, {"Authorization": "Bearer x"},
                        {"Authorization": "Basic not-base64!"}):
            refused = fetch(client, path, headers=headers)
            assert refused.status_code == 401, (path, headers)
            assert refused.headers["WWW-Authenticate"] == 'Basic realm="ussd simulator"'
        assert fetch(client, path, headers={"Authorization": good}).status_code == 200
    page = Page(client, "hubtel", headers={"Authorization": good})
    assert page.move("dial")["screen"] == MAIN
    refused = client.post("/simulator/api/move", json={})
    assert refused.status_code == 401


def test_never_open_on_a_redis_unless_told(redis_client, settings):
    """It drives any subscriber's session past the gateways' secrets: on a Redis, served only
    behind its password, or when the server is said to be insecure."""
    production = replace(settings, simulator=True, redis_url="redis://127.0.0.1:1/0",
                         gateways=(), insecure=False)
    assert fetch(create_app(production, redis_client=redis_client).test_client(),
                 "/simulator/").status_code == 404
    demo_on_redis = replace(production, simulator=False, demo=True)
    assert fetch(create_app(demo_on_redis, redis_client=redis_client).test_client(),
                 "/simulator/").status_code == 404
    for allowed in (replace(production, insecure=True), replace(production, simulator_auth=AUTH),
                    replace(production, redis_url=None)):
        served = create_app(allowed, redis_client=redis_client).test_client()
        assert fetch(served, "/simulator/", headers={
            "Authorization": "Basic " + base64.b64encode(AUTH.encode()).decode()}
        ).status_code == 200


# --- each move is what the gateway gets -------------------------------------------------------


def test_a_whole_migration_in_every_dialect(simulated, service, gateway):
    page = Page(simulated, gateway)
    dialled = page.move("dial")
    assert (dialled["screen"], dialled["end"]) == (MAIN, False)
    assert (dialled["length"], dialled["limit"], dialled["alphabet"]) == (95, 182, "GSM 03.38")
    assert (dialled["page"], dialled["pages"], dialled["ttl"]) == (1, 1, 180)
    assert page.move("send", "1")["screen"].startswith("Choisissez votre nouveau profil:")
    assert page.move("send", "2")["screen"] == CONFIRM_TIGRE
    done = page.move("send", "1")
    assert (done["screen"], done["end"]) == (MIGRATED_TIGRE, True)
    record = service.store.admin.describe(ALICE, THIS_MONTH)
    assert (record["profile"], record["history"][0]["gateway"]) == ("tigre", gateway)
    assert done["command"] == (f"ussd sim --url http://localhost --gateway {gateway} --msisdn "
                               "0700000001 --dial '#121#' --input 1 --input 2 --input 1")


def test_the_wire_shown_is_the_dialects_own(simulated, gateway):
    """The request is the dialect's client half's; the reply, byte for byte, what its server
    half writes, as the gateway endpoint sends it."""
    shown = Page(simulated, gateway).move("dial")["wire"]
    dialect = GATEWAYS[gateway].wire_format
    request = dialect.dial("web-0001", "0700000001", "#121#")
    endpoint = GATEWAYS[gateway](simulated, "0700000001", dial="#121#", session_id="web-other")
    answer = endpoint.send_request(endpoint._call(request))
    expected_reply = dialect.wire(dialect.read_reply(answer), request)
    assert shown[0]["reply"].split("\n\n", 1)[1] == expected_reply.body == answer.body
    assert shown[0]["reply"].split("\n")[1] == f"Content-Type: {answer.header('Content-Type')}"
    first_line = shown[0]["request"].split("\n")[0]
    assert first_line.startswith(f"{request.method} /ussd/{gateway}")
    headers = {"africastalking": [], "hubtel": [], "flares": ["Freeflow: FC",
                                                              "Cache-Control: no-store"]}
    for header in headers[gateway]:
        assert header in shown[0]["reply"]


def test_pages_and_the_time_left(simulated):
    page = Page(simulated, "flares")
    page.move("dial")
    first = page.move("send", "3")
    assert (first["page"], first["pages"]) == (1, 2)
    assert first["screen"].endswith("99 Suite\n0 Retour | 00 Accueil")
    second = page.move("send", "99")
    assert (second["page"], second["pages"], second["ttl"]) == (2, 2, 180)


def test_a_drop_then_a_redial_offers_to_resume(simulated, service, gateway):
    first = Page(simulated, gateway, session="web-first")
    first.move("dial")
    first.move("send", "1")
    first.move("send", "2")
    left = first.move("time_out")
    assert (left["screen"], len(left["wire"])) == (None, 1)  # the gateway's report, answered
    assert left["command"].endswith(" --input 1 --input 2 --time-out")
    second = Page(simulated, gateway, session="web-second")
    assert second.move("dial")["screen"] == "Reprendre où vous en étiez ?\n1. Oui\n2. Non"
    assert second.move("send", "1")["screen"] == CONFIRM_TIGRE
    assert second.move("send", "1")["screen"] == MIGRATED_TIGRE


def test_africastalking_reports_the_end_after_an_end(simulated):
    page = Page(simulated, "africastalking", msisdn="0799999999")
    ended = page.move("dial")
    assert ended["end"] is True
    assert [exchange["request"].split("\n")[0] for exchange in ended["wire"]] == [
        "POST /ussd/africastalking HTTP/1.1", "POST /ussd/africastalking/events HTTP/1.1"]
    assert "status=Success" in ended["wire"][1]["request"]


@pytest.mark.parametrize(("body", "error"), [
    ({"gateway": "nokia"}, "no such dialect served here (served: africastalking, hubtel, "
                           "flares)"),
    ({"action": "explode"}, "no such move (moves: dial, send, hang_up, time_out)"),
    ({"msisdn": ""}, "session, msisdn and code must be text (64 characters at most)"),
    ({"inputs": "1"}, "inputs must be a list of texts"),
    ({"inputs": ["1", 2]}, "inputs must be a list of texts"),
    ({"action": "send", "inputs": []}, "nothing to send"),
    # The length of one input and the number of inputs are two limits, each named: an input
    # too long was told "inputs must be a list of texts (64 at most)".
    ({"action": "send", "inputs": ["1", "2" * 183]},
     "an input is 182 characters at most: no handset sends more in one USSD message"),
    ({"action": "send", "inputs": ["1"] * 65}, "a session takes 64 inputs at most"),
    ({"action": "hang_up", "inputs": ["1"] * 65}, "a session takes 64 inputs at most"),
])
def test_a_move_that_is_not_one_is_refused(simulated, body, error):
    move = {"gateway": "hubtel", "action": "dial", "session": "s", "msisdn": "0700000001",
            "code": "#121#", "inputs": [], **body}
    response = simulated.post("/simulator/api/move", json=move)
    assert (response.status_code, response.json) == (400, {"error": error})


@pytest.mark.parametrize("inputs", [["9" * 182], ["9"] * 64], ids=["longest", "most"])
def test_the_longest_input_and_the_most_inputs_allowed_are_played(simulated, gateway, inputs):
    page = Page(simulated, gateway)
    page.move("dial")
    page.inputs = inputs[:-1]
    assert "invalide" in page.move("send", inputs[-1])["screen"]  # answered, not refused


def test_a_value_sent_is_not_echoed_back(simulated):
    """A 5 MB ``gateway`` was answered with a 5 MB 400 holding it; now the values allowed."""
    move = {"gateway": "x" * 20_000, "action": "<script>", "session": "s",
            "msisdn": "0700000001", "code": "#121#", "inputs": []}
    response = simulated.post("/simulator/api/move", json=move)
    assert (response.status_code, response.get_data(as_text=True)) == (
        400, '{"error":"no such dialect served here (served: africastalking, hubtel, flares)"}\n')
    response = simulated.post("/simulator/api/move", json={**move, "gateway": "hubtel"})
    assert (response.status_code, response.get_data(as_text=True)) == (
        400, '{"error":"no such move (moves: dial, send, hang_up, time_out)"}\n')


class CountingStream(io.BytesIO):
    """A body sent in chunks (no length): how many of its bytes the server read."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.taken = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.taken += len(data)
        return data


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_a_huge_move_is_refused_unread(simulated, chunked):
    """Before, a 50 MB move was read whole (the worker 70 MB larger for good), then 400."""
    body = b'{"gateway": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    stream = CountingStream(body)
    if chunked:
        response = simulated.post("/simulator/api/move", input_stream=stream,
                                  content_type="application/json",
                                  headers={"Transfer-Encoding": "chunked"},
                                  environ_overrides={"wsgi.input_terminated": True})
    else:
        response = simulated.post("/simulator/api/move", input_stream=stream,
                                  content_type="application/json", content_length=len(body))
    assert (response.status_code, response.json) == (
        413, {"error": "a move is 65536 bytes at most"})
    assert stream.taken <= (65_537 if chunked else 0)


def test_only_the_served_dialects_are_offered(redis_client, settings, clock, store):
    app = create_app(replace(settings, simulator=True, gateways=("hubtel",)),
                     redis_client=redis_client, clock=clock)
    config = app.test_client().get("/simulator/api/config").json
    assert config == {"dialects": ["hubtel"], "codes": ["*121#", "#121#"], "ttl": 180,
                      "resume_window": 120, "demo": []}


def test_the_transcript_replays_with_ussd_sim(redis_client, settings, clock, store, gateway):
    """The command line the page downloads plays the same session again, over HTTP."""
    app = create_app(replace(settings, simulator=True), redis_client=redis_client, clock=clock)
    with serving(app) as url:

        def move(action: str, inputs: list[str]) -> dict:
            request = urllib.request.Request(
                f"{url}/simulator/api/move", method="POST",
                headers={"Content-Type": "application/json"},
                data=json.dumps({
                    "gateway": gateway, "action": action, "session": "web-played",
                    "msisdn": "0700000003", "code": "#121#", "inputs": inputs}).encode())
            with urllib.request.urlopen(request, timeout=10) as answer:
                return json.loads(answer.read())

        move("dial", [])
        move("send", ["2"])
        played = move("send", ["2", "0"])
        words = shlex.split(played["command"])
        assert words[:4] == ["ussd", "sim", "--url", url]
        result = CliRunner().invoke(main, words[1:])
    assert result.exit_code == 0, result.output
    assert result.output.endswith("> 0\n+---------------------------- CON\n| Orange #121#\n"
                                  "| 1. Changer de profil\n| 2. Mon profil\n"
                                  "| 3. Conditions de migration\n| 4. Language / Langue\n"
                                  "+----------------------------\n")


def test_the_demo_subscribers_offered_are_as_they_stand_now(key_prefix):
    """With the demo loaded (the embedded store, as ``ussd serve --demo``), the page lists its
    subscribers with their profile and language of the moment: testers change both."""
    from ussd.settings import Settings

    client = create_app(Settings(key_prefix=key_prefix, demo=True)).test_client()
    rows = client.get("/simulator/api/config").json["demo"]
    assert [(row["msisdn"], row["profile"], row["language"]) for row in rows] == [
        ("0700000001", "Novamix", "fr"), ("0700000002", "Tigre", "fr"),
        ("0700000003", "Novamix", "fr"), ("0700000004", "Dauphin", "fr"),
        ("0700000005", "Aigle", "en"), ("0700000006", "Novamix", "fr")]
    assert rows[3]["shows"] == "on Dauphin: the month's 3 migrations used"
    page = Page(client, "flares", msisdn="0700000001")
    page.move("dial")
    page.move("send", "1")
    page.move("send", "2")
    assert page.move("send", "1")["screen"] == MIGRATED_TIGRE
    language = Page(client, "hubtel", msisdn="0700000005", session="web-language")
    language.move("dial")
    language.move("send", "4")
    language.move("send", "1")
    rows = client.get("/simulator/api/config").json["demo"]
    assert (rows[0]["profile"], rows[4]["language"]) == ("Tigre", "fr")
