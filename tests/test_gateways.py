"""Every gateway dialect plays the same dialogues: one table, three wire formats.

The handsets of ``handsets.py`` check each dialect's exact wire format on every reply;
the table below says what the handset must show, whatever the dialect. Runs on fakeredis and
on a real Redis (the ``client`` fixture).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

import pytest
from conftest import ALICE, CELINE, JOHN, NOBODY, THIS_MONTH
from handsets import GATEWAYS, Screen, flask_response
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ussd.contract import EndKind, Reply
from ussd.rules import Language

DRIVERS = tuple(GATEWAYS.values())
Flares, Hubtel = GATEWAYS["flares"], GATEWAYS["hubtel"]
MAIN = ("Orange #121#\n1. Changer de profil\n2. Mon profil\n3. Conditions de migration"
        "\n4. Language / Langue")
NAV = "0 Retour | 00 Accueil"
PROFILES = ("Choisissez votre nouveau profil:\n1. Novamix (actuel)\n2. Tigre\n3. Dauphin\n"
            f"4. Aigle\n{NAV}")
CONFIRM_TIGRE = (
    "Migration vers Tigre: gratuite. Il vous restera 2 migration(s) ce mois. Vos avantages en "
    f"cours sont conservés.\n1. Confirmer\n2. Annuler\n{NAV}"
)
MIGRATED_TIGRE = (
    "Votre profil est désormais Tigre. Vous gardez vos avantages en cours dans la limite de "
    "leur validité. Migrations restantes ce mois: 2."
)
AIGLE_REFUSED = (
    "Migration vers Aigle impossible: il faut au moins 8.000 F CFA de crédit consommé le mois "
    f"passé. Vous avez consommé 3.000 F CFA.\n{NAV}"
)
TIGRE_REFUSED_CELINE = (
    "Migration vers Tigre impossible: il faut au moins 2.500 F CFA de crédit consommé le mois "
    f"passé. Vous avez consommé 1.200 F CFA.\n{NAV}"
)
CANCELLED = ("Votre demande de changement de profil est annulée. Aucune migration n'a été "
             "décomptée.")
INVALID = "Choix invalide.\n"
TOO_MANY = "Trop de choix invalides. Merci de recomposer #121#."
MY_PROFILE = ("Votre profil: Novamix.\nMigrations restantes ce mois: 3 sur 3.\n"
              f"Crédit consommé le mois passé: 3.000 F CFA.\n{NAV}")
CONDITIONS_1 = (
    "Migration gratuite, 3 maximum par mois.\nNovamix: sans condition\n"
    f"Tigre: au moins 2.500 F CFA consommés le mois passé\n99 Suite\n{NAV}"
)
CONDITIONS_2 = (f"Dauphin: sans condition\nAigle: au moins 8.000 F CFA consommés le mois passé"
                f"\n{NAV}")
UNKNOWN_SUBSCRIBER = (
    "Ce numéro n'est pas reconnu par le service #121#. Contactez le service client."
)
NOT_RECOGNISED = Screen("Demande non reconnue. Merci de composer #121#.", end=True)
NOT_RECOGNISED_EN = Screen("Request not recognised. Please dial #121#.", end=True)


@dataclass(frozen=True)
class Dialogue:
    """A session: who dials what, then each step's inputs and the screen it must show."""

    name: str
    msisdn: str
    code: str
    steps: tuple  # (inputs, text, end): the first step, with no inputs, is the dial
    profile_after: str | None = None


def con(*inputs: str, text: str) -> tuple:
    return inputs, text, False


def end(*inputs: str, text: str) -> tuple:
    return inputs, text, True


DIALOGUES = (
    Dialogue("migration", ALICE, "#121#", (
        con(text=MAIN), con("1", text=PROFILES), con("2", text=CONFIRM_TIGRE),
        end("1", text=MIGRATED_TIGRE),
    ), profile_after="tigre"),
    Dialogue("star-121", ALICE, "*121#", (con(text=MAIN), con("1", text=PROFILES))),
    Dialogue("121*1 starts at the profile list", ALICE, "#121*1#", (
        con(text=PROFILES), con("2", text=CONFIRM_TIGRE), end("1", text=MIGRATED_TIGRE),
    ), profile_after="tigre"),
    Dialogue("121*1*2 decides at once", ALICE, "*121*1*2#", (
        con(text=CONFIRM_TIGRE), end("1", text=MIGRATED_TIGRE),
    ), profile_after="tigre"),
    Dialogue("121*1*4 refused at once, open for another profile", ALICE, "#121*1*4#", (
        con(text=AIGLE_REFUSED), con("0", text=PROFILES), con("2", text=CONFIRM_TIGRE),
    ), profile_after="novamix"),
    Dialogue("chained input", ALICE, "#121#", (
        con(text=MAIN), con("1", "2", text=CONFIRM_TIGRE), end("1", text=MIGRATED_TIGRE),
    ), profile_after="tigre"),
    Dialogue("back and home", ALICE, "#121#", (
        con(text=MAIN), con("1", text=PROFILES), con("2", text=CONFIRM_TIGRE),
        con("0", text=PROFILES), con("0", text=MAIN), con("1", text=PROFILES),
        con("2", text=CONFIRM_TIGRE), con("00", text=MAIN), con("1", text=PROFILES),
    ), profile_after="novamix"),
    Dialogue("cancel", ALICE, "#121#", (
        con(text=MAIN), con("1", "2", text=CONFIRM_TIGRE), end("2", text=CANCELLED),
    ), profile_after="novamix"),
    Dialogue("insufficient consumption, then another profile", CELINE, "#121#", (
        con(text=MAIN), con("1", text=PROFILES), con("2", text=TIGRE_REFUSED_CELINE),
        con("0", text=PROFILES), con("3", text=CONFIRM_TIGRE.replace("Tigre", "Dauphin")),
        end("1", text=MIGRATED_TIGRE.replace("Tigre", "Dauphin")),
    ), profile_after="dauphin"),
    Dialogue("0 and 00 on the main menu", ALICE, "#121#", (
        con(text=MAIN), con("7", text=INVALID + MAIN), con("0", text=MAIN), con("00", text=MAIN),
        con("0", text=MAIN), con("1", text=PROFILES),
    )),
    Dialogue("invalid input, then the polite end", ALICE, "#121#", (
        con(text=MAIN), con("7", text=INVALID + MAIN), con("abc", text=INVALID + MAIN),
        end("9", text=TOO_MANY),
    )),
    Dialogue("my profile", ALICE, "#121#", (
        con(text=MAIN), con("2", text=MY_PROFILE), con("0", text=MAIN),
    )),
    Dialogue("pages", ALICE, "#121#", (
        con(text=MAIN), con("3", text=CONDITIONS_1), con("99", text=CONDITIONS_2),
        con("99", text=INVALID + CONDITIONS_2), con("0", text=CONDITIONS_1), con("0", text=MAIN),
    )),
    Dialogue("english", JOHN, "#121#", (
        con(text="Orange #121#\n1. Change profile\n2. My profile\n3. Migration conditions"
                 "\n4. Language / Langue"),
        con("1", text="Choose your new profile:\n1. Novamix\n2. Tigre\n3. Dauphin\n"
                      "4. Aigle (current)\n0 Back | 00 Home"),
        con("1", text="Migration to Novamix: free. You will have 2 migration(s) left this "
                      "month. Your current benefits are kept.\n1. Confirm\n2. Cancel\n"
                      "0 Back | 00 Home"),
        end("1", text="Your profile is now Novamix. You keep your current benefits within "
                      "their validity. Migrations left this month: 2."),
    ), profile_after="novamix"),
    Dialogue("unknown subscriber", NOBODY, "#121#", (end(text=UNKNOWN_SUBSCRIBER),)),
    Dialogue("local number format", "0700000001", "#121#", (
        con(text=MAIN), con("1", "2", text=CONFIRM_TIGRE), end("1", text=MIGRATED_TIGRE),
    ), profile_after="tigre"),
)


@pytest.fixture(params=DRIVERS, ids=lambda driver: driver.NAME)
def dialect(request, client):
    """``dialect(msisdn, ...)`` opens a session through one dialect; ``.kind`` is its class."""
    driver = request.param

    def open_session(msisdn: str, **options):
        return driver(client, msisdn, **options)

    open_session.kind = driver
    return open_session


def stored(service, msisdn):
    return service.store.admin.describe(msisdn, THIS_MONTH)


def session_key(service, session) -> str:
    return service.store.keys.session(ALICE, session.NAME, session.session_id)


@pytest.mark.parametrize("dialogue", DIALOGUES, ids=lambda dialogue: dialogue.name)
def test_dialogue(dialect, service, dialogue):
    session = dialect(dialogue.msisdn, dial=dialogue.code)
    (_, text, ends), *steps = dialogue.steps
    assert session.dial() == Screen(text, ends)
    for inputs, text, ends in steps:
        assert session.send(*inputs) == Screen(text, ends), inputs
    if dialogue.profile_after is not None:
        msisdn = "+225" + dialogue.msisdn[-10:]
        assert stored(service, msisdn)["profile"] == dialogue.profile_after


MAIN_EN = ("Orange #121#\n1. Change profile\n2. My profile\n3. Migration conditions\n"
           "4. Language / Langue")


def test_the_language_chosen_in_the_menu_is_stored_for_every_channel(dialect, service):
    session = dialect(ALICE)
    session.dial()
    assert session.send("4") == Screen(
        "Langue / Language:\n1. Francais\n2. English\n0 Retour | 00 Accueil", False)
    assert session.send("2") == Screen(
        "Your language is now English. It will be used for #121# and your SMS.\n"
        "0 Back | 00 Home", False)
    assert session.send("00") == Screen(MAIN_EN, False)
    # Stored in the subscriber's hash, where every channel reads it (the API, SMS receipts).
    assert stored(service, ALICE)["language"] == "en"
    subscriber = service.store.hops.load_subscriber(ALICE, THIS_MONTH, "2026-10")
    assert subscriber.language is Language.EN
    assert dialect(ALICE).dial() == Screen(MAIN_EN, False)  # the next session, in English
    assert dialect(ALICE).hop(dialect(ALICE).first_hop(code="*999#")) == NOT_RECOGNISED_EN
    back = dialect(ALICE)
    back.dial()
    back.send("4", "1")  # chained: the list, then French
    assert back.send("00") == Screen(MAIN, False)
    assert stored(service, ALICE)["language"] == "fr"
    assert dialect(ALICE).dial() == Screen(MAIN, False)


def test_the_history_names_the_gateway(dialect, service):
    session = dialect(ALICE)
    session.dial()
    session.send("1", "2")
    session.send("1")
    [entry] = stored(service, ALICE)["history"]
    assert entry["gateway"] == session.NAME
    assert entry["session"] == session.session_id
    assert (entry["from"], entry["to"], entry["channel"]) == ("novamix", "tigre", "ussd")


def test_a_retried_confirm_migrates_once(dialect, service):
    session = dialect(ALICE)
    session.dial()
    session.send("1", "2")
    assert session.send("1") == Screen(MIGRATED_TIGRE, True)
    assert session.retry() == Screen(MIGRATED_TIGRE, True)
    assert session.retry() == Screen(MIGRATED_TIGRE, True)
    record = stored(service, ALICE)
    assert record["migrations_this_month"] == 1
    assert len(record["history"]) == 1


@pytest.mark.parametrize("driver", [d for d in DRIVERS if d.TELLS_RETRIES],
                         ids=lambda driver: driver.NAME)
def test_every_hop_retried_gives_the_same_reply(driver, client):
    session = driver(client, ALICE)
    assert session.dial() == session.retry() == Screen(MAIN, False)
    assert session.send("1") == session.retry() == Screen(PROFILES, False)
    assert session.send("2") == session.retry() == Screen(CONFIRM_TIGRE, False)


def test_a_retried_dial_shows_the_session_where_it_is(client):
    # Flares cannot tell a retried hop; its first hop, the dial, is still recognised.
    session = Flares(client, ALICE)
    first = session.first_hop()
    session.dial()
    session.send("1")
    assert session.hop(first) == Screen(PROFILES, False)


@pytest.mark.parametrize("ending", ["hang_up", "time_out"])
def test_the_gateway_ending_a_session_closes_it_and_changes_no_subscriber(
        dialect, service, ending):
    session = dialect(ALICE)
    session.dial()
    session.send("1", "2")
    key = session_key(service, session)
    assert service.store.redis.exists(key)
    getattr(session, ending)()
    assert not service.store.redis.exists(key)
    record = stored(service, ALICE)
    assert (record["profile"], record["migrations_this_month"]) == ("novamix", 0)


def test_an_ending_for_a_number_we_cannot_read_is_just_acknowledged(dialect):
    dialect("not a number").hang_up()  # the drivers assert the acknowledgement


BROKEN = {
    "a short number": {"number": "12345"},
    "a foreign number": {"number": "+33612345678"},
    "a number with letters": {"number": "0700000001x"},
    "no number": {"number": ""},
    "an unknown service code": {"code": "*999#"},
    "no session id": {"session": ""},
    "an oversized session id": {"session": "s" * 600},
    "oversized input": {"input": "1" * 600},
    "control characters": {"input": "1\x00\x1b"},
}


@pytest.mark.parametrize("broken", BROKEN.values(), ids=BROKEN.keys())
def test_malformed_requests_get_a_clean_end(dialect, service, key_prefix, broken):
    session = dialect(ALICE)
    assert session.hop(session.first_hop(**broken)) == NOT_RECOGNISED
    assert not list(service.store.redis.scan_iter(f"{key_prefix}:*:session:*"))


def test_the_refusal_speaks_the_subscribers_language(dialect):
    session = dialect(JOHN)
    assert session.hop(session.first_hop(code="*999#")) == NOT_RECOGNISED_EN


@pytest.mark.parametrize("code", ["#122#", "*122*1#", "*384*99#"])
def test_a_dial_of_another_services_code_is_refused(dialect, service, key_prefix, code,
                                                    caplog):
    """A gateway misrouting another service's code to us, each sending it as it sends a dial
    (Flares: its bare digits, ``122``, as a typed input could be): refused, never walked as
    inputs from our main menu (``*122*1#`` would open the profile list)."""
    caplog.set_level(logging.INFO)
    session = dialect(ALICE, dial=code)
    assert session.dial() == NOT_RECOGNISED
    assert not list(service.store.redis.scan_iter(f"{key_prefix}:*:session:*"))
    [line] = [r.getMessage() for r in caplog.records if r.name in ("ussd.gateway", "ussd.hop")]
    assert line.startswith(f"refused gateway={session.NAME} msisdn=")
    # Counted as such, and no hop line: never a hop. Flares' bare digits are told apart from
    # an input only by the missing session: said so, not passed off as a code it saw.
    assert (f"no session for input '{code.strip('*#')}': another service's code, or the record "
            "lost" if session.NAME == "flares" else "unknown service code") in line
    assert dialect(JOHN, dial=code).dial() == NOT_RECOGNISED_EN


# --- what only one dialect has ----------------------------------------------------------


@pytest.mark.parametrize("body", [
    b"not json",
    b"[1, 2]",
    b'{"Type": "Bogus"}',
], ids=["not JSON", "not an object", "unknown Type"])
def test_hubtel_bodies_that_are_not_a_request_get_a_release(client, body):
    session = Hubtel(client, ALICE)
    session.last = {}
    assert session.screen(session.request(body)) == NOT_RECOGNISED


@pytest.mark.parametrize("change", [
    {"Message": 1}, {"Mobile": 2250700000001}, {"SessionId": {"id": 1}},
    {"Sequence": "one"}, {"Sequence": -1}, {"Sequence": True}, {"ServiceCode": "999"},
], ids=lambda change: f"{next(iter(change))}={next(iter(change.values()))!r}")
def test_hubtel_fields_that_are_not_text_or_numbers_get_a_release(client, change):
    session = Hubtel(client, ALICE)
    assert session.hop({**session.first_hop(), **change}) == NOT_RECOGNISED


def test_hubtel_echoes_client_state_and_takes_a_sequence_as_text(client):
    session = Hubtel(client, ALICE)
    first = session.first_hop()
    response = session.request({**first, "Sequence": "1", "ClientState": "é-1"})
    assert json.loads(response.get_data(as_text=True)) == {
        "Type": "Response", "Message": MAIN, "ClientState": "é-1"}
    assert response.get_data() == json.dumps(
        {"Type": "Response", "Message": MAIN, "ClientState": "é-1"}, ensure_ascii=False
    ).encode()


def test_hubtel_without_a_sequence_still_walks_the_dialogue(client):
    session = Hubtel(client, ALICE)
    assert session.hop({**session.first_hop(), "Sequence": None}) == Screen(MAIN, False)
    assert session.hop({**session.next_hop(("1",)), "Sequence": None}) == Screen(PROFILES, False)


def test_hubtel_initiation_may_carry_only_the_service_code(client):
    session = Hubtel(client, ALICE)
    assert session.hop({**session.first_hop(), "Message": ""}) == Screen(MAIN, False)


@pytest.mark.parametrize("code", ["121", "*121#", "#121#", "121*1"])
def test_flares_first_hop_is_the_code_with_or_without_its_signs(client, code):
    session = Flares(client, ALICE)
    expected = PROFILES if code.endswith("*1") else MAIN
    assert session.hop(session.first_hop(code=code)) == Screen(expected, False)


@pytest.mark.parametrize("blank", ["", " ", "  "])
def test_flares_a_blank_first_hop_is_the_dial(client, blank):
    """Some platforms send the dial as an empty input (the docstring): blank too."""
    session = Flares(client, ALICE)
    assert session.hop(session.first_hop(code=blank)) == Screen(MAIN, False)


def test_flares_empty_input_is_an_invalid_choice(client):
    session = Flares(client, ALICE)
    session.dial()
    assert session.send("") == Screen(INVALID + MAIN, False)


@pytest.mark.parametrize(("typed", "expected"), [
    ("122", INVALID + MAIN),
    ("384*99", INVALID + MAIN),  # two wrong inputs, walked one by one
    ("122*1", PROFILES),  # a wrong input, then 1
    ("121*1", MAIN),  # our own code: the docstring's exception, the screen shown again
    ("#", INVALID + MAIN),  # a sign alone, or a code with its signs: an input too
    ("*", INVALID + MAIN),
    ("*122#", INVALID + MAIN),
])
def test_flares_an_input_like_a_code_typed_in_a_session_is_an_input(client, typed, expected):
    """Only a hop on a session id we hold no record of is taken for another service's dial:
    typed in a session, digits like a code are inputs."""
    session = Flares(client, ALICE)
    assert session.dial() == Screen(MAIN, False)
    assert session.send(typed) == Screen(expected, False)


@pytest.mark.parametrize("typed", ["*", "**", "*122#", "#"])
def test_flares_a_code_with_its_signs_typed_in_a_session_is_one_wrong_input(client, typed):
    """Not one per ``*``: typed twice, still re-shown (max_invalid 2), and the session goes
    on; a third wrong input ends it politely, as any three would."""
    session = Flares(client, ALICE)
    session.dial()
    assert session.send(typed) == Screen(INVALID + MAIN, False)
    assert session.send(typed) == Screen(INVALID + MAIN, False)
    assert session.send("1") == Screen(PROFILES, False)


@pytest.mark.parametrize("code", ["*", "#", "**", "*122#", " * "])
def test_flares_a_first_hop_of_signs_is_refused_as_another_services(client, service,
                                                                       key_prefix, code):
    session = Flares(client, ALICE)
    assert session.hop(session.first_hop(code=code)) == NOT_RECOGNISED
    assert not list(service.store.redis.scan_iter(f"{key_prefix}:*:session:*"))


def test_flares_a_hop_of_a_session_we_no_longer_hold_is_refused_and_the_redial_resumes(
        client, service, caplog):
    """Our record expired (its TTL) while the gateway kept the session: the hop cannot be told
    from another service's dial (flares.py's docstring), so it is refused; the redial it asks
    for offers the dialogue dropped."""
    session = Flares(client, ALICE)
    session.dial()
    session.send("1")
    service.store.redis.delete(session_key(service, session))  # as its TTL running out does
    caplog.set_level(logging.INFO)
    caplog.clear()  # the lines of this hop only (the dialogue's, at INFO when run after others)
    before = {reason: rejected("flares", reason)
              for reason in ("UnknownSessionError", "UnknownServiceCodeError")}
    assert session.send("2") == NOT_RECOGNISED
    [line] = [r.getMessage() for r in caplog.records if r.name in ("ussd.gateway", "ussd.hop")]
    assert line.endswith("no session for input '2': another service's code, or the record lost")
    # Counted apart from a code a gateway named: lost records do not pass for misrouting.
    assert rejected("flares", "UnknownSessionError") == before["UnknownSessionError"] + 1
    assert rejected("flares", "UnknownServiceCodeError") == before["UnknownServiceCodeError"]
    again = Flares(client, ALICE)
    assert again.dial() == Screen("Reprendre où vous en étiez ?\n1. Oui\n2. Non", False)
    assert again.send("1") == Screen(PROFILES, False)



def test_hubtel_a_response_on_a_session_we_no_longer_hold_is_refused_and_the_redial_resumes(
        client, service):
    """Our record expired while Hubtel kept the session: a ``Response`` carries this hop's
    input alone, so walking it from the main menu would act on a screen never shown (the
    confirmation's ``1`` opening the list); it is refused, and the redial resumes."""
    session = Hubtel(client, ALICE)
    session.dial()
    session.send("1")
    assert session.send("2").text.startswith("Migration vers Tigre")
    service.store.redis.delete(session_key(service, session))  # as its TTL running out does
    before = rejected("hubtel", "UnknownSessionError")
    assert session.send("1") == NOT_RECOGNISED
    assert rejected("hubtel", "UnknownSessionError") == before + 1
    assert stored(service, ALICE)["profile"] == "novamix"  # nothing applied
    again = Hubtel(client, ALICE)
    assert again.dial() == Screen("Reprendre où vous en étiez ?\n1. Oui\n2. Non", False)
    assert again.send("1").text.startswith("Migration vers Tigre")

def rejected(gateway: str, reason: str) -> float:
    """``ussd_rejected_requests_total`` of ``gateway`` and ``reason`` in this process."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("ussd_rejected_requests_total",
                                     {"gateway": gateway, "reason": reason}) or 0.0


def test_flares_abort_of_any_kind_closes_the_session(client, service):
    session = Flares(client, ALICE)
    session.dial()
    key = session_key(service, session)
    session.report_end(abort="something-else")
    assert not service.store.redis.exists(key)


def test_flares_answers_only_get(client):
    assert client.post("/ussd/flares", data={"SessionID": "x"}).status_code == 405


def test_africastalking_events_for_an_unknown_session_are_acknowledged(client):
    response = client.post("/ussd/africastalking/events", data={"status": "Success"})
    assert (response.status_code, response.get_data()) == (200, b"")


# --- each dialect's wire, pinned (the handsets check every answer against the dialect's own
# server half; these say what that server half writes) -----------------------------------

REFUSAL = "Demande non reconnue. Merci de composer #121#."
PINNED = {  # dialect -> (Content-Type, own headers, body) of a screen that continues, one that ends
    "africastalking": ("text/plain; charset=utf-8", ({}, {}), (f"CON {MAIN}", f"END {REFUSAL}")),
    "hubtel": ("application/json", ({}, {}), (
        json.dumps({"Type": "Response", "Message": MAIN, "ClientState": ""}, ensure_ascii=False),
        json.dumps({"Type": "Release", "Message": REFUSAL, "ClientState": ""}, ensure_ascii=False),
    )),
    "flares": ("text/plain; charset=utf-8", (
        {"Freeflow": "FC", "Cache-Control": "no-store"},
        {"Freeflow": "FB", "Cache-Control": "no-store"}), (MAIN, REFUSAL)),
}
ACKNOWLEDGED = {  # dialect -> (Content-Type, body) of the answer to an end report
    "africastalking": ("text/plain; charset=utf-8", ""),
    "hubtel": ("application/json", '{"Type": "Release", "Message": "", "ClientState": ""}'),
    "flares": ("text/plain; charset=utf-8", ""),
}


def pinned(response, content_type: str, headers: dict, body: str) -> None:
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    for name in ("Freeflow", "Cache-Control"):
        assert response.headers.get(name) == headers.get(name)
    assert response.get_data(as_text=True) == body


@pytest.mark.parametrize("name", PINNED)
def test_each_dialects_answers_on_the_wire(client, name):
    gateway = GATEWAYS[name]
    content_type, (going_on, ending), (screen, refusal) = PINNED[name]
    pinned(flask_response(client, gateway.dial("S-pin", ALICE)), content_type, going_on, screen)
    pinned(flask_response(client, gateway.dial("S-pin", "12345")), content_type, ending, refusal)
    acknowledged_type, acknowledgement = ACKNOWLEDGED[name]
    pinned(flask_response(client, gateway.end("S-pin", ALICE)), acknowledged_type, {},
           acknowledgement)


@pytest.mark.parametrize("name", PINNED)
@pytest.mark.parametrize("end", [False, True])
def test_the_client_half_reads_what_the_server_half_writes(name, end):
    dialect = GATEWAYS[name].wire_format
    request = dialect.dial("S1", ALICE, "*121#")
    reply = Reply(MAIN, end)
    assert dialect.read_reply(dialect.wire(reply, request)) == reply


@pytest.mark.parametrize("name", PINNED)
def test_only_the_gateways_that_report_a_completed_session_are_asked_to(name):
    dialect = GATEWAYS[name].wire_format
    reported = dialect.end("S1", ALICE, "*121#", ("1",), EndKind.COMPLETED) is not None
    assert reported == (name == "africastalking")


def test_hubtel_echoes_client_state_on_a_refusal_and_a_release(client):
    session = Hubtel(client, ALICE)
    refused = session.request({**session.first_hop(code="*999#"), "ClientState": "state-7"})
    assert refused.get_data(as_text=True) == json.dumps(
        {"Type": "Release", "Message": REFUSAL, "ClientState": "state-7"}, ensure_ascii=False)
    release = GATEWAYS["hubtel"].end(session.session_id, ALICE).request.json
    released = session.request({**release, "ClientState": "state-8"})
    assert released.get_data(as_text=True) == (
        '{"Type": "Release", "Message": "", "ClientState": "state-8"}')


def test_every_dialect_is_served_at_its_path(app):
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert {"/ussd/africastalking", "/ussd/africastalking/events", "/ussd/hubtel",
            "/ussd/flares"} <= rules


def test_only_the_enabled_dialects_are_served(redis_client, settings, clock, store):
    from dataclasses import replace

    from ussd.web import create_app

    app = create_app(replace(settings, gateways=("hubtel",)), redis_client=redis_client,
                     clock=clock)
    client = app.test_client()
    assert Hubtel(client, ALICE).dial() == Screen(MAIN, False)
    assert client.post("/ussd/africastalking", data={}).status_code == 404
    assert client.get("/ussd/flares").status_code == 404


def test_every_registered_dialect_plays_the_shared_table():
    from ussd.gateways import DIALECTS

    assert tuple(driver.NAME for driver in DRIVERS) == DIALECTS


@pytest.mark.parametrize("module", ["service", "engine"])
def test_the_engine_knows_nothing_of_dialects(module):
    import importlib
    from pathlib import Path

    source = Path(importlib.import_module(f"ussd.{module}").__file__).read_text("utf-8")
    for name in ("africastalking", "hubtel", "flares", "freeflow"):
        assert name not in source.lower()


_MULTIPART = "multipart/form-data; boundary=X"


@pytest.mark.parametrize(("body", "content_type"), [
    (b"sessionId=s1&serviceCode=%2A121%23&phoneNumber=%2B2250700000001&networkCode=62303&"
     b"text=1%2A2", "application/x-www-form-urlencoded"),
    (b"text=&sessionId=a+b&sessionId=second&phoneNumber=0700000001",
     "application/x-www-form-urlencoded"),
    (b"text=%FF%FE&sessionId=%C3%A9t%C3%A9&bare&=empty&a=1;b=2",
     "application/x-www-form-urlencoded"),
    # raw bytes that are not UTF-8: werkzeug gives an empty form
    (b"sessionId=\xff\xfe&text=1", "application/x-www-form-urlencoded"),
    (b"", "application/x-www-form-urlencoded"),
    # Any other body goes through werkzeug's parser, over the bytes read.
    (b'--X\r\nContent-Disposition: form-data; name="text"\r\n\r\n1*2\r\n--X\r\n'
     b'Content-Disposition: form-data; name="f"; filename="f.txt"\r\n'
     b"Content-Type: text/plain\r\n\r\nhello\r\n--X--\r\n", _MULTIPART),
    (b"--X\r\nno end", _MULTIPART),
    (b"sessionId=s1&text=1", "text/plain"),
])
@pytest.mark.parametrize("terminated", [True, False])
def test_the_short_form_read_is_werkzeugs(body, content_type, terminated):
    """The same form as werkzeug's ``request.form``, and the request left as it leaves it for
    whatever reads it next: its files, its stream and its body (before, with a Content-Length,
    ``get_data()`` and the stream raised ClientDisconnected, a 400, after the short read)."""
    from flask import Flask, request

    from ussd.gateways.reading import Bounds, form_of

    app = Flask("forms")
    overrides = {"wsgi.input_terminated": True} if terminated else {}
    with app.test_request_context("/", method="POST", data=body, content_type=content_type,
                                  environ_overrides=overrides):
        expected = request.form
        expected_items = list(expected.items(multi=True))
        expected_after = _after_the_form(request)
    with app.test_request_context("/", method="POST", data=body, content_type=content_type,
                                  environ_overrides=overrides):
        form = form_of(request, Bounds(16384, 60).body(request, time.monotonic()))
        assert list(form.items(multi=True)) == expected_items
        assert type(form) is type(expected)
        assert request.form is form
        assert _after_the_form(request) == expected_after


def _after_the_form(request) -> list:
    """What code after the form can read of the request: its files, its body, its stream (an
    exception as its type)."""
    seen: list = [type(request.files), [
        (name, upload.filename, upload.content_type, upload.read())
        for name, upload in request.files.items(multi=True)]]
    for read in (request.get_data, request.get_data, request.stream.read):
        try:
            seen.append(read())
        except Exception as error:  # noqa: BLE001  (compared, not raised)
            seen.append(type(error))
    return seen


_FORM_TEXT = st.text(st.sampled_from("ab=&+%;*#é 0123456789ABCDEFfx\u00ff\U0001f600"), max_size=60)


@settings(max_examples=3000)
@given(_FORM_TEXT)
@example("a=%FF%FE&b=%C3%A9&c=%&d=%2&e=%zz&=&&f")
@example("text=1%2A2%2A1&x=a+b%2Bc")
def test_the_form_parser_reads_what_parse_qsl_reads(text):
    """Every name and value as werkzeug's parse_qsl reads them: blanks kept, '+' as a space,
    bad escapes kept as they came, invalid UTF-8 escapes as werkzeug quotes them."""
    from urllib.parse import parse_qsl

    from ussd.gateways.reading import parse_form

    expected = parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote")
    assert parse_form(text) == expected
