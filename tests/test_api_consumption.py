"""POST /api/v1/consumption (ussd/api/consumption.py, ussd/consumption.py): what billing sends
and gets back, what the next decision sees; on fakeredis and a real Redis."""

from __future__ import annotations

import hashlib

import pytest
from conftest import ALICE, BRUNO, CELINE, LAST_MONTH, NOBODY, THIS_MONTH, Dialler

from ussd.settings import Settings
from ussd.web import create_app

BILLING, PORTAL = "billing-token-0123456789abcdef", "portal-token-0123456789abcdef"


@pytest.fixture
def feed_api(redis_client, key_prefix, clock, store, tmp_path):
    """The app's test client, with two API clients: billing (consumption:write) and the
    portal (not)."""
    clients = tmp_path / "clients.toml"
    clients.write_text(
        f'[clients.billing]\ntoken_sha256 = "{hashlib.sha256(BILLING.encode()).hexdigest()}"\n'
        'scopes = ["consumption:write"]\nchannel = "care"\n\n'
        f'[clients.portal]\ntoken_sha256 = "{hashlib.sha256(PORTAL.encode()).hexdigest()}"\n'
        'scopes = ["subscribers:read", "migrations:write"]\nchannel = "web"\n')
    settings = Settings(key_prefix=key_prefix, api_clients=clients)
    return create_app(settings, redis_client=redis_client, clock=clock).test_client()


def post(client, body, token=BILLING):
    return client.post("/api/v1/consumption", json=body,
                       headers={"Authorization": f"Bearer {token}"})


def consumption(store, msisdn):
    return store.admin.describe(msisdn, THIS_MONTH)["consumption"]


def stored(redis_client, key_prefix):
    """Every key of the test and its value (as DUMP serialises it), to see that none changed."""
    return {key: redis_client.dump(key) for key in redis_client.scan_iter(f"{key_prefix}*")}


def test_a_months_total_changes_the_very_next_decision(feed_api, store):
    session = Dialler(feed_api, CELINE)
    session.dial()
    session.send("1")
    assert "impossible" in session.send("2")  # 1.200 F CFA last month: Tigre refused
    answer = post(feed_api, {"months": [{"msisdn": "0700000003", "month": LAST_MONTH,
                                       "amount": 2600}]})
    assert (answer.status_code, answer.get_json()) == (
        200, {"months": 1, "increments_counted": 0, "increments_replayed": 0})
    assert consumption(store, CELINE) == {LAST_MONTH: 2600}
    again = Dialler(feed_api, CELINE)
    # The first dialogue, left open at the refusal, is offered to resume (issue 17): 2 afresh.
    assert again.dial().startswith("CON Reprendre où vous en étiez ?")
    again.send("2")
    again.send("1")
    assert again.send("2").startswith("CON Migration vers Tigre: gratuite.")


def test_increments_are_counted_once_by_id_in_the_month_of_their_moment(feed_api, store):
    body = {"increments": [
        {"id": "rc-1", "msisdn": ALICE, "amount": 500, "at": "2026-11-02T08:00:00+00:00"},
        # 23:30 on Oct 31st at UTC-1 is Nov 1st in Abidjan: November's.
        {"id": "rc-2", "msisdn": ALICE, "amount": 250, "at": "2026-10-31T23:30:00-01:00"},
        {"id": "rc-3", "msisdn": ALICE, "amount": 100, "at": "2026-10-31T23:30:00+00:00"},
    ]}
    first = post(feed_api, body)
    assert (first.status_code, first.get_json()) == (
        200, {"months": 0, "increments_counted": 3, "increments_replayed": 0})
    replay = post(feed_api, body)  # billing sends the same records again
    assert (replay.status_code, replay.get_json()) == (
        200, {"months": 0, "increments_counted": 0, "increments_replayed": 3})
    assert consumption(store, ALICE) == {LAST_MONTH: 3100, THIS_MONTH: 750}


def test_totals_are_set_before_increments_are_added(feed_api, store):
    answer = post(feed_api, {
        "months": [{"msisdn": BRUNO, "month": THIS_MONTH, "amount": 1000}],
        "increments": [{"id": "rc-9", "msisdn": BRUNO, "amount": 50,
                        "at": "2026-11-15T09:59:00+00:00"}]})
    assert answer.get_json() == {"months": 1, "increments_counted": 1, "increments_replayed": 0}
    assert consumption(store, BRUNO) == {LAST_MONTH: 9500, THIS_MONTH: 1050}


def test_every_bad_entry_is_named_and_nothing_is_applied(feed_api, store, redis_client,
                                                        key_prefix):
    before = stored(redis_client, key_prefix)
    answer = post(feed_api, {
        "months": [
            {"msisdn": ALICE, "month": LAST_MONTH, "amount": 10},
            {"msisdn": NOBODY, "month": LAST_MONTH, "amount": 10},
            {"msisdn": BRUNO, "month": "2026-12", "amount": 10},
            {"msisdn": ALICE, "month": LAST_MONTH, "amount": 20},
        ],
        "increments": [
            {"id": "rc-1", "msisdn": ALICE, "amount": 5, "at": "2026-11-16T10:00:00+00:00"},
            {"id": "rc-2", "msisdn": "12345", "amount": 5, "at": "2026-11-15T09:00:00+00:00"},
            {"id": "rc-2", "msisdn": ALICE, "amount": 5, "at": "2026-11-15"},
        ]})
    assert answer.status_code == 400
    assert answer.mimetype == "application/problem+json"
    problem = answer.get_json()
    assert (problem["status"], problem["detail"]) == (
        400, "The request has bad entries: 7 errors, nothing applied.")
    assert problem["errors"] == [  # in the order of the entries
        # Named with the rest, not on a second try once the others are mended.
        {"location": "body", "name": "months.1.msisdn", "message": f"no subscriber {NOBODY}"},
        {"location": "body", "name": "months.2.month",
         "message": "2026-12 has not begun (this month is 2026-11)"},
        {"location": "body", "name": "months.3",
         "message": f"repeats months.0 ({ALICE}, {LAST_MONTH})"},
        {"location": "body", "name": "increments.0.at",
         "message": "2026-11-16T10:00:00+00:00 has not come yet"},
        {"location": "body", "name": "increments.1.msisdn",
         "message": "not a valid CI number: '12345'"},
        {"location": "body", "name": "increments.2.id", "message": "repeats increments.1's id"},
        {"location": "body", "name": "increments.2.at",
         "message": "an ISO 8601 moment with its offset (2026-11-15T10:00:00+00:00), got "
                    "'2026-11-15'"},
    ]
    assert stored(redis_client, key_prefix) == before


def test_a_number_that_is_no_subscriber_is_named(feed_api, store):
    answer = post(feed_api, {"months": [{"msisdn": ALICE, "month": LAST_MONTH, "amount": 1},
                                      {"msisdn": NOBODY, "month": LAST_MONTH, "amount": 1}]})
    assert answer.status_code == 400
    assert answer.get_json()["errors"] == [
        {"location": "body", "name": "months.1.msisdn", "message": f"no subscriber {NOBODY}"}]
    assert consumption(store, ALICE) == {LAST_MONTH: 3000}


def test_malformed_and_refused_entries_are_named_in_one_problem(feed_api, store, redis_client,
                                                                key_prefix):
    before = stored(redis_client, key_prefix)
    answer = post(feed_api, {
        "increments": [
            {"id": "rc-1", "msisdn": NOBODY, "amount": 5, "at": "2026-11-15T09:00:00+00:00"},
            {"id": "rc-2", "msisdn": ALICE, "amount": 5},  # no "at"
        ],
        "months": [
            {"msisdn": ALICE, "month": LAST_MONTH, "amount": "3000"},  # a string, not a number
            {"msisdn": NOBODY, "month": LAST_MONTH, "amount": 10},
            {"msisdn": BRUNO, "month": LAST_MONTH, "amount": 10, "note": "x"},
            {"msisdn": BRUNO, "month": "2026-12", "amount": 10},
        ]})
    assert answer.status_code == 400
    assert answer.mimetype == "application/problem+json"
    problem = answer.get_json()
    assert (problem["type"], problem["status"], problem["detail"]) == (
        "/api/v1/problems/invalid-request", 400,
        "The request has bad entries: 6 errors, nothing applied.")
    assert [(error["location"], error["name"]) for error in problem["errors"]] == [
        ("body", "months.0.amount"), ("body", "months.1.msisdn"), ("body", "months.2.note"),
        ("body", "months.3.month"), ("body", "increments.0.msisdn"), ("body", "increments.1.at")]
    messages = {error["name"]: error["message"] for error in problem["errors"]}
    assert messages["months.1.msisdn"] == messages["increments.0.msisdn"] == (
        f"no subscriber {NOBODY}")
    assert messages["months.3.month"] == "2026-12 has not begun (this month is 2026-11)"
    assert stored(redis_client, key_prefix) == before
    mended = post(feed_api, {"months": [{"msisdn": ALICE, "month": LAST_MONTH, "amount": 3000},
                                        {"msisdn": NOBODY, "month": LAST_MONTH, "amount": 10}]})
    assert mended.get_json()["errors"] == [  # the same entry named the same way, mended or not
        {"location": "body", "name": "months.1.msisdn", "message": f"no subscriber {NOBODY}"}]
    assert stored(redis_client, key_prefix) == before


def body_error(name: str, message: str) -> dict:
    return {"location": "body", "name": name, "message": message}


NOT_BEFORE_0 = "Input should be greater than or equal to 0"


@pytest.mark.parametrize(("body", "errors"), [
    # Before, pydantic's amount alone: the entry it found malformed was not checked further.
    ({"months": [{"msisdn": "abc", "month": "2026-13", "amount": -5},
                 {"msisdn": "0700000001", "month": LAST_MONTH, "amount": 10}]},
     [body_error("months.0.msisdn", "not a phone number: 'abc'"),
      body_error("months.0.month", "not a YYYY-MM month: '2026-13'"),
      body_error("months.0.amount", NOT_BEFORE_0)]),  # once: pydantic's, not checked again
    # Before, id and amount alone; the id once, though both pydantic and the checks refuse "".
    ({"increments": [{"id": "", "msisdn": "abc", "amount": -1, "at": "nope"}]},
     [body_error("increments.0.id", "String should have at least 1 character"),
      body_error("increments.0.msisdn", "not a phone number: 'abc'"),
      body_error("increments.0.amount", NOT_BEFORE_0),
      body_error("increments.0.at", "an ISO 8601 moment with its offset "
                                    "(2026-11-15T10:00:00+00:00), got 'nope'")]),
    # Before, the amount alone: no subscriber was looked up for a malformed entry.
    ({"months": [{"msisdn": NOBODY, "month": LAST_MONTH, "amount": "10"}]},
     [body_error("months.0.msisdn", f"no subscriber {NOBODY}"),
      body_error("months.0.amount", "Input should be a valid integer")]),
    # Well formed (checked in the view); before, the month alone: none looked up without one.
    ({"months": [{"msisdn": NOBODY, "month": "2026-13", "amount": 10}]},
     [body_error("months.0.msisdn", f"no subscriber {NOBODY}"),
      body_error("months.0.month", "not a YYYY-MM month: '2026-13'")]),
    ({"increments": [{"msisdn": NOBODY, "amount": 1, "at": "2026-11-16T10:00:00+00:00",
                      "note": 1}]},
     [body_error("increments.0.id", "Field required"),
      body_error("increments.0.msisdn", f"no subscriber {NOBODY}"),
      body_error("increments.0.at", "2026-11-16T10:00:00+00:00 has not come yet"),
      body_error("increments.0.note", "Extra inputs are not permitted")]),
], ids=["month", "increment", "unknown-and-malformed", "unknown-and-refused", "every-kind"])
def test_every_bad_field_of_an_entry_is_named_once(feed_api, redis_client, key_prefix, body,
                                                   errors):
    before = stored(redis_client, key_prefix)
    answer = post(feed_api, body)
    assert (answer.status_code, answer.mimetype) == (400, "application/problem+json")
    problem = answer.get_json()
    assert (problem["type"], problem["detail"]) == (
        "/api/v1/problems/invalid-request",
        f"The request has bad entries: {len(errors)} errors, nothing applied.")
    assert problem["errors"] == errors  # by entry, each one's fields in their order
    assert stored(redis_client, key_prefix) == before


def send(client, data: str):
    """POST ``data`` as it is, a JSON text of billing's."""
    return client.post("/api/v1/consumption", data=data, content_type="application/json",
                       headers={"Authorization": f"Bearer {BILLING}"})


def test_a_member_given_twice_in_an_entry_is_named_with_the_other_bad_fields(
        feed_api, redis_client, key_prefix):
    """Before, each read as its last value: the entries were applied (were they good)."""
    before = stored(redis_client, key_prefix)
    answer = send(feed_api, (  # 0700000001 is ALICE, 0799999999 NOBODY, 2026-10 LAST_MONTH
        '{"months": [{"msisdn": "0700000001", "month": "2026-10", "amount": 10, "amount": -5},'
        '            {"msisdn": "0799999999", "month": "2026-13", "amount": 1}],'
        ' "increments": [{"id": "a", "msisdn": "abc", "id": "b", "amount": 1,'
        '                 "at": "2026-11-15T09:00:00+00:00", "at": "2026-11-15T09:00:00+00:00"}]}'))
    assert (answer.status_code, answer.mimetype) == (400, "application/problem+json")
    assert answer.get_json() == {
        "type": "/api/v1/problems/invalid-request", "title": "The request is malformed",
        "status": 400, "detail": "The request has bad entries: 6 errors, nothing applied.",
        "errors": [  # the repeated ones not checked: neither amount -5 nor the id "b"
            body_error("months.0.amount", "given more than once"),
            body_error("months.1.msisdn", f"no subscriber {NOBODY}"),
            body_error("months.1.month", "not a YYYY-MM month: '2026-13'"),
            body_error("increments.0.id", "given more than once"),
            body_error("increments.0.msisdn", "not a phone number: 'abc'"),
            body_error("increments.0.at", "given more than once")]}
    assert stored(redis_client, key_prefix) == before


@pytest.mark.parametrize(("data", "name"), [
    ('{"months": [{"msisdn": "0700000001", "month": "2026-10", "amount": 1}], "months": []}',
     "months"),
    ('{"months": [{"msisdn": "0700000001", "month": "2026-10", "amount": 1}],'
     ' "x": {"a": 1, "a": 1}}', "x.a"),
    ('{"months": [{"msisdn": "0700000001", "month": "2026-10", "amount": 1, "amount": 1}]}',
     "months.0.amount"),  # well formed either way, and the same value
], ids=["a-list", "outside-the-entries", "an-entry-alone"])
def test_a_body_with_a_member_given_twice_is_refused(feed_api, store, redis_client, key_prefix,
                                                      data, name):
    """A list of entries, or any member outside them, given twice: the body is malformed as a
    whole, its entries not read; a member of an entry given twice is named even with the
    same value, and the entry not applied."""
    before = stored(redis_client, key_prefix)
    answer = send(feed_api, data)
    assert (answer.status_code, answer.get_json()["errors"]) == (
        400, [body_error(name, "given more than once")])
    assert stored(redis_client, key_prefix) == before
    assert consumption(store, ALICE) == {LAST_MONTH: 3000}


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00+00:00"])
def test_a_moment_before_year_1_in_abidjan_is_named_not_a_500(feed_api, redis_client, key_prefix,
                                                               at):
    """Year 1 at +14:00, or at UTC (Abidjan's historical offset was -0:16), falls before year 1
    in the operator's zone: it was an OverflowError, a 500."""
    before = stored(redis_client, key_prefix)
    answer = post(feed_api, {"increments": [
        {"id": "x4", "msisdn": "0700000001", "amount": 1, "at": at},
        {"id": "x5", "msisdn": "0700000099", "amount": "a", "at": "2026-11-15T10:00:00+00:00"}]})
    assert (answer.status_code, answer.mimetype) == (400, "application/problem+json")
    assert answer.get_json()["errors"] == [
        {"location": "body", "name": "increments.0.at",
         "message": f"{at} is out of range: before year 1 in the operator's time zone"},
        {"location": "body", "name": "increments.1.msisdn",
         "message": "no subscriber +2250700000099"},
        {"location": "body", "name": "increments.1.amount",
         "message": "Input should be a valid integer"}]
    alone = post(feed_api, {"increments": [  # well formed: checked in the view, the same way
        {"id": "x4", "msisdn": "0700000001", "amount": 1, "at": at}]})
    assert (alone.status_code, alone.get_json()["errors"]) == (400, [
        {"location": "body", "name": "increments.0.at",
         "message": f"{at} is out of range: before year 1 in the operator's time zone"}])
    assert stored(redis_client, key_prefix) == before


@pytest.mark.parametrize(("body", "name"), [
    ({}, ""),
    ({"months": [], "increments": []}, ""),
    ({"months": [{"msisdn": ALICE, "month": LAST_MONTH, "amount": -1}]}, "months.0.amount"),
    # Only a JSON integer is an amount: never a boolean, a string or a float, even whole.
    ({"months": [{"msisdn": ALICE, "month": LAST_MONTH, "amount": True}]}, "months.0.amount"),
    ({"months": [{"msisdn": ALICE, "month": LAST_MONTH, "amount": "3000"}]}, "months.0.amount"),
    ({"increments": [{"id": "rc-1", "msisdn": ALICE, "amount": 3000.0,
                      "at": "2026-11-15T09:00:00+00:00"}]}, "increments.0.amount"),
    ({"months": [{"msisdn": ALICE, "month": LAST_MONTH, "amount": 1, "extra": 2}]},
     "months.0.extra"),
    ({"increments": [{"msisdn": ALICE, "amount": 1, "at": "2026-11-15T09:00:00+00:00"}]},
     "increments.0.id"),
    ({"months": [{"msisdn": ALICE, "month": LAST_MONTH, "amount": 1}] * 1001}, "months"),
])
def test_a_malformed_request_is_a_400_naming_the_part(feed_api, body, name):
    answer = post(feed_api, body)
    assert answer.status_code == 400
    assert name in [error["name"] for error in answer.get_json()["errors"]]


@pytest.mark.parametrize(("data", "message"), [
    ('{"months": [', "not a JSON object"),
    ("garbage", "not a JSON object"),
    ("[" * 1500 + "]" * 1500, "not a JSON object"),  # nested deeper than the parser goes
    ("null", "not a JSON object"),
    ("", "no body"),
    ("[]", "Input should be a valid dictionary or instance of ConsumptionRequest"),
], ids=["truncated", "garbage", "nested", "null", "empty", "an empty list"])
def test_a_body_that_is_not_a_json_object_is_named_so(feed_api, redis_client, key_prefix, data,
                                                      message):
    """Said as the migration endpoint says it; before, "give months or increments", the body
    read as {}."""
    before = stored(redis_client, key_prefix)
    answer = feed_api.post("/api/v1/consumption", data=data, content_type="application/json",
                           headers={"Authorization": f"Bearer {BILLING}"})
    assert (answer.status_code, answer.mimetype) == (400, "application/problem+json")
    assert answer.get_json() == {
        "type": "/api/v1/problems/invalid-request", "title": "The request is malformed",
        "status": 400, "detail": f"The request is malformed: body: {message}.",
        "errors": [{"location": "body", "name": "", "message": message}]}
    assert stored(redis_client, key_prefix) == before


def test_only_a_client_with_the_scope_may_feed_consumption(feed_api, store):
    body = {"months": [{"msisdn": ALICE, "month": LAST_MONTH, "amount": 1}]}
    refused = post(feed_api, body, token=PORTAL)
    assert refused.status_code == 403
    assert refused.get_json()["scope"] == "consumption:write"
    assert post(feed_api, body, token="no-such-token-0123456789").status_code == 401
    assert feed_api.post("/api/v1/consumption", json=body).status_code == 401
    assert consumption(store, ALICE) == {LAST_MONTH: 3000}


def test_the_endpoint_is_in_the_openapi_document(feed_api):
    document = feed_api.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/api/v1/consumption"]["post"]
    assert operation["operationId"] == "feedConsumption"
    assert set(operation["responses"]) >= {"200", "400", "401", "403"}
