"""Sessions that survive a drop (ussd/resume.py), in every dialect, on fakeredis and a real Redis.

A dialogue broken before its result (the gateway's time-out or network failure, or our TTL),
redialled by the same number within ``USSD_RESUME_WINDOW``, opens with "Reprendre où vous en
étiez ?": ``1`` resumes at the same screen with the same choices, ``2`` starts afresh. An end
the subscriber chose, or a dialogue that reached an ``END``, is not resumed; resuming applies
nothing by itself. Every screen is checked as the gateway gets it (``handsets.py``).
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from conftest import ALICE, BRUNO, CELINE, JOHN, LAST_MONTH, THIS_MONTH
from handsets import GATEWAYS, Screen

from ussd.resume import opening, resumable
from ussd.rules import Channel, Language, Policy, Profile, Standing
from ussd.session import Session, Shown
from ussd.web import create_app

NAV = "0 Retour | 00 Accueil"
MAIN = Screen("Orange #121#\n1. Changer de profil\n2. Mon profil\n3. Conditions de migration"
              "\n4. Language / Langue", False)
RESUME = Screen("Reprendre où vous en étiez ?\n1. Oui\n2. Non", False)
RESUME_EN = Screen("Resume where you left off?\n1. Yes\n2. No", False)
PROFILES = Screen("Choisissez votre nouveau profil:\n1. Novamix (actuel)\n2. Tigre\n3. Dauphin\n"
                  f"4. Aigle\n{NAV}", False)
CONFIRM_TIGRE = Screen(
    "Migration vers Tigre: gratuite. Il vous restera 2 migration(s) ce mois. Vos avantages en "
    f"cours sont conservés.\n1. Confirmer\n2. Annuler\n{NAV}", False)
MIGRATED_TIGRE = Screen(
    "Votre profil est désormais Tigre. Vous gardez vos avantages en cours dans la limite de "
    "leur validité. Migrations restantes ce mois: 2.", True)
MY_PROFILE = Screen("Votre profil: Novamix.\nMigrations restantes ce mois: 3 sur 3.\n"
                    f"Crédit consommé le mois passé: 3.000 F CFA.\n{NAV}", False)
LIMIT_REACHED = Screen("Vous avez déjà effectué vos 3 migrations de ce mois. Réessayez le mois "
                       "prochain.", True)
ALREADY_TIGRE = Screen("Vous avez déjà le profil Tigre. Aucune migration n'a été décomptée.\n"
                       f"{NAV}", False)
# The ends a gateway reports as a drop, as each dialect's client half sends them.
DROPS = {"africastalking": ("time_out", "hang_up"), "hubtel": ("time_out",),
         "flares": ("time_out",)}
CHOSEN_ENDS = {"hubtel": "hang_up", "flares": "hang_up"}  # Release, abort=clean


@pytest.fixture(params=list(GATEWAYS.values()), ids=lambda gateway: gateway.name)
def gateway(request):
    return request.param


def stored(service, msisdn=ALICE):
    record = service.store.admin.describe(msisdn, THIS_MONTH)
    return record["profile"], record["migrations_this_month"], len(record["history"])


def dropped_at_confirmation(gateway, client, ending="time_out", msisdn=ALICE):
    phone = gateway(client, msisdn)
    assert phone.dial() == MAIN
    phone.send("1")
    assert phone.send("2") == CONFIRM_TIGRE
    getattr(phone, ending)()  # the gateway reports the drop
    return phone


# --- resumed on a redial -------------------------------------------------------------------


@pytest.mark.parametrize(("dropping", "ending"), [
    pytest.param(GATEWAYS[name], ending, id=f"{name}-{ending}")
    for name, endings in DROPS.items() for ending in endings])
def test_a_session_dropped_at_the_confirmation_is_resumed_on_redial(dropping, client, service,
                                                                     ending):
    gateway = dropping
    dropped_at_confirmation(gateway, client, ending)
    assert stored(service) == ("novamix", 0, 0)
    again = gateway(client, ALICE)  # a new session: another id, the same number
    assert again.dial() == RESUME
    assert again.send("1") == CONFIRM_TIGRE  # the same screen, the same choices
    assert stored(service) == ("novamix", 0, 0)  # resuming applied nothing
    assert again.send("1") == MIGRATED_TIGRE  # confirmed on a hop of its own
    assert stored(service) == ("tigre", 1, 1)
    [entry] = service.store.admin.describe(ALICE, THIS_MONTH)["history"]
    assert (entry["gateway"], entry["session"]) == (gateway.name, again.session_id)


def test_the_way_back_is_resumed_too(gateway, client):
    dropped_at_confirmation(gateway, client)
    again = gateway(client, ALICE)
    again.dial()
    again.send("1")
    assert again.send("0") == PROFILES
    assert again.send("0") == MAIN


def test_a_long_screen_is_resumed_on_the_page_it_was_on(gateway, client):
    phone = gateway(client, ALICE)
    phone.dial()
    first = phone.send("3")  # the conditions: two pages
    assert first.text.endswith("\n99 Suite\n" + NAV) and not first.end
    second = phone.send("99")
    assert second != first and not second.end
    phone.time_out()
    again = gateway(client, ALICE)
    assert again.dial() == RESUME
    assert again.send("1") == second
    assert again.send("0") == first  # page 1, as 0 on page 2 always goes

def test_2_starts_afresh_and_the_dropped_dialogue_is_forgotten(gateway, client, service):
    dropped_at_confirmation(gateway, client)
    again = gateway(client, ALICE)
    assert again.dial() == RESUME
    assert again.send("2") == MAIN
    assert again.send("2") == MY_PROFILE
    assert stored(service) == ("novamix", 0, 0)
    again.send("0")  # home: nothing left to offer
    assert gateway(client, ALICE).dial() == MAIN


def test_a_session_our_ttl_ended_is_resumed(gateway, client, service):
    """No report from the gateway: the record simply expires (here: deleted, as Redis does
    when its TTL runs out)."""
    phone = gateway(client, ALICE)
    phone.dial()
    phone.send("2")
    service.store.redis.delete(service.store.keys.session(ALICE, gateway.name,
                                                          phone.session_id))
    again = gateway(client, ALICE)
    assert again.dial() == RESUME
    assert again.send("1") == MY_PROFILE
    assert again.send("0") == MAIN


def test_the_prompt_speaks_the_subscribers_language(gateway, client):
    phone = gateway(client, JOHN)
    phone.dial()
    phone.send("2")
    phone.time_out()
    again = gateway(client, JOHN)
    assert again.dial() == RESUME_EN
    assert again.send("1").text.startswith("Your profile: Aigle.")


def test_the_prompt_itself_handles_wrong_inputs_and_home(gateway, client):
    dropped_at_confirmation(gateway, client)
    again = gateway(client, ALICE)
    again.dial()
    assert again.send("7") == Screen("Choix invalide.\n" + RESUME.text, False)
    assert again.send("00") == MAIN  # home: afresh


def test_a_drop_at_the_prompt_offers_the_same_dialogue_again(gateway, client, service):
    dropped_at_confirmation(gateway, client)
    second = gateway(client, ALICE)
    assert second.dial() == RESUME
    second.time_out()
    third = gateway(client, ALICE)
    assert third.dial() == RESUME
    assert third.send("1") == CONFIRM_TIGRE


# --- never past a result, never by itself ----------------------------------------------------


def test_a_dialogue_that_reached_its_end_is_not_resumed(gateway, client, service):
    phone = gateway(client, ALICE)
    phone.dial()
    phone.send("1")
    phone.send("2")
    assert phone.send("1") == MIGRATED_TIGRE
    assert gateway(client, ALICE).dial() == MAIN


def test_the_monthly_cap_reached_from_the_list_is_not_resumed(gateway, client, service):
    """A refusal no profile lifts ends the dialogue: nothing is kept, though the list that
    asked was shown by the hop before."""
    for target in (Profile.DAUPHIN, Profile.NOVAMIX, Profile.DAUPHIN):
        assert service.migrate(ALICE, target, Channel.WEB).approved
    phone = gateway(client, ALICE)
    phone.dial()
    phone.send("1")
    assert phone.send("2") == LIMIT_REACHED
    assert gateway(client, ALICE).dial() == MAIN


def test_a_cancelled_request_is_not_resumed(gateway, client):
    phone = gateway(client, ALICE)
    phone.dial()
    phone.send("1")
    phone.send("2")
    assert phone.send("2").end  # Annuler
    assert gateway(client, ALICE).dial() == MAIN


@pytest.mark.parametrize("name", sorted(CHOSEN_ENDS))
def test_an_end_the_subscriber_chose_is_not_resumed(client, name):
    dropped_at_confirmation(GATEWAYS[name], client, CHOSEN_ENDS[name])  # Release, abort=clean
    assert GATEWAYS[name](client, ALICE).dial() == MAIN


def test_africastalking_success_is_an_end_not_a_drop(client):
    phone = GATEWAYS["africastalking"](client, ALICE)
    phone.dial()
    phone.send("2")
    phone.report_end(status="Success")
    assert GATEWAYS["africastalking"](client, ALICE).dial() == MAIN


def test_a_confirmation_resumed_shows_the_migrations_left_now(gateway, client, service):
    dropped_at_confirmation(gateway, client)  # "Il vous restera 2 migration(s)"
    # Meanwhile the subscriber migrated to Dauphin through the web customer area.
    assert service.migrate(ALICE, Profile.DAUPHIN, Channel.WEB).approved
    again = gateway(client, ALICE)
    assert again.dial() == RESUME
    assert again.send("1") == Screen(CONFIRM_TIGRE.text.replace("restera 2", "restera 1"),
                                     False)  # the figure of this moment, not the one left
    assert again.send("1") == Screen(MIGRATED_TIGRE.text.replace("ce mois: 2.", "ce mois: 1."),
                                     True)
    assert stored(service) == ("tigre", 2, 2)


def test_a_confirmation_resumed_after_the_cap_was_reached_ends_as_a_fresh_choice_would(
        gateway, client, service):
    dropped_at_confirmation(gateway, client)
    # Meanwhile the subscriber made the month's 3 migrations through other channels.
    for target in (Profile.DAUPHIN, Profile.NOVAMIX, Profile.DAUPHIN):
        assert service.migrate(ALICE, target, Channel.WEB).approved
    again = gateway(client, ALICE)
    assert again.dial() == RESUME
    assert again.send("1") == LIMIT_REACHED  # what choosing Tigre on the list shows now
    assert stored(service) == ("dauphin", 3, 3)
    assert gateway(client, ALICE).dial() == MAIN  # a refusal no profile lifts: nothing kept


def test_a_confirmation_resumed_is_decided_again_and_applies_nothing_twice(gateway, client,
                                                                          service):
    dropped_at_confirmation(gateway, client)
    # Meanwhile the subscriber migrated to Tigre through the web customer area.
    assert service.migrate(ALICE, Profile.TIGRE, Channel.WEB).approved
    again = gateway(client, ALICE)
    assert again.dial() == RESUME
    assert again.send("1") == ALREADY_TIGRE  # decided again: no confirmation of a profile held
    assert again.send("0") == Screen(PROFILES.text.replace(" (actuel)", "").replace(
        "Tigre", "Tigre (actuel)"), False)  # the way back: the list, as a fresh choice's
    assert stored(service) == ("tigre", 1, 1)


def test_0_on_a_refusal_of_the_confirmation_goes_back_to_the_list_and_nothing_breaks(
        gateway, client, service):
    """On the confirmation while the subscriber migrated to that profile elsewhere: confirming
    is refused, and ``0`` goes back to the list (the confirmation cannot be shown again
    without the decision it showed); a drop there, then a redial, resumes on that list."""
    phone = gateway(client, ALICE)
    phone.dial()
    phone.send("1")
    assert phone.send("2") == CONFIRM_TIGRE
    assert service.migrate(ALICE, Profile.TIGRE, Channel.WEB).approved
    assert phone.send("1") == ALREADY_TIGRE
    held_now = Screen(PROFILES.text.replace(" (actuel)", "").replace("Tigre", "Tigre (actuel)"),
                      False)
    assert phone.send("0") == held_now
    phone.time_out()
    again = gateway(client, ALICE)
    assert again.dial() == RESUME
    assert again.send("1") == held_now
    assert again.send("3") == Screen(CONFIRM_TIGRE.text.replace("Tigre", "Dauphin").replace(
        "restera 2", "restera 1"), False)
    assert stored(service) == ("tigre", 1, 1)


def test_a_refusal_a_resumed_confirmation_gets_is_resumed_on_the_list(gateway, client,
                                                                      service):
    """The confirmation resumed is decided again and refused (the profile got elsewhere
    meanwhile); dropped there in turn, a redial offers to resume again, on the list ``0``
    would go back to, drawn from the standing of that moment. Nothing applied by resuming."""
    dropped_at_confirmation(gateway, client)
    assert service.migrate(ALICE, Profile.TIGRE, Channel.WEB).approved  # meanwhile, on the web
    second = gateway(client, ALICE)
    assert second.dial() == RESUME
    assert second.send("1") == ALREADY_TIGRE
    second.time_out()
    assert service.migrate(ALICE, Profile.DAUPHIN, Channel.WEB).approved  # and again
    third = gateway(client, ALICE)
    assert third.dial() == RESUME
    assert third.send("1") == Screen(PROFILES.text.replace(" (actuel)", "").replace(
        "Dauphin", "Dauphin (actuel)"), False)  # the list as of now, not the refusal
    assert stored(service) == ("dauphin", 2, 2)
    assert third.send("2") == Screen(CONFIRM_TIGRE.text.replace("restera 2", "restera 0"),
                                     False)  # decided on the figures of this moment
    assert third.send("0") == Screen(PROFILES.text.replace(" (actuel)", "").replace(
        "Dauphin", "Dauphin (actuel)"), False)
    assert third.send("0") == MAIN


def test_a_refusal_for_credit_a_resumed_confirmation_gets_is_resumed_on_the_list(
        gateway, client, service):
    """The same with the credit corrected down meanwhile (not enough for Tigre), then
    posted up again before the second redial: the list, and Tigre confirmed as of now."""
    dropped_at_confirmation(gateway, client)
    service.store.admin.put_consumption([(ALICE, LAST_MONTH, 1200)])  # corrected down
    second = gateway(client, ALICE)
    assert second.dial() == RESUME
    assert second.send("1") == Screen(
        "Migration vers Tigre impossible: il faut au moins 2.500 F CFA de crédit consommé le "
        f"mois passé. Vous avez consommé 1.200 F CFA.\n{NAV}", False)
    second.time_out()
    service.store.admin.put_consumption([(ALICE, LAST_MONTH, 3000)])  # and posted up again
    third = gateway(client, ALICE)
    assert third.dial() == RESUME
    assert third.send("1") == PROFILES
    assert stored(service) == ("novamix", 0, 0)  # resuming applied nothing
    assert third.send("2") == CONFIRM_TIGRE
    assert third.send("1") == MIGRATED_TIGRE
    assert stored(service) == ("tigre", 1, 1)


@pytest.mark.parametrize(("back", "resumed"), [
    (("main", "profiles"), PROFILES), (("main", "profiles", "confirm"), PROFILES), ((), MAIN)])
def test_a_confirmation_kept_without_its_target_resumes_on_the_list(gateway, client, service,
                                                                   back, resumed):
    """A marker some earlier version kept of a confirmation without the target it names (the
    screen cannot be drawn, nor decided): resumed where ``0`` would go, the list that asked
    (home when no way back is kept)."""
    broken = Session(screen="confirm", language=Language.FR, back=back)
    # The marker as the save script writes it: the session's digest, a space, the record.
    service.store.redis.set(service.store.keys.dropped_session(ALICE),
                            f"{'0' * 20} {broken.dumps()}", ex=60)
    again = gateway(client, ALICE)
    assert again.dial() == RESUME
    assert again.send("1") == resumed
    assert again.send("0") == MAIN


def test_a_dial_that_says_where_to_go_goes_there(gateway, client):
    dropped_at_confirmation(gateway, client)
    assert gateway(client, ALICE, dial="#121*1#").dial() == PROFILES


def test_an_unknown_number_is_never_offered_anything(gateway, client):
    phone = gateway(client, "+2250799999999")
    assert phone.dial().end


# --- the window ----------------------------------------------------------------------------


def test_the_marker_lives_for_the_session_ttl_and_the_window(gateway, client, service):
    phone = gateway(client, ALICE)
    phone.dial()
    phone.send("1")
    marker = service.store.keys.dropped_session(ALICE)
    assert 180 + 120 - 5 <= service.store.redis.ttl(marker) <= 180 + 120
    phone.time_out()  # reported: the window runs from now
    assert 120 - 5 <= service.store.redis.ttl(marker) <= 120


def test_past_the_window_a_redial_starts_afresh(redis_client, settings, clock, store):
    fast = create_app(replace(settings, session_ttl=1, resume_window=1),
                      redis_client=redis_client, clock=clock).test_client()
    for gateway in GATEWAYS.values():
        phone = gateway(fast, BRUNO)
        phone.dial()
        phone.send("2")
        phone.time_out()
    time.sleep(1.3)  # the window (1 s) after the drops
    for gateway in GATEWAYS.values():
        assert gateway(fast, BRUNO).dial().text.startswith("Orange #121#"), gateway


def test_a_window_of_0_never_offers_to_resume(gateway, redis_client, settings, clock, store):
    client = create_app(replace(settings, resume_window=0), redis_client=redis_client,
                        clock=clock).test_client()
    dropped_at_confirmation(gateway, client)
    assert gateway(client, ALICE).dial() == MAIN
    assert not store.redis.exists(store.keys.dropped_session(ALICE))


def test_a_late_report_of_an_older_session_leaves_the_newer_ones_alone(client, service):
    hubtel = GATEWAYS["hubtel"]
    older = hubtel(client, ALICE)
    older.dial()
    newer = hubtel(client, ALICE)
    assert newer.dial() == MAIN  # the older was at home: nothing to resume
    newer.send("2")
    older.hang_up()  # a Release of the older session arrives late: the newer's stays
    assert hubtel(client, ALICE).dial() == RESUME


# --- the pure part ---------------------------------------------------------------------------


POLICY = Policy()
STANDING = Standing(Profile.NOVAMIX, 0, 3000)


def test_what_a_hop_leaves_to_resume(menu):
    confirm = Session("confirm", values={"target": "tigre", "left": 2}, back=("main", "profiles"),
                      hop=3)
    assert Session.loads(resumable(menu, confirm, POLICY)) == confirm.changed(hop=0)
    for nothing in (Session("main"), Session("migrated", values={"target": "tigre", "left": 2}),
                    Session("too_many_invalid"), Session("unavailable")):
        assert resumable(menu, nothing, POLICY) is None, nothing.screen
    # A refusal keeps the list that asked, as the hop before showed it; none if none did.
    listed = Shown(hop=2, screen="profiles", values={"current": "novamix"})
    capped = Session("limit_reached", back=("main", "profiles"), hop=3, recent=(listed,))
    assert resumable(menu, capped, POLICY) is None  # the end: no profile lifts it
    for refusal in (Session("insufficient", values={"required": 2500, "consumed": 1200},
                            back=("main", "profiles"), hop=3, recent=(listed,)),
                    Session("same_profile", values={"target": "novamix"},
                            back=("main", "profiles"), hop=3, recent=(listed,))):
        assert Session.loads(resumable(menu, refusal, POLICY)) == Session(
            "profiles", values={"current": "novamix"}, back=("main",)), refusal.screen
        assert resumable(menu, refusal.changed(recent=()), POLICY) is None, refusal.screen
    # Reached by resuming (the confirmation resumed, decided again, refused): the list that
    # asked was shown before the drop; kept without its figures (drawn again when resumed),
    # after a wrong input on the refusal too; not when the hop that led there showed another.
    prompted = Shown(hop=1, screen="resume", values={})
    refused = Session("same_profile", values={"target": "tigre"}, back=("main", "profiles"),
                      hop=2, recent=(prompted,))
    wrong = refused.changed(invalid=1, hop=3,
                            recent=(Shown(2, "same_profile", refused.values), prompted))
    for again in (refused, wrong):
        assert Session.loads(resumable(menu, again, POLICY)) == Session("profiles",
                                                                        back=("main",))
    homed = refused.changed(hop=3, recent=(Shown(2, "main", {}), prompted))  # 2, then 1*2
    assert resumable(menu, homed, POLICY) is None
    prompt = Session("resume", suspended=confirm.changed(hop=0))
    assert resumable(menu, prompt, POLICY) == confirm.changed(hop=0).dumps()


def test_what_a_new_session_opens_on(menu):
    dropped = Session("my_profile", values={"current": "novamix"}, back=("main",)).dumps()
    assert opening(menu, STANDING, Language.EN, dropped, (), POLICY) == Session(
        "resume", Language.EN, suspended=Session.loads(dropped))
    assert opening(menu, STANDING, None, None, (), POLICY).screen == "main"
    assert opening(menu, STANDING, None, dropped, ("1",), POLICY).screen == "main"
    assert opening(menu, None, None, dropped, (), POLICY).screen == "unknown_subscriber"
    for stale in ('{"s":"gone_screen","l":"fr","n":0}', "not json", '{"s":"migrated","l":"fr",'
                  '"n":0,"v":{"target":"tigre","left":1}}'):
        assert opening(menu, STANDING, None, stale, (), POLICY).screen == "main", stale



def test_a_refusal_resumed_asks_again_on_the_figures_of_the_moment(gateway, client, service):
    # Celine (1.200 F CFA) is refused Tigre, and the network drops her there.
    phone = gateway(client, CELINE)
    phone.dial()
    phone.send("1")
    refusal = phone.send("2")
    assert "1.200 F CFA" in refusal.text and not refusal.end
    phone.time_out()
    # Meanwhile billing posts her month: 3.000 F CFA, enough for Tigre.
    service.store.admin.put_consumption([(CELINE, LAST_MONTH, 3000)])
    again = gateway(client, CELINE)
    assert again.dial() == RESUME
    assert again.send("1") == PROFILES  # the list she chose from, not the old refusal
    assert again.send("2") == CONFIRM_TIGRE  # decided on the figures of this moment


def test_a_refusal_reached_in_one_hop_forgets_an_older_dialogue(gateway, client, service):
    # Dropped on the Tigre confirmation; then a dial straight to Aigle, refused (not enough
    # credit), and dropped too: the older confirmation is not what a redial offers.
    dropped_at_confirmation(gateway, client)
    chained = gateway(client, ALICE, dial="#121*1*4#")
    assert "Aigle impossible" in chained.dial().text
    chained.time_out()
    assert gateway(client, ALICE).dial() == MAIN


def test_a_list_resumed_marks_the_profile_held_now(gateway, client, service):
    phone = gateway(client, BRUNO)  # Tigre
    phone.dial()
    phone.send("1")
    assert "déjà le profil Tigre" in phone.send("2").text
    phone.time_out()
    assert service.migrate(BRUNO, Profile.AIGLE, Channel.WEB).approved  # meanwhile, on the web
    again = gateway(client, BRUNO)
    assert again.dial() == RESUME
    listed = again.send("1").text
    assert "4. Aigle (actuel)" in listed and "2. Tigre\n" in listed
