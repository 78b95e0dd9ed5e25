"""The Flask shell (ussd/web.py): health, readiness, metrics, a malformed query string, and
the JSON request bodies are read with."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from conftest import ALICE, BRUNO, CELINE

from ussd.web import create_app


def counter(client, name: str, **labels: str) -> float:
    """The value of one series of ``/metrics`` (0 when it is not there yet)."""
    text = client.get("/metrics").get_data(as_text=True)
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    match = re.search(rf"^{name}\{{{re.escape(wanted)}\}} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_health_and_readiness_answer_json(client):
    health = client.get("/healthz")
    assert (health.status_code, health.get_json()) == (200, {"status": "ok"})
    ready = client.get("/readyz")
    assert (ready.status_code, ready.get_json()) == (200, {"status": "ready"})


def test_metrics_count_each_hop_by_what_it_did(client, dialler):
    hops = (("shown", ""), ("approved", ""), ("invalid", ""),
            ("refused", "insufficient_consumption"))

    def counts():
        return {key: counter(client, "ussd_hops_total", gateway="africastalking",
                             outcome=key[0], reason=key[1]) for key in hops}

    before = counts()
    session = dialler(ALICE)
    session.dial()
    session.send("1")
    session.send("9")  # not a choice: the list again, with "Choix invalide."
    session.send("2")
    session.send("1")  # confirmed: the success screen ends the session
    refused = dialler(CELINE)
    refused.dial()
    refused.send("1")
    refused.send("2")  # Tigre, with 1.200 F CFA consumed: refused
    after = counts()
    assert {key: after[key] - before[key] for key in hops} == {
        ("shown", ""): 5, ("approved", ""): 1, ("invalid", ""): 1,
        ("refused", "insufficient_consumption"): 1}


def test_metrics_follow_sessions_and_the_funnel(client, dialler):
    def figures():
        return (counter(client, "ussd_sessions_started_total", gateway="africastalking"),
                counter(client, "ussd_sessions_ended_total", gateway="africastalking",
                        how="completed"),
                *(counter(client, "ussd_funnel_total", step=step)
                  for step in ("dial", "list", "confirmation", "result")),
                counter(client, "ussd_migrations_total", channel="ussd", target="tigre"))

    before = figures()
    walked = dialler(ALICE)
    walked.dial()
    walked.send("1", "2")  # chained: the list and the confirmation in one hop
    walked.send("1")
    walked.post("1*2*1")  # the gateway's retry of the last hop: counted once
    browsing = dialler(BRUNO)
    browsing.dial()
    browsing.send("2")  # "my profile": no step of the funnel
    after = figures()
    assert tuple(a - b for a, b in zip(after, before, strict=True)) == (2, 1, 2, 1, 1, 1, 1)


def test_metrics_time_each_redis_call_by_operation(client, dialler):
    def count(operation):
        return counter(client, "ussd_redis_seconds_count", operation=operation)

    before = {operation: count(operation) for operation in ("read", "save", "migrate")}
    session = dialler(ALICE)
    session.dial()
    session.send("1")
    session.send("2")
    session.send("1")
    after = {operation: count(operation) for operation in before}
    assert {op: after[op] - before[op] for op in before} == {"read": 4, "save": 3, "migrate": 1}


def test_metrics_are_plain_prometheus_text_without_created_series(client, dialler):
    dialler(ALICE).dial()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=1.0.0; charset=utf-8"
    text = response.get_data(as_text=True)
    assert "# TYPE ussd_hops_total counter" in text
    assert "_created" not in text


def test_an_unknown_end_status_is_counted_as_other(client, dialler):
    def statuses():
        return {status: counter(client, "ussd_session_end_notifications_total",
                                gateway="africastalking", status=status)
                for status in ("other", "Incomplete")}

    before = statuses()
    for n in range(50):  # 50 statuses never seen: one series, "other"
        response = client.post("/ussd/africastalking/events", data={
            "sessionId": f"AT-gone-{n}", "phoneNumber": ALICE, "status": f"Weird{n}"})
        assert response.status_code == 200
    client.post("/ussd/africastalking/events", data={
        "sessionId": "AT-gone", "phoneNumber": ALICE, "status": "Incomplete"})
    after = statuses()
    assert {key: after[key] - before[key] for key in after} == {"other": 50, "Incomplete": 1}
    text = client.get("/metrics").get_data(as_text=True)
    assert "Weird" not in text


def test_a_hang_up_ends_a_live_session_and_is_counted_so(client, dialler):
    def ended(how):
        return counter(client, "ussd_sessions_ended_total", gateway="africastalking", how=how)

    before = ended("abandoned"), ended("completed")
    session = dialler(ALICE)
    session.dial()
    client.post("/ussd/africastalking/events", data={
        "sessionId": session.session_id, "phoneNumber": ALICE, "status": "Incomplete"})
    done = dialler(BRUNO)
    done.dial()
    done.send("1", "4")
    done.send("1")  # Aigle, confirmed: the service ends it...
    client.post("/ussd/africastalking/events", data={  # ...and the gateway says "Success"
        "sessionId": done.session_id, "phoneNumber": BRUNO, "status": "Success"})
    assert (ended("abandoned") - before[0], ended("completed") - before[1]) == (1, 1)


def test_metrics_move_off_the_gateways_port_when_they_have_their_own(redis_client, settings,
                                                                      clock, store):
    app = create_app(replace(settings, metrics_port=9100), redis_client=redis_client,
                     clock=clock)
    assert app.test_client().get("/metrics").status_code == 404


def test_a_query_string_of_raw_bytes_reaches_the_dialect_as_text(client):
    # A stray non-ASCII byte in a GET hop's query is an input like any other (not the
    # dialled code, so a wrong choice), never a 500 from werkzeug's strict UTF-8 decoding.
    # Typed in a session: on a session id we hold nothing of, an input that is not our code
    # is another service's dial, refused (flares.py's docstring).
    assert client.get("/ussd/flares", query_string={
        "SessionID": "s1", "MSISDN": ALICE, "input": "121"}).headers["Freeflow"] == "FC"
    response = client.get("/ussd/flares", environ_overrides={
        "QUERY_STRING": f"SessionID=s1&MSISDN=%2B{ALICE[1:]}&input=\xff"})
    assert (response.status_code, response.headers["Freeflow"]) == (200, "FC")
    assert response.get_data(as_text=True) == (
        "Choix invalide.\nOrange #121#\n1. Changer de profil\n2. Mon profil\n"
        "3. Conditions de migration"
        "\n4. Language / Langue")


@pytest.mark.parametrize("text", [
    b'{"profile": "Tigre"}', '{"a": [1, {"b": null}], "c": "\u00e9"}'.encode("utf-16"),
    b'\xef\xbb\xbf{"a": 1}', '{"a": 2.5, "b": "\u00e9", "c": [true, false]}', b"[]",
    b'"x"', b'{"a": {"a": {"a": 1}}}', b'[{"a": 1}, {"a": 1}]',
])
def test_the_apps_json_reads_a_body_as_the_standard_library_does(client, text):
    assert client.application.json.loads(text) == json.loads(text)


@pytest.mark.parametrize("text", [
    b'{"profile": "Tigre", "profile": "Dauphin"}', b'{"a": 1, "a": 1}',
    b'[{"b": {"c": 1, "c": 2}}]', '{"a": 1, "\\u0061": 2}', b'{"a": 1, "b": 2, "a": 3}',
])
def test_the_apps_json_refuses_a_member_name_given_twice(client, text):
    """Not read as its last value: the API's bodies are read through it (a 400 problem)."""
    with pytest.raises(ValueError, match="given more than once"):
        client.application.json.loads(text)


NESTED = "[" * 1500 + "]" * 1500  # 3 KB, deeper than the JSON parser goes


def test_json_nested_deeper_than_the_parser_goes_is_malformed_not_a_500(client):
    # Hubtel: the body, or a field of an otherwise good Initiation, is the polite end.
    initiation = ('{"Type": "Initiation", "Mobile": "0700000001", "SessionId": "s1", '
                  '"ServiceCode": "*121#", "Message": "*121#", "Sequence": 1, '
                  f'"ClientState": {NESTED}}}')
    for body in (NESTED, initiation):
        response = client.post("/ussd/hubtel", data=body, content_type="application/json")
        assert (response.status_code, response.get_json()) == (200, {
            "Type": "Release", "Message": "Demande non reconnue. Merci de composer #121#.",
            "ClientState": ""})


def test_the_simulator_reads_nested_json_as_a_bad_move():
    from ussd.settings import Settings
    from ussd.web import create_app

    response = create_app(Settings(demo=True)).test_client().post(
        "/simulator/api/move", data=NESTED, content_type="application/json")
    assert (response.status_code, response.get_json()) == (
        400, {"error": "a move is a JSON object"})
