"""Races through real HTTP: many sessions of the same subscribers, on two workers sharing one
real Redis, confirm at the same instant. Exactly the cap succeeds per subscriber, the history
matches the counter, and every screen shows its own subscriber's figures in their language.

Two ``create_app`` instances are served by werkzeug (a thread per request) on loopback, and
each session's hops alternate between them: any worker serves any hop, as in production.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import LAST_MONTH, NOW, THIS_MONTH
from handsets import Handset, http_transport, served_dialects, serving

from ussd.rules import Language, Profile
from ussd.settings import Settings
from ussd.store import Store
from ussd.web import create_app

pytestmark = pytest.mark.real_redis

CAP = 3
# msisdn: profile, language, credit consumed last month (all different, to be told apart on
# screen), and the sessions racing for it. Every one can migrate to each of the 3 other
# profiles, so the sessions form 3 target groups and exactly the cap must succeed whatever the
# order (with 2 groups, one could be refused whole as "same profile" before the 3rd success).
RACERS = {
    "+2250700001001": (Profile.NOVAMIX, Language.FR, 8_250, 60),
    "+2250700001002": (Profile.TIGRE, Language.FR, 9_500, 20),
    "+2250700001003": (Profile.DAUPHIN, Language.EN, 12_000, 20),
    "+2250700001004": (Profile.AIGLE, Language.EN, 15_750, 20),
}
DUPLICATED = 10  # sessions of the first subscriber whose confirm is also sent twice at once
ORDER = [Profile.NOVAMIX, Profile.TIGRE, Profile.DAUPHIN, Profile.AIGLE]

TEXTS = {
    Language.FR: {
        "my_profile": "Votre profil: {current}.\nMigrations restantes ce mois: {left} sur 3.\n"
                      "Crédit consommé le mois passé: {consumed}.\n0 Retour | 00 Accueil",
        "profiles": "Choisissez votre nouveau profil:\n{lines}\n0 Retour | 00 Accueil",
        "current": "(actuel)",
        "confirm": "Migration vers {target}: gratuite. Il vous restera 2 migration(s) ce mois. "
                   "Vos avantages en cours sont conservés.\n1. Confirmer\n2. Annuler\n"
                   "0 Retour | 00 Accueil",
        "migrated": "Votre profil est désormais {target}. Vous gardez vos avantages en cours "
                    "dans la limite de leur validité. Migrations restantes ce mois: {left}.",
        "same": "Vous avez déjà le profil {target}. Aucune migration n'a été décomptée.\n"
                "0 Retour | 00 Accueil",
        "limit": "Vous avez déjà effectué vos 3 migrations de ce mois. Réessayez le mois "
                 "prochain.",
    },
    Language.EN: {
        "my_profile": "Your profile: {current}.\nMigrations left this month: {left} of 3.\n"
                      "Credit used last month: {consumed}.\n0 Back | 00 Home",
        "profiles": "Choose your new profile:\n{lines}\n0 Back | 00 Home",
        "current": "(current)",
        "confirm": "Migration to {target}: free. You will have 2 migration(s) left this month. "
                   "Your current benefits are kept.\n1. Confirm\n2. Cancel\n0 Back | 00 Home",
        "migrated": "Your profile is now {target}. You keep your current benefits within their "
                    "validity. Migrations left this month: {left}.",
        "same": "You already have the {target} profile. No migration was counted.\n"
                "0 Back | 00 Home",
        "limit": "You have already made your 3 migrations this month. Please try again next "
                 "month.",
    },
}


def amount(value: int, language: Language) -> str:
    """Thousands with a dot in French (as the source writes them), a comma in English."""
    return f"{value:,}".replace(",", "." if language is Language.FR else ",") + " F CFA"


def expected_before_confirm(msisdn: str, target: Profile) -> list[tuple[str, bool]]:
    """The screens of the session up to the confirmation: all about this subscriber."""
    profile, language, consumed, _ = RACERS[msisdn]
    text = TEXTS[language]
    lines = "\n".join(f"{n}. {p.title}" + (f" {text['current']}" if p is profile else "")
                      for n, p in enumerate(ORDER, start=1))
    main = ("Orange #121#\n1. Changer de profil\n2. Mon profil\n3. Conditions de migration"
            "\n4. Language / Langue"
            if language is Language.FR else
            "Orange #121#\n1. Change profile\n2. My profile\n3. Migration conditions"
            "\n4. Language / Langue")
    return [
        (main, False),
        (text["my_profile"].format(current=profile.title, left=CAP,
                                   consumed=amount(consumed, language)), False),
        (main, False),
        (text["profiles"].format(lines=lines), False),
        (text["confirm"].format(target=target.title), False),
    ]


def allowed_endings(msisdn: str, target: Profile) -> set[tuple[str, bool]]:
    """What the confirmation may end with, for this subscriber and this target only."""
    text = TEXTS[RACERS[msisdn][1]]
    endings = {(text["migrated"].format(target=target.title, left=left), True)
               for left in range(CAP)}
    # The same profile (another session moved there first): open, for another profile.
    return endings | {(text["same"].format(target=target.title), False), (text["limit"], True)}


@pytest.fixture
def workers(real_redis, key_prefix):
    """Two workers on the same Redis, each served over HTTP on loopback."""
    store = Store(real_redis, prefix=key_prefix)
    store.admin.put_subscribers((m, p, lang) for m, (p, lang, _, _) in RACERS.items())
    store.admin.put_consumption((m, LAST_MONTH, c) for m, (_, _, c, _) in RACERS.items())
    # Many sessions of one number at once, none a redial of another: resume, which would offer
    # each the dialogue another left, is off (it changes no migration: tests/test_resume.py).
    settings = Settings(key_prefix=key_prefix, resume_window=0)
    apps = [create_app(settings, redis_client=real_redis, clock=lambda: NOW) for _ in range(2)]
    with serving(apps[0]) as first, serving(apps[1]) as second:
        yield store, [http_transport(first), http_transport(second)]


def alternating(transports):
    """A transport sending each request to the next worker in turn."""
    turn = itertools.cycle(transports)
    lock = threading.Lock()

    def send(request):
        with lock:
            transport = next(turn)
        return transport(request)

    return send


@pytest.mark.parametrize("dialect", served_dialects()[:1], ids=lambda d: d.name)
def test_racing_sessions_migrate_exactly_the_cap_and_show_only_their_own_data(workers, dialect):
    store, transports = workers
    plan = []  # (msisdn, target) per session, targets cycling over the 3 other profiles
    for msisdn, (profile, _, _, sessions) in RACERS.items():
        targets = [p for p in ORDER if p is not profile]
        plan += [(msisdn, targets[n % 3]) for n in range(sessions)]
    total = len(plan)
    assert max(s for *_, s in RACERS.values()) >= 50
    barrier = threading.Barrier(total)

    def session(number: int):
        msisdn, target = plan[number]
        phone = Handset(alternating(transports), dialect, msisdn, session_id=f"race-{number}")
        seen = [phone.dial(), phone.send("2"), phone.send("0"), phone.send("1"),
                phone.send(str(ORDER.index(target) + 1))]
        barrier.wait(timeout=60)
        if number < DUPLICATED:  # the gateway sends this confirm twice, at the same time
            copy = phone.dialect.hop(phone.session_id, msisdn, [*phone.inputs, "1"])
            with ThreadPoolExecutor(1) as twin:
                echo = twin.submit(lambda: phone.dialect.reply(transports[1](copy)))
                ending = phone.send("1")
                assert echo.result(timeout=60) == ending
        else:
            ending = phone.send("1")
        return msisdn, target, seen, ending

    with ThreadPoolExecutor(total) as pool:
        results = list(pool.map(session, range(total)))

    for msisdn, target, seen, ending in results:
        assert seen == expected_before_confirm(msisdn, target)
        assert ending in allowed_endings(msisdn, target)
    for msisdn, (profile, language, consumed, _) in RACERS.items():
        text = TEXTS[language]
        endings = [ending for m, _, _, ending in results if m == msisdn]
        successes = [e for e in endings if e[0].startswith(text["migrated"][:18])]
        assert len(successes) == CAP
        # Each success screen counts down from what the store held when it was applied.
        assert sorted(e[0].rsplit(": ", 1)[1] for e in successes) == ["0.", "1.", "2."]
        stored = store.admin.describe(msisdn, THIS_MONTH)
        history = stored["history"]
        assert stored["migrations_this_month"] == len(history) == CAP
        assert history[0]["from"] == profile.value
        assert all(a["to"] == b["from"] for a, b in itertools.pairwise(history))
        assert stored["profile"] == history[-1]["to"]
        assert stored["consumption"] == {LAST_MONTH: consumed}
        assert len({entry["session"] for entry in history}) == CAP
