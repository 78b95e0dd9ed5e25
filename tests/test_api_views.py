"""The HTTP API as the customer area, the app and customer care call it (ussd/api/views.py):
every endpoint, exact bodies and headers, what Redis holds after, on fakeredis and a real Redis
(and the 3-master cluster: tests/test_cluster.py). Every answer is also checked against the
API's OpenAPI document (tests/api_calls.py)."""

from __future__ import annotations

import json
import re

import pytest
from api_calls import API_TOKENS
from conftest import ALICE, BRUNO, CELINE, JOHN, LAST_MONTH, NOBODY, THIS_MONTH, Dialler

from ussd.rules import Language, Profile

ALICE_PAGE = {
    "msisdn": ALICE, "profile": "Novamix", "language": "fr", "month": THIS_MONTH,
    "migrations_this_month": 0, "migrations_left": 3, "monthly_cap": 3,
    "consumption_last_month": 3000,
    "offers": [
        {"profile": "Novamix", "current": True, "eligible": False, "reason": "same_profile",
         "required": 0, "consumed": 3000},
        {"profile": "Tigre", "current": False, "eligible": True, "reason": "approved",
         "required": 2500, "consumed": 3000},
        {"profile": "Dauphin", "current": False, "eligible": True, "reason": "approved",
         "required": 0, "consumed": 3000},
        {"profile": "Aigle", "current": False, "eligible": False,
         "reason": "insufficient_consumption", "required": 8000, "consumed": 3000},
    ],
}
AT = "2026-11-15T10:00:00+00:00"  # conftest.NOW
ALICE_TO_TIGRE = {
    "msisdn": ALICE, "reason": "approved",
    "migration": {"at": AT, "from": "Novamix", "to": "Tigre", "channel": "web",
                  "client": "portal"},
    "required": 2500, "consumed": 3000, "migrations_this_month": 1, "migrations_left": 2,
}


KEY_RULE = ("must be 1 to 255 visible ASCII characters (no space), bare or as an RFC 8941 "
            "string in double quotes")


def problem(name: str, title: str, status: int, detail: str, **members) -> dict:
    return {"type": f"/api/v1/problems/{name}", "title": title, "status": status,
            "detail": detail, **members}


def unknown_subscriber(msisdn: str) -> dict:
    return problem("unknown-subscriber", "No such subscriber", 404,
                   f"No subscriber holds the number {msisdn}.", reason="unknown_subscriber",
                   msisdn=msisdn)


def stored(store, msisdn: str) -> tuple[dict, list]:
    """The subscriber's hash and history as Redis holds them."""
    return (store.redis.hgetall(store.keys.subscriber(msisdn)),
            [json.loads(e) for e in store.redis.lrange(store.keys.history(msisdn), 0, -1)])


def request_records(store, msisdn: str) -> list[str]:
    """The keys of the API requests recorded about the subscriber (under any idempotency
    key)."""
    prefix = store.keys.request(msisdn, "portal", "k").rpartition(":")[0]
    return sorted(store.redis.scan_iter(f"{prefix}:*"))


# --- GET /api/v1/subscribers/{msisdn} ---------------------------------------------------------

@pytest.mark.parametrize("written", ["+2250700000001", "2250700000001", "0700000001",
                                     "%2B2250700000001", "+225 07 00 00 00 01"])
def test_a_subscribers_page_whatever_the_numbers_form(api, written):
    response = api.get(f"/api/v1/subscribers/{written}")
    assert (response.status_code, response.mimetype) == (200, "application/json")
    assert response.get_json() == ALICE_PAGE


def test_the_page_of_an_english_subscriber_on_aigle(api):
    page = api.get(f"/api/v1/subscribers/{JOHN}").get_json()
    assert (page["profile"], page["language"], page["consumption_last_month"]) == (
        "Aigle", "en", 12000)
    assert [(o["profile"], o["current"], o["eligible"], o["reason"]) for o in page["offers"]] == [
        ("Novamix", False, True, "approved"), ("Tigre", False, True, "approved"),
        ("Dauphin", False, True, "approved"), ("Aigle", True, False, "same_profile")]


def test_an_unknown_subscriber_is_404(api):
    response = api.get(f"/api/v1/subscribers/{NOBODY}")
    assert (response.status_code, response.mimetype) == (404, "application/problem+json")
    assert response.get_json() == unknown_subscriber(NOBODY)


@pytest.mark.parametrize("written", ["abc", "0800000001", "+33612345678", "07000000011",
                                     "0700000001x", "%00", "%F0%9F%98%80"])
def test_a_malformed_number_is_400_naming_the_path(api, written):
    response = api.get(f"/api/v1/subscribers/{written}")
    message = ("not a Côte d'Ivoire mobile number (+225 and 10 digits, or the 10 digits "
               "alone)")
    assert response.status_code == 400
    assert response.get_json() == problem(
        "invalid-request", "The request is malformed", 400,
        f"The request is malformed: path msisdn: {message}.",
        errors=[{"location": "path", "name": "msisdn", "message": message}])


# --- POST /api/v1/subscribers/{msisdn}/migrations --------------------------------------------

def test_an_approved_migration_is_201_and_applied_with_its_request_recorded(api, store):
    response = api.migrate("0700000001", "Tigre", key="0b6f3c52-5a4e")
    assert (response.status_code, response.mimetype) == (201, "application/json")
    assert "Idempotent-Replayed" not in response.headers
    assert response.get_json() == ALICE_TO_TIGRE
    fields, history = stored(store, ALICE)
    assert fields == {"p": "tigre", "l": "fr", f"c:{LAST_MONTH}": "3000", f"m:{THIS_MONTH}": "1"}
    assert history == [{"at": AT, "from": "novamix", "to": "tigre", "channel": "web",
                        "client": "portal"}]
    record = store.keys.request(ALICE, "portal", "0b6f3c52-5a4e")
    assert 86_390 < store.redis.ttl(record) <= 86_400  # a day
    assert json.loads(store.redis.get(record)) == {
        "asked": "tigre",
        "decision": {"reason": "approved", "target": "tigre", "current": "novamix",
                     "required": 2500, "consumed": 3000, "migrations_used": 0,
                     "migrations_left": 2},
        "migration": {"at": AT, "from": "novamix", "to": "tigre", "channel": "web",
                      "client": "portal"},
    }


def test_the_same_key_and_body_again_get_the_same_answer_and_apply_nothing(api, store):
    first = api.migrate(ALICE, "Tigre")
    again = [api.migrate(ALICE, written) for written in ("Tigre", "TIGRE", " tigre ")]
    for response in again:
        assert (response.status_code, response.get_json()) == (201, ALICE_TO_TIGRE)
        assert response.headers["Idempotent-Replayed"] == "true"
    assert first.get_data() == again[0].get_data()  # byte for byte
    fields, history = stored(store, ALICE)
    assert (fields[f"m:{THIS_MONTH}"], len(history)) == ("1", 1)


def test_the_same_key_with_another_body_is_422_and_applies_nothing(api, store):
    api.migrate(ALICE, "Tigre")
    response = api.migrate(ALICE, "Dauphin")
    assert (response.status_code, response.mimetype) == (422, "application/problem+json")
    assert response.get_json() == problem(
        "idempotency-key-reused", "Idempotency key already used for another request", 422,
        "This Idempotency-Key was first sent with the profile 'tigre', not 'dauphin'.",
        reason="idempotency_key_reused")
    fields, history = stored(store, ALICE)
    assert (fields["p"], len(history)) == ("tigre", 1)


def test_keys_are_the_clients_own_and_the_subscribers(api, store):
    # The same key from another client, or about another subscriber, names another request.
    assert api.migrate(ALICE, "Tigre", key="k").status_code == 201
    assert api.migrate(ALICE, "Dauphin", key="k", client="mobile").status_code == 201
    assert api.migrate(BRUNO, "Aigle", key="k").status_code == 201
    assert [e["to"] for e in stored(store, ALICE)[1]] == ["tigre", "dauphin"]


def test_a_quoted_key_names_its_content(api):
    assert api.migrate(ALICE, "Tigre", key="abc-1").status_code == 201
    replay = api.migrate(ALICE, "Tigre", key='"abc-1"')
    assert (replay.status_code, replay.headers["Idempotent-Replayed"]) == (201, "true")


REFUSALS = [
    (ALICE, "Aigle", problem(
        "insufficient-consumption", "Not enough credit consumed last month", 422,
        "Aigle needs at least 8000 F CFA of credit consumed last month; the subscriber "
        "consumed 3000 F CFA.", reason="insufficient_consumption", profile="Aigle",
        current="Novamix", required=8000, consumed=3000, migrations_this_month=0,
        migrations_left=3)),
    (BRUNO, "tigre", problem(
        "same-profile", "The subscriber already has this profile", 422,
        "The subscriber already has the profile Tigre; no migration was counted.",
        reason="same_profile", profile="Tigre", current="Tigre", required=2500, consumed=9500,
        migrations_this_month=0, migrations_left=3)),
    (CELINE, "Lion", problem(
        "unknown-profile", "No such profile", 422,
        "No such profile: the profiles are Novamix, Tigre, Dauphin and Aigle.",
        reason="unknown_profile")),
]


@pytest.mark.parametrize(("msisdn", "profile", "body"), REFUSALS)
def test_a_refusal_is_422_with_the_reason_and_its_figures(api, store, msisdn, profile, body):
    before = stored(store, msisdn)
    response = api.migrate(msisdn, profile)
    assert (response.status_code, response.mimetype) == (422, "application/problem+json")
    assert response.get_json() == body
    assert stored(store, msisdn) == before


def test_the_fourth_migration_of_the_month_is_refused_whatever_the_channel(api, store):
    for number, (client, profile) in enumerate((("portal", "Dauphin"), ("mobile", "Novamix"),
                                                ("care", "Tigre"))):
        assert api.migrate(ALICE, profile, key=f"k{number}", client=client).status_code == 201
    response = api.migrate(ALICE, "Dauphin", key="k4")
    assert response.get_json() == problem(
        "monthly-limit-reached", "The month's migrations are all used", 422,
        "The 3 migrations of this month are used; migrations open again on the 1st of next "
        "month.", reason="monthly_limit_reached", profile="Dauphin", current="Tigre",
        required=0, consumed=3000, migrations_this_month=3, migrations_left=0)
    assert [(e["channel"], e["client"]) for e in stored(store, ALICE)[1]] == [
        ("web", "portal"), ("app", "mobile"), ("care", "care")]


def test_a_refusal_is_answered_the_same_under_its_key_even_once_the_figures_change(api, store):
    first = api.migrate(ALICE, "Aigle")
    store.admin.put_consumption([(ALICE, LAST_MONTH, 9000)])  # Aigle would be open now
    again = api.migrate(ALICE, "Aigle")
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (422, "true")
    assert again.get_data() == first.get_data()
    assert api.migrate(ALICE, "Aigle", key="a-new-key").status_code == 201


def test_an_unknown_subscriber_is_404_and_its_key_stays_free(api, store):
    response = api.migrate(NOBODY, "Tigre")
    assert (response.status_code, response.get_json()) == (404, unknown_subscriber(NOBODY))
    store.admin.put_subscribers([(NOBODY, Profile.NOVAMIX, Language.FR)])
    assert api.migrate(NOBODY, "Dauphin").status_code == 201


def test_the_channel_is_the_clients_never_the_bodys(api, store):
    response = api.migrate(ALICE, "Tigre", client="mobile")
    assert response.get_json()["migration"]["channel"] == "app"
    refused = api.migrate(ALICE, "Tigre", key="k2", json={"profile": "Tigre", "channel": "ussd"})
    assert refused.status_code == 400
    assert refused.get_json()["errors"] == [
        {"location": "body", "name": "channel", "message": "Extra inputs are not permitted"}]


MALFORMED = [
    ({"data": "{not json", "content_type": "application/json"},
     [{"location": "body", "name": "", "message": "not a JSON object"}]),
    ({"data": "", "content_type": "application/json"},
     [{"location": "body", "name": "", "message": "no body"}]),
    # Nested deeper than the parser goes (2 KB of brackets): malformed, never a 500.
    ({"data": "[" * 1500 + "]" * 1500, "content_type": "application/json"},
     [{"location": "body", "name": "", "message": "not a JSON object"}]),
    ({"json": {}}, [{"location": "body", "name": "profile", "message": "Field required"}]),
    ({"json": ["Tigre"]}, [{"location": "body", "name": "",
                            "message": "Input should be a valid dictionary or instance of "
                                       "MigrationRequest"}]),
    ({"json": {"profile": 2}}, [{"location": "body", "name": "profile",
                                 "message": "Input should be a valid string"}]),
    ({"json": {"profile": ""}}, [{"location": "body", "name": "profile",
                                  "message": "String should have at least 1 character"}]),
    ({"json": {"profile": "T" * 33}}, [{"location": "body", "name": "profile",
                                        "message": "String should have at most 32 characters"}]),
]


@pytest.mark.parametrize(("sent", "errors"), MALFORMED)
def test_a_malformed_body_is_400_naming_what_is_wrong(api, store, sent, errors):
    before = stored(store, ALICE)
    response = api.migrate(ALICE, None, **sent)
    assert (response.status_code, response.mimetype) == (400, "application/problem+json")
    body = response.get_json()
    assert body["errors"] == errors
    assert body["type"] == "/api/v1/problems/invalid-request"
    assert stored(store, ALICE) == before


def repeated(name: str) -> dict:
    return {"location": "body", "name": name, "message": "given more than once"}


@pytest.mark.parametrize(("data", "errors"), [
    # Before: 201, Dauphin, the last value read silently.
    ('{"profile": "Tigre", "profile": "Dauphin"}', [repeated("profile")]),
    ('{"profile": "Tigre", "profile": "Tigre"}', [repeated("profile")]),
    ('{"profile": "Tigre", "x": [{"a": 1, "a": 2, "b": {"c": 1, "c": 2, "c": 3}}]}',
     [repeated("x.0.a"), repeated("x.0.b.c")]),  # at any depth, each once, in the text's order
    ('{"pr\\u006ffile": "Dauphin", "profile": "Tigre"}', [repeated("profile")]),  # one name
], ids=["two-values", "one-value-twice", "deeper", "escaped"])
def test_a_member_given_twice_is_400_and_nothing_is_applied(api, store, data, errors):
    before = stored(store, ALICE)
    response = api.migrate(ALICE, None, data=data, content_type="application/json")
    assert (response.status_code, response.mimetype) == (400, "application/problem+json")
    shown = "; ".join(f"body {error['name']}: given more than once" for error in errors)
    assert response.get_json() == problem(
        "invalid-request", "The request is malformed", 400,
        f"The request is malformed: {shown}.", errors=errors)
    assert stored(store, ALICE) == before
    assert request_records(store, ALICE) == []
    # Its key is free: the same key with a body read one way is applied.
    assert api.migrate(ALICE, "Tigre").status_code == 201


def test_a_member_given_twice_is_named_with_the_other_bad_parts(api, store):
    response = api.migrate("12", None, key="a b", data='{"profile": 1, "profile": "Tigre"}',
                           content_type="application/json")
    assert response.get_json()["errors"] == [
        {"location": "path", "name": "msisdn", "message": "not a Côte d'Ivoire mobile number "
                                                          "(+225 and 10 digits, or the 10 digits "
                                                          "alone)"},
        repeated("profile"),
        {"location": "header", "name": "Idempotency-Key", "message": KEY_RULE}]


def test_every_bad_part_is_named_at_once(api):
    response = api.migrate("12", None, key=None, data="[", content_type="application/json")
    assert response.get_json() == problem(
        "invalid-request", "The request is malformed", 400,
        "The request is malformed: path msisdn: not a Côte d'Ivoire mobile number (+225 and 10 "
        "digits, or the 10 digits alone); body: not a JSON object; header Idempotency-Key: "
        "Field required.",
        errors=[{"location": "path", "name": "msisdn", "message": "not a Côte d'Ivoire mobile "
                 "number (+225 and 10 digits, or the 10 digits alone)"},
                {"location": "body", "name": "", "message": "not a JSON object"},
                {"location": "header", "name": "Idempotency-Key", "message": "Field required"}])


@pytest.mark.parametrize(("key", "message"), [
    (None, "Field required"),
    # Granian hands a value with any byte that is not ASCII over as "" (before: "String should
    # have at least 1 character", false of "é"); a WSGI server such as werkzeug's as latin-1.
    ("", KEY_RULE),
    ("é".encode().decode("latin-1"), KEY_RULE),
    ("clé-1".encode().decode("latin-1"), KEY_RULE),
    ("with space", KEY_RULE),  # before, these three: pydantic's "should match pattern '^(?:...'"
    ('""', KEY_RULE),
    ('"ab', KEY_RULE),
    ("k" * 256, "String should have at most 255 characters"),
    ("é" * 256, KEY_RULE),
], ids=["missing", "empty", "e-acute", "non-ascii", "space", "empty-quoted",
        "unclosed", "too-long", "too-long-non-ascii"])
def test_a_missing_or_malformed_idempotency_key_is_400_saying_what_a_key_is(api, store, key,
                                                                            message):
    before = stored(store, ALICE)
    response = api.migrate(ALICE, "Tigre", key=key)
    assert (response.status_code, response.mimetype) == (400, "application/problem+json")
    assert response.get_json() == problem(
        "invalid-request", "The request is malformed", 400,
        f"The request is malformed: header Idempotency-Key: {message}.",
        errors=[{"location": "header", "name": "Idempotency-Key", "message": message}])
    assert stored(store, ALICE) == before
    assert request_records(store, ALICE) == []


@pytest.mark.parametrize("key", ["   ", "\t"])
def test_a_key_of_spaces_only_is_400_saying_what_a_key_is(api_app, store, key):
    """Sent past the document check (schemathesis rebuilds the request with requests, which
    refuses such a header); a server strips them, and the key comes as "", said the same."""
    before = stored(store, ALICE)
    response = api_app.test_client().post(
        f"/api/v1/subscribers/{ALICE}/migrations", json={"profile": "Tigre"},
        headers={"Authorization": f"Bearer {API_TOKENS['portal']}", "Idempotency-Key": key})
    assert (response.status_code, response.get_json()["errors"]) == (
        400, [{"location": "header", "name": "Idempotency-Key", "message": KEY_RULE}])
    assert stored(store, ALICE) == before
    assert request_records(store, ALICE) == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          None])
def test_a_body_that_is_not_json_is_415(api, content_type):
    response = api.migrate(ALICE, None, data="profile=Tigre", content_type=content_type)
    assert response.status_code == 415
    assert response.get_json() == {"type": "about:blank", "title": "Unsupported Media Type",
                                   "status": 415, "detail": "Send the body as application/json."}


def test_a_large_body_is_413(api):
    response = api.migrate(ALICE, None, data=json.dumps({"profile": "x" * 20_000}),
                           content_type="application/json")
    assert (response.status_code, response.get_json()["title"]) == (413, "Request Entity Too Large")


class ChunkedBody:
    """A request body sent in chunks (no Content-Length), ``size`` bytes of ``piece`` repeated,
    made as it is read; ``read`` counts the bytes the app took."""

    def __init__(self, size: int, piece: bytes = b" "):
        self.left, self.piece, self.read_bytes = size, piece, 0

    def read(self, size: int = -1) -> bytes:
        size = self.left if size is None or size < 0 else min(size, self.left)
        self.left -= size
        self.read_bytes += size
        return (self.piece * (size // len(self.piece) + 1))[:size]


def chunked(body: ChunkedBody) -> dict:
    """The test client's options for a chunked request whose body is ``body``."""
    return {"headers": {"Transfer-Encoding": "chunked", "Idempotency-Key": "key-1"},
            "content_type": "application/json",
            "environ_overrides": {"wsgi.input": body, "wsgi.input_terminated": True}}


MIGRATIONS, CONSUMPTION = f"/api/v1/subscribers/{ALICE}/migrations", "/api/v1/consumption"


@pytest.mark.parametrize(("path", "client", "limit", "size"), [
    (MIGRATIONS, "portal", 16 * 1024, 20_000),
    (MIGRATIONS, "portal", 16 * 1024, 50 * 1024 * 1024),
    (CONSUMPTION, "care", 256 * 1024, 300_000),
    (CONSUMPTION, "care", 256 * 1024, 50 * 1024 * 1024),
])
def test_a_large_chunked_body_is_413_read_no_further_than_the_limit(api, store, path, client,
                                                                    limit, size):
    """No Content-Length: before, the first bytes up to the limit were read as the body, a
    400 "not a JSON object" or "give months or increments"."""
    body = ChunkedBody(size)
    response = api.call("POST", path, client, **chunked(body))
    assert (response.status_code, response.mimetype) == (413, "application/problem+json")
    assert response.get_json() == {
        "type": "about:blank", "title": "Request Entity Too Large", "status": 413,
        "detail": "The data value transmitted exceeds the capacity limit."}
    assert body.read_bytes == limit + 1
    assert stored(store, ALICE)[0]["p"] == "novamix"


def test_a_chunked_body_within_the_limit_is_read(api, store):
    json_body = b'{"profile": "Tigre"}'
    response = api.call("POST", MIGRATIONS, "portal",
                        **chunked(ChunkedBody(len(json_body), json_body)))
    assert (response.status_code, response.get_json()) == (201, ALICE_TO_TIGRE)


# --- GET /api/v1/subscribers/{msisdn}/migrations, and the USSD screens after -----------------

def test_the_history_is_newest_first_with_who_asked_through_every_channel(api, api_app, clock):
    session = Dialler(api_app.test_client(), ALICE, session_id="AT-history")
    session.dial()
    session.send("1")
    session.send("3")
    assert session.send("1").startswith("END Votre profil est désormais Dauphin")
    clock.now = clock.now.replace(hour=11)
    api.migrate(ALICE, "Tigre", client="care")
    response = api.get(f"/api/v1/subscribers/{ALICE}/migrations", client="reader")
    assert response.get_json() == {"msisdn": ALICE, "migrations": [
        {"at": "2026-11-15T11:00:00+00:00", "from": "Dauphin", "to": "Tigre",
         "channel": "care", "client": "care"},
        {"at": AT, "from": "Novamix", "to": "Dauphin", "channel": "ussd",
         "client": "africastalking"},
    ]}


def test_an_empty_history_and_an_unknown_ones(api):
    assert api.get(f"/api/v1/subscribers/{BRUNO}/migrations").get_json() == {
        "msisdn": BRUNO, "migrations": []}
    response = api.get(f"/api/v1/subscribers/{NOBODY}/migrations")
    assert (response.status_code, response.get_json()) == (404, unknown_subscriber(NOBODY))


def test_the_ussd_my_profile_screen_shows_an_api_migration(api, api_app):
    assert api.migrate(ALICE, "Tigre").status_code == 201
    session = Dialler(api_app.test_client(), ALICE)
    session.dial()
    assert session.send("2") == (
        "CON Votre profil: Tigre.\nMigrations restantes ce mois: 2 sur 3.\n"
        "Crédit consommé le mois passé: 3.000 F CFA.\n0 Retour | 00 Accueil")
    assert api.get(f"/api/v1/subscribers/{ALICE}").get_json()["migrations_left"] == 2


def test_a_ussd_migration_counts_against_the_apis_cap(api, api_app):
    for profile in ("Dauphin", "Novamix"):
        assert api.migrate(ALICE, profile, key=profile).status_code == 201
    session = Dialler(api_app.test_client(), ALICE)
    session.dial()
    session.send("1")
    session.send("2")
    assert session.send("1").startswith("END Votre profil est désormais Tigre")
    assert api.migrate(ALICE, "Dauphin", key="4th").get_json()["reason"] == (
        "monthly_limit_reached")


def test_an_api_migration_is_counted_by_channel_and_the_request_by_client(api, api_app):
    def series(name: str, **labels: str) -> float:
        text = api_app.test_client().get("/metrics").get_data(as_text=True)
        wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
        found = re.search(rf"^{name}\{{{re.escape(wanted)}\}} (\S+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    labels = {"endpoint": "post_migration", "client": "mobile", "status": "201"}
    before = (series("ussd_migrations_total", channel="app", target="tigre"),
              series("ussd_api_requests_total", **labels))
    api.migrate(ALICE, "Tigre", client="mobile")
    api.migrate(ALICE, "Tigre", client="mobile")  # replayed: a request, no migration
    after = (series("ussd_migrations_total", channel="app", target="tigre"),
             series("ussd_api_requests_total", **labels))
    assert (after[0] - before[0], after[1] - before[1]) == (1, 2)


def test_the_language_a_subscriber_chose_in_the_ussd_menu_is_the_pages(api, api_app):
    """Issue 17: a subscriber switches to English from the menu, and the API shows it."""
    assert api.get(f"/api/v1/subscribers/{ALICE}").get_json()["language"] == "fr"
    session = Dialler(api_app.test_client(), ALICE)
    session.dial()
    session.send("4")
    assert session.send("2").startswith("CON Your language is now English.")
    page = api.get(f"/api/v1/subscribers/{ALICE}").get_json()
    assert page == {**ALICE_PAGE, "language": "en"}


def test_every_api_route_is_counted_under_its_own_name(api_app):
    # metrics.API_ENDPOINTS is a closed set: a route left out of it would be counted as "other".
    from ussd.metrics import API_ENDPOINTS

    routes = {rule.endpoint.removeprefix("api.") for rule in api_app.url_map.iter_rules()
              if rule.endpoint.startswith("api.")}
    assert routes == API_ENDPOINTS
