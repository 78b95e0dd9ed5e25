"""What real gateways send (issue 17): each example a test, each kind fixed across the dialects.

- A dialled extension is walked once, whichever field carries it, and a migration is always
  confirmed on a hop of its own: chained input may reach the confirmation, never confirm it.
- A session id the gateway ended and opens again is a new session; a retry of a live
  session's hop still replays.
- Harmless variations of gateways and their operators are accepted: a field's name in any
  letter case, Hubtel's ``Type`` in any case, an empty first Flares input, the URL's shape.
- The service codes are configuration (``USSD_SERVICE_CODES``).

Every screen is checked as the gateway gets it (``handsets.py``: the dialect's exact wire).
Runs on fakeredis and on a real Redis.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from conftest import ALICE, BRUNO, THIS_MONTH
from handsets import GATEWAYS, Handset, Screen, http_transport, serving

from ussd.contract import chained_once
from ussd.errors import UnknownServiceCodeError
from ussd.gateways.fields import ServiceCodes
from ussd.gateways.paths import canonical_path
from ussd.settings import Settings
from ussd.sim import URLENCODED, urllib_transport
from ussd.web import create_app

AfricasTalking, Hubtel, Flares = (GATEWAYS[name] for name in ("africastalking", "hubtel",
                                                               "flares"))
NAV = "0 Retour | 00 Accueil"
MAIN = Screen("Orange #121#\n1. Changer de profil\n2. Mon profil\n3. Conditions de migration"
              "\n4. Language / Langue", False)
PROFILES_NOVAMIX = Screen("Choisissez votre nouveau profil:\n1. Novamix (actuel)\n2. Tigre\n"
                          f"3. Dauphin\n4. Aigle\n{NAV}", False)
PROFILES_TIGRE = Screen("Choisissez votre nouveau profil:\n1. Novamix\n2. Tigre (actuel)\n"
                        f"3. Dauphin\n4. Aigle\n{NAV}", False)
MY_PROFILE = Screen("Votre profil: Novamix.\nMigrations restantes ce mois: 3 sur 3.\n"
                    f"Crédit consommé le mois passé: 3.000 F CFA.\n{NAV}", False)
CONFIRM_TIGRE = Screen(
    "Migration vers Tigre: gratuite. Il vous restera 2 migration(s) ce mois. Vos avantages en "
    f"cours sont conservés.\n1. Confirmer\n2. Annuler\n{NAV}", False)
CONFIRM_AIGLE_BRUNO = Screen(
    "Migration vers Aigle: gratuite. Il vous restera 2 migration(s) ce mois. Vos avantages en "
    f"cours sont conservés.\n1. Confirmer\n2. Annuler\n{NAV}", False)
MIGRATED_TIGRE = Screen(
    "Votre profil est désormais Tigre. Vous gardez vos avantages en cours dans la limite de "
    "leur validité. Migrations restantes ce mois: 2.", True)
NOT_RECOGNISED = Screen("Demande non reconnue. Merci de composer #121#.", True)


@pytest.fixture(params=list(GATEWAYS.values()), ids=lambda gateway: gateway.name)
def gateway(request):
    return request.param


def stored(service, msisdn):
    record = service.store.admin.describe(msisdn, THIS_MONTH)
    return record["profile"], record["migrations_this_month"], len(record["history"])


def renamed(fields: dict, rename) -> dict:
    """The same fields under other spellings of their names."""
    return {rename(name): value for name, value in fields.items()}


# --- a dialled extension is walked once; a migration is confirmed on its own hop ---------------


def test_africastalking_extension_in_both_fields_is_walked_once(client, service):
    """The issue's example: ``serviceCode=*121*1*4#`` and ``text=1*4`` on the first hop walked
    ``1, 4, 1, 4`` and migrated Bruno to Aigle without a confirmation."""
    phone = AfricasTalking(client, BRUNO, dial="*121*1*4#")
    assert phone.hop({**phone.first_hop(), "text": "1*4"}) == CONFIRM_AIGLE_BRUNO
    assert stored(service, BRUNO) == ("tigre", 0, 0)


# Where each dialect's gateways have been seen to carry the extension of #121*1*4#.
EXTENSION_CARRIERS = {
    "africastalking": [{"serviceCode": "*121*1*4#"}, {"serviceCode": "*121#", "text": "1*4"},
                       {"serviceCode": "*121*1*4#", "text": "1*4"},
                       {"serviceCode": "*121*1#", "text": "1*4"},
                       {"serviceCode": "*121*1*4#", "text": "1"}],
    "hubtel": [{"ServiceCode": "121", "Message": "*121*1*4#"},
               {"ServiceCode": "121*1*4", "Message": "*121*1*4#"},
               {"ServiceCode": "121*1*4", "Message": "*121#"},
               {"ServiceCode": "121*1*4", "Message": ""}],
    "flares": [{"input": "121*1*4"}, {"input": "*121*1*4#"}],
}


@pytest.mark.parametrize(("name", "fields"), [
    (name, fields) for name, variants in EXTENSION_CARRIERS.items() for fields in variants],
    ids=lambda value: value if isinstance(value, str) else "+".join(map(str, value.values())))
def test_the_extension_is_walked_once_whichever_field_carries_it(client, service, name, fields):
    phone = GATEWAYS[name](client, BRUNO)
    assert phone.hop({**phone.first_hop(), **fields}) == CONFIRM_AIGLE_BRUNO
    assert stored(service, BRUNO) == ("tigre", 0, 0)


def test_a_dialled_confirmation_stops_at_the_confirmation_screen(gateway, client, service):
    """The issue's example: ``*121*1*2*1#`` migrated in one hop."""
    phone = gateway(client, ALICE, dial="*121*1*2*1#")
    assert phone.dial() == CONFIRM_TIGRE
    assert stored(service, ALICE) == ("novamix", 0, 0)
    assert phone.send("1") == MIGRATED_TIGRE  # confirmed on a hop of its own
    assert stored(service, ALICE) == ("tigre", 1, 1)


def test_chained_input_typed_on_a_later_hop_never_confirms(gateway, client, service):
    phone = gateway(client, ALICE)
    phone.dial()
    phone.send("1")
    assert phone.send("2", "1") == CONFIRM_TIGRE  # "2*1" in one hop
    assert stored(service, ALICE) == ("novamix", 0, 0)
    assert phone.send("1") == MIGRATED_TIGRE
    assert stored(service, ALICE) == ("tigre", 1, 1)


def test_a_first_hop_holding_the_whole_path_never_confirms(client, service):
    phone = AfricasTalking(client, ALICE)
    assert phone.hop({**phone.first_hop(), "text": "1*2*1"}) == CONFIRM_TIGRE
    assert stored(service, ALICE) == ("novamix", 0, 0)


# --- a session id the gateway ended and opens again is a new session -------------------------


def test_hubtel_initiation_after_a_release_is_a_new_session(client):
    """The issue's example: Initiation, Response "2", Release, then Initiation and Response
    "1" (Sequence 2) on the same SessionId replayed the closed session's screens."""
    first = Hubtel(client, ALICE)
    assert first.dial() == MAIN
    assert first.send("2") == MY_PROFILE
    first.hang_up()  # Release
    again = Hubtel(client, ALICE, session_id=first.session_id)
    assert again.dial() == MAIN
    assert again.send("1") == PROFILES_NOVAMIX  # Sequence 2, as "2" was: not a replay


def test_flares_dialling_again_after_fb_is_a_new_session(client):
    first = Flares(client, ALICE)
    first.dial()
    first.send("1")
    first.send("2")
    assert first.send("1") == MIGRATED_TIGRE  # Freeflow: FB
    again = Flares(client, ALICE, session_id=first.session_id)
    assert again.dial() == MAIN
    assert again.send("1") == PROFILES_TIGRE


def test_flares_dialling_again_after_an_abort_is_a_new_session(client):
    first = Flares(client, ALICE)
    first.dial()
    assert first.send("2") == MY_PROFILE
    first.hang_up()  # abort=clean
    again = Flares(client, ALICE, session_id=first.session_id)
    assert again.dial() == MAIN
    assert again.send("1") == PROFILES_NOVAMIX


def test_africastalking_dialling_again_after_its_end_report_is_a_new_session(client):
    first = AfricasTalking(client, ALICE)
    first.dial()
    first.send("1")
    first.send("2")
    assert first.send("1") == MIGRATED_TIGRE
    first.report_end(status="Success")  # the gateway says the session is over
    again = AfricasTalking(client, ALICE, session_id=first.session_id)
    assert again.dial() == MAIN  # text "" again: a dial, unambiguous
    assert again.send("1") == PROFILES_TIGRE


@pytest.mark.parametrize("name", ["africastalking", "hubtel"])
def test_a_retried_dial_of_a_live_session_still_replays(client, service, name):
    phone = GATEWAYS[name](client, ALICE)
    phone.dial()
    assert phone.send("2") == MY_PROFILE
    assert phone.replay(0) == MAIN  # the dial again, the session live: its first reply
    assert phone.replay(1) == MY_PROFILE
    assert phone.send("0") == MAIN  # the session went on from where it was


@pytest.mark.parametrize("name", ["africastalking", "hubtel"])
def test_a_retried_dial_after_our_end_replays_where_hops_are_numbered(client, service, name):
    # Africa's Talking and Hubtel may be retrying the dial of a session our END closed, and
    # have not said it is over: answered from the record, nothing walked again.
    phone = GATEWAYS[name](client, ALICE)
    phone.dial()
    phone.send("1")
    phone.send("2")
    assert phone.send("1") == MIGRATED_TIGRE
    assert phone.replay(0) == MAIN
    assert phone.replay(3) == MIGRATED_TIGRE
    assert stored(service, ALICE) == ("tigre", 1, 1)


# --- harmless variations are accepted --------------------------------------------------------


SPELLINGS = {
    "lower case": str.lower,
    "upper case": str.upper,
    "camelCase": lambda name: name[0].lower() + name[1:],
    "PascalCase": lambda name: name[0].upper() + name[1:],
    "...ID": lambda name: name[:-2] + "ID" if name.lower().endswith("id") else name,
}


def respellings():
    """(dialect, spelling) for every spelling that changes a name the dialect's gateway sends."""
    for gateway in GATEWAYS.values():
        names = gateway.fields(gateway.wire_format.dial("S", ALICE, "*121#"))
        for spelling, rename in SPELLINGS.items():
            if any(rename(name) != name for name in names):
                yield pytest.param(gateway, rename, id=f"{gateway.name}-{spelling}")


@pytest.mark.parametrize(("speaker", "rename"), list(respellings()))
def test_field_names_in_any_letter_case(client, speaker, rename):
    phone = speaker(client, ALICE)
    assert phone.hop(renamed(phone.first_hop(), rename)) == MAIN
    assert phone.hop(renamed(phone.next_hop(("1",)), rename)) == PROFILES_NOVAMIX


@pytest.mark.parametrize(("initiation", "response"), [
    ("initiation", "response"), ("INITIATION", "RESPONSE"), ("iNiTiAtIoN", "rEsPoNsE")])
def test_hubtel_type_in_any_letter_case(client, initiation, response):
    phone = Hubtel(client, ALICE)
    assert phone.hop({**phone.first_hop(), "Type": initiation}) == MAIN
    assert phone.hop({**phone.next_hop(("1",)), "Type": response}) == PROFILES_NOVAMIX


@pytest.mark.parametrize("kind", ["release", "RELEASE", "timeout"])
def test_hubtel_endings_in_any_letter_case_close_the_session(client, service, kind):
    phone = Hubtel(client, ALICE)
    phone.dial()
    key = service.store.keys.session(ALICE, "hubtel", phone.session_id)
    assert service.store.redis.exists(key)
    phone.report_end(Type=kind)
    assert not service.store.redis.exists(key)


@pytest.mark.parametrize("fields", [{"input": ""}, {"input": None}],
                         ids=["empty input", "no input"])
def test_flares_first_hop_without_input_shows_the_plain_main_menu(client, fields):
    """The issue's example: an empty first ``input`` showed "Choix invalide." above the main
    menu although the subscriber typed nothing."""
    phone = Flares(client, ALICE)
    sent = {**phone.first_hop(), **fields}
    assert phone.hop({name: value for name, value in sent.items() if value is not None}) == MAIN
    assert phone.hop(phone.next_hop(("1",))) == PROFILES_NOVAMIX


def test_flares_empty_input_later_is_still_an_invalid_choice(client):
    phone = Flares(client, ALICE)
    phone.dial()
    assert phone.send("") == Screen("Choix invalide.\n" + MAIN.text, False)


URL_SHAPES = {
    "a trailing slash": "/ussd/{name}/",
    "a doubled slash": "/ussd//{name}",
    "slashes everywhere": "//ussd//{name}//",
    "the dialect capitalised": "/ussd/{capitalised}",
    "USSD in capitals": "/USSD/{name}",
}


@pytest.fixture(scope="module")
def served():
    """One app served over real HTTP on loopback for the URL shapes: the request line goes
    out as typed (the Flask test client would read ``//ussd`` as a host name)."""
    import fakeredis
    from conftest import NOW, seed_subscribers

    client = fakeredis.FakeRedis(decode_responses=True)
    app = create_app(Settings(key_prefix="shapes"), redis_client=client, clock=lambda: NOW)
    seed_subscribers(app.extensions["ussd"].store)
    with serving(app) as url:
        yield url, app.extensions["ussd"]


@pytest.mark.parametrize("shape", URL_SHAPES.values(), ids=URL_SHAPES.keys())
def test_the_urls_an_operator_types_reach_the_gateway_endpoint(served, shape):
    url, _ = served
    for gateway in GATEWAYS.values():
        path = shape.format(name=gateway.name, capitalised=gateway.name.capitalize())
        phone = Handset(http_transport(url), gateway, ALICE, path=path)
        assert phone.dial() == MAIN, gateway
        assert phone.send("2") == MY_PROFILE, gateway
        assert phone.send("0") == MAIN, gateway  # home: nothing left to resume on a redial


def test_africastalking_events_url_in_another_shape_closes_the_session(served):
    url, service = served
    phone = Handset(http_transport(url), AfricasTalking, ALICE, path="/ussd/AfricasTalking/")
    phone.dial()
    key = service.store.keys.session(ALICE, "africastalking", phone.session_id)
    assert service.store.redis.exists(key)
    answer = http_post(url + "//ussd/africastalking/Events/", {
        "sessionId": phone.session_id, "phoneNumber": ALICE, "status": "Success"})
    assert (answer.status, answer.body) == (200, "")
    assert not service.store.redis.exists(key)


@pytest.mark.parametrize("path", ["/ussd/", "/ussd/nokia", "//ussd//nokia/", "/USSD"])
def test_a_path_that_names_no_dialect_is_still_not_found(served, path):
    url, _ = served
    assert http_post(url + path, {}).status == 404


def http_post(url: str, form: dict):
    return urllib_transport()("POST", url, {"Content-Type": URLENCODED},
                              urlencode(form).encode())


# --- the service codes are configuration -----------------------------------------------------


@pytest.fixture
def sandbox(redis_client, key_prefix, clock, store):
    """The app answering Africa's Talking's sandbox code as well as #121#."""
    settings = Settings(key_prefix=key_prefix, service_codes=("*384*1234#", "*121#"))
    return create_app(settings, redis_client=redis_client, clock=clock).test_client()


def test_a_sandbox_code_is_answered_with_its_extensions(gateway, sandbox):
    assert gateway(sandbox, ALICE, dial="*384*1234#").dial() == MAIN
    assert gateway(sandbox, ALICE, dial="#121#").dial() == MAIN
    phone = gateway(sandbox, ALICE, dial="*384*1234*1#")
    assert phone.dial() == PROFILES_NOVAMIX
    assert phone.send("2") == CONFIRM_TIGRE


def test_the_default_codes_do_not_answer_a_sandbox_code(gateway, client):
    phone = gateway(client, ALICE)
    assert phone.hop(phone.first_hop(code="*384*1234#")) == NOT_RECOGNISED


def test_a_code_left_out_of_the_list_is_refused(gateway, redis_client, key_prefix, clock, store):
    settings = Settings(key_prefix=key_prefix, service_codes=("*384*1234#",))
    client = create_app(settings, redis_client=redis_client, clock=clock).test_client()
    phone = gateway(client, ALICE)
    assert phone.hop(phone.first_hop(code="*121#")) == NOT_RECOGNISED
    assert gateway(client, ALICE, dial="*384*1234#").dial() == MAIN



# --- the pieces: service codes, the extension once, the URL made canonical --------------------


@pytest.mark.parametrize(("dialled", "chained"), [
    ("*384*1234#", ()), ("384*1234", ()), ("*384*1234*5*2#", ("5", "2")),
    ("*384*5#", ("5",)), ("#121*1#", ("1",)), (" *121# ", ()),
])
def test_service_codes_split_a_dialled_code_longest_code_first(dialled, chained):
    codes = ServiceCodes(["*121#", "*384#", "*384*1234#"])
    assert codes.split(dialled) == chained


@pytest.mark.parametrize("dialled", ["*999#", "*3841234#", "*121*abc#", "", "*121**1#"])
def test_service_codes_refuse_what_they_do_not_answer(dialled):
    with pytest.raises(UnknownServiceCodeError):
        ServiceCodes(["*121#", "*384*1234#"]).split(dialled)


def test_service_codes_name_the_base_of_a_dialled_code():
    codes = ServiceCodes(["*121#", "*384*1234#"])
    assert [codes.base(code) for code in ("*121*1#", "*384*1234*2#", "*999*1#")] == [
        "121", "384*1234", "999*1"]


@pytest.mark.parametrize(("first", "second", "walked"), [
    ((), ("1", "4"), ("1", "4")),
    (("1", "4"), (), ("1", "4")),
    (("1", "4"), ("1", "4"), ("1", "4")),
    (("1",), ("1", "4"), ("1", "4")),
    (("1", "4"), ("1",), ("1", "4")),
    (("1",), ("2",), ("1", "2")),
])
def test_the_extension_in_two_fields_is_walked_once(first, second, walked):
    assert chained_once(first, second) == walked


@pytest.mark.parametrize(("path", "canonical"), [
    ("/ussd/hubtel", "/ussd/hubtel"),
    ("/ussd/hubtel/", "/ussd/hubtel"),
    ("//ussd//Hubtel//", "/ussd/hubtel"),
    ("/USSD/AfricasTalking/Token-Case-Kept/Events/", "/ussd/africastalking/Token-Case-Kept/events"),
    ("/ussd/nokia/", "/ussd/nokia/"),  # not ours: left for the router's 404
    ("/healthz", "/healthz"),
])
def test_a_gateway_path_made_canonical(path, canonical):
    assert canonical_path(path) == canonical


def test_end_words_in_another_case_are_counted_under_their_own_spelling(client):
    """A status in any case is the dialect's word: its metrics series, not "other"."""
    phone = AfricasTalking(client, ALICE)
    phone.dial()
    before = client.get("/metrics").get_data(as_text=True)
    phone.report_end(status="INCOMPLETE")
    after = client.get("/metrics").get_data(as_text=True)

    def count(text: str) -> float:
        found = re.search(r'ussd_session_end_notifications_total\{gateway="africastalking",'
                          r'status="Incomplete"\} ([0-9.]+)', text)
        return float(found.group(1)) if found else 0.0

    assert count(after) - count(before) == 1
