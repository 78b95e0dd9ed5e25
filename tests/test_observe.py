"""What the service tells its operator (ussd/observe.py, ussd/outcomes.py): JSON log lines that
say what each hop did, an audit line per applied migration that customer care finds by the
subscriber's hash, and never a whole number, a token or a path holding a token, even when a
request fails inside Flask."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import re
from dataclasses import replace

import pytest
from click.testing import CliRunner
from conftest import ALICE, CELINE, NOBODY

from ussd.cli import main
from ussd.logs import JsonLogFormatter, LineHandler
from ussd.observe import without_numbers
from ussd.outcomes import Outcomes
from ussd.session import Session
from ussd.settings import GatewaySecrets
from ussd.web import create_app

TOKEN = "at-token-" + "z" * 24
LOG_KEY = "care-desk-log-key-0123456789"
# Alice's number in any form, and the token, must never be in a line.
NUMBER_DIGITS = re.compile(r"7\D?0\D?0\D?0\D?0\D?0\D?0\D?0\D?[0-9]")


@pytest.fixture
def json_lines(settings):
    """Every line the app's loggers write, as the server writes them in JSON."""
    stream = io.StringIO()
    handler = LineHandler(stream)
    handler.setFormatter(JsonLogFormatter(secrets=(TOKEN, LOG_KEY)))
    logger = logging.getLogger("ussd")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def secured(redis_client, settings, clock, store):
    settings = replace(settings, log_key=LOG_KEY.encode(),
                       gateway_secrets={"africastalking": GatewaySecrets(token=TOKEN)})
    return create_app(settings, redis_client=redis_client, clock=clock)


def at_hop(client, msisdn: str, session: str, text: str):
    return client.post(f"/ussd/africastalking/{TOKEN}", data={
        "sessionId": session, "serviceCode": "*121#", "phoneNumber": msisdn,
        "networkCode": "62303", "text": text})


def care_hash(msisdn: str) -> str:
    return hmac.new(LOG_KEY.encode(), msisdn.encode(), hashlib.sha256).hexdigest()[:20]


def test_json_hop_lines_say_what_happened(secured, json_lines):
    client = secured.test_client()
    for text in ("", "1", "1*9", "1*9*2", "1*9*2*1"):  # Africa's Talking: every input so far
        assert at_hop(client, ALICE, "AT-json-1", text).status_code == 200
    at_hop(client, CELINE, "AT-json-2", "")
    at_hop(client, CELINE, "AT-json-2", "1*2")
    at_hop(client, ALICE, "AT-json-1", "1*9*2*1")  # the gateway's retry
    hops = [line for line in json_lines() if line["logger"] == "ussd.hop"]
    assert [(h["outcome"], h.get("reason"), h["screen"], h["end"]) for h in hops] == [
        ("shown", None, "main", False),
        ("shown", None, "profiles", False),
        ("invalid", None, "profiles", False),
        ("shown", None, "confirm", False),
        ("approved", None, "migrated", True),
        ("shown", None, "main", False),
        ("refused", "insufficient_consumption", "insufficient", False),
        ("replayed", None, "migrated", True),
    ]
    assert {h["subscriber"] for h in hops[:5]} == {care_hash(ALICE)}


def test_the_audit_line_of_a_migration_is_found_by_the_subscriber_hash(secured, json_lines):
    client = secured.test_client()
    for text in ("", "1", "1*2", "1*2*1"):
        at_hop(client, ALICE, "AT-audit", text)
    at_hop(client, CELINE, "AT-other", "")
    # Customer care gets the hash from the number, with the servers' key.
    result = CliRunner().invoke(main, ["log-hash", "07 00 00 00 01"],
                                env={"USSD_LOG_KEY": LOG_KEY})
    assert result.exit_code == 0, result.output
    subscriber = result.stdout.strip()
    found = [line for line in json_lines() if line.get("subscriber") == subscriber]
    # The audit line as the migration is applied, then the hop's own line.
    assert [line["message"] for line in found] == ["hop"] * 3 + ["migration", "hop"]
    audit = found[3]
    assert {key: audit[key] for key in ("logger", "level", "channel", "gateway", "from", "to",
                                        "msisdn")} == {
        "logger": "ussd.audit", "level": "INFO", "channel": "ussd",
        "gateway": "africastalking", "from": "novamix", "to": "tigre",
        "msisdn": "+225*******001"}
    assert re.fullmatch(r"[0-9a-f]{20}", audit["session"])


def test_log_hash_needs_the_key():
    result = CliRunner().invoke(main, ["log-hash", ALICE], env={"USSD_LOG_KEY": ""})
    assert result.exit_code == 1
    assert "USSD_LOG_KEY is not set" in result.output


def test_no_number_no_token_no_path_with_a_token_even_when_flask_fails(secured, json_lines,
                                                                      monkeypatch):
    client = secured.test_client()
    for number in (ALICE, NOBODY):
        at_hop(client, number, "AT-leak", "")
    client.post(f"/ussd/africastalking/{TOKEN}/events", data={
        "sessionId": "AT-leak", "phoneNumber": ALICE, "status": f"odd {ALICE}"})

    def failing(hop):
        raise RuntimeError(f"broken for {hop.msisdn} on /ussd/africastalking/{TOKEN}")

    monkeypatch.setattr(secured.extensions["ussd"], "handle", failing)
    secured.config["PROPAGATE_EXCEPTIONS"] = False  # as served: Flask answers 500 and logs
    # A failure in the gateway view is still the dialect's polite end, logged where it was.
    failed = at_hop(client, ALICE, "AT-fails", "")
    assert (failed.status_code, failed.get_data(as_text=True)) == (
        200, "END Service momentanément indisponible. Merci de réessayer dans quelques minutes.")

    def failing_in_flask():
        raise RuntimeError(f"broken for {ALICE} on /ussd/africastalking/{TOKEN}")

    secured.before_request_funcs.setdefault(None, []).append(failing_in_flask)
    failed = at_hop(client, ALICE, "AT-fails", "")  # a failure inside Flask, around the view
    assert failed.status_code == 500
    lines = json_lines()
    written = json.dumps(lines)
    assert NUMBER_DIGITS.search(written) is None
    assert TOKEN not in written and "zzzzzzzz" not in written
    flask = [line for line in lines if line["message"].startswith("request failed")]
    assert flask == [{**flask[0], "message": "request failed: POST "
                      "/ussd/africastalking/<token>: RuntimeError at "
                      + flask[0]["message"].split(" at ", 1)[1]}]
    assert "exc_info" not in flask[0]
    view = [line for line in lines if line["message"].startswith("unanswered request")]
    assert [line["message"].split(" at ", 1)[0] for line in view] == [
        "unanswered request gateway=africastalking: RuntimeError"]
    assert {line["outcome"] for line in lines if line["logger"] == "ussd.hop"} == {
        "shown", "refused"}


def test_outcomes_are_read_from_the_menu(menu):
    outcomes = Outcomes(menu)
    assert outcomes.refusals == {"same_profile": "same_profile",
                                 "limit_reached": "monthly_limit_reached",
                                 "insufficient": "insufficient_consumption",
                                 "unknown_subscriber": "unknown_subscriber"}
    new = outcomes.of(None, Session(screen="confirm"))
    assert (new.outcome, new.started, new.steps) == ("shown", True,
                                                     ("dial", "list", "confirmation"))
    back = outcomes.of(Session(screen="confirm"), Session(screen="profiles"))
    assert back.steps == ()
    again = outcomes.of(Session(screen="main"), Session(screen="profiles"))
    assert again.steps == ("list",)


def test_a_hop_line_has_no_hash_without_a_key(client, json_lines):
    client.post("/ussd/africastalking", data={
        "sessionId": "AT-nokey", "serviceCode": "*121#", "phoneNumber": ALICE, "text": ""})
    hop = next(line for line in json_lines() if line["logger"] == "ussd.hop")
    assert "subscriber" not in hop and hop["msisdn"] == "+225*******001"





@pytest.mark.parametrize(("text", "logged"), [
    ("unknown Type '+2250700000001'", "unknown Type '<number>'"),
    ("unknown Type '0700000002'", "unknown Type '<number>'"),
    ("unknown Type '225 07 00 00 00 07'", "unknown Type '<number>'"),
    ("unknown Type 'X2250700000004'", "unknown Type '<number>'"),  # a quoted value: whole
    ("unknown Type 'X 07.00.00.00.06'", "unknown Type '<number>'"),
    ("X2250700000004 then X 07.00.00.00.06", "X<number> then X <number>"),  # unquoted
    ("unknown Type '０７００００００05'", "unknown Type '<number>'"),
    ("unknown Type '(07) 00/00-00-09'", "unknown Type '<number>'"),
    ("unknown Type '+225 07\u201300\u201300\u201310'", "unknown Type '<number>'"),
    ("unknown service code '*144*07*12*34*56*78#'", "unknown service code '<number>'"),
    ("unknown Type 'X 07,00,00,00,06'", "unknown Type '<number>'"),
    ("unknown Type \"07_00:00|00·06 isn't\"", "unknown Type '<number>'"),
    ("unknown Type '⁰⁷⁰⁰⁰⁰⁰⁰⁰⁶'", "unknown Type '<number>'"),
    ("unknown service code '*121*1*2#'", "unknown service code '*121*1*2#'"),
    ("HTTP 503 at line 12 after 3 tries in 1.5 s", "HTTP 503 at line 12 after 3 tries in 1.5 s"),
    ("from 10.1.2.3, 404 of 250 000", "from 10.1.2.3, 404 of 250 000"),
])
def test_a_number_is_blanked_however_it_is_written(text, logged):
    assert without_numbers(text) == logged


@pytest.mark.parametrize(("kind", "logged"), [
    ("X 07.00.00.00.06", "unknown Type '<number>'"),
    ("０７００００００05", "unknown Type '<number>'"),
    ("X 07,00,00,00,06", "unknown Type '<number>'"),
])
def test_a_refusal_logs_no_number_in_what_the_caller_sent(client, json_lines, kind, logged):
    """Before, Hubtel's ``unknown Type 'X 07.00.00.00.06'`` was logged as it came."""
    client.post("/ussd/hubtel", json={"Type": kind})
    (line,) = [line for line in json_lines() if line["logger"] == "ussd.gateway"]
    assert line["message"] == f"refused gateway=hubtel msisdn=-: {logged}"


def test_a_service_code_holding_a_number_is_not_logged(client, json_lines):
    client.post("/ussd/africastalking", data={
        "sessionId": "AT-code", "serviceCode": "*144*07*12*34*56*78#", "phoneNumber": ALICE,
        "text": ""})
    (line,) = [line for line in json_lines() if line["logger"] == "ussd.gateway"]
    assert "07*12" not in line["message"] and "'<number>'" in line["message"], line
