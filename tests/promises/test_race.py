"""Concurrent confirms for one subscriber against a real Redis: the cap holds exactly."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import BRUNO, NOW, THIS_MONTH, Dialler

from ussd.settings import Settings
from ussd.store import Store
from ussd.web import create_app

pytestmark = pytest.mark.real_redis
SESSIONS = 24


@pytest.fixture
def race_app(real_redis, key_prefix):
    from conftest import seed_subscribers

    # 24 sessions of one number, opened one after another and all left at the confirmation:
    # resume would offer each the one before it; off here (it applies nothing itself).
    settings = Settings(key_prefix=key_prefix, resume_window=0)
    seed_subscribers(Store(real_redis, prefix=key_prefix))
    return create_app(settings, redis_client=real_redis, clock=lambda: NOW)


def test_concurrent_confirms_never_exceed_the_cap(race_app):
    app = race_app
    # Bruno is on Tigre with 9.500 F CFA: Novamix, Dauphin and Aigle are all open to him. With
    # three targets, the rules refuse a session only for its own target becoming the current
    # profile (that group has won) or the cap: so exactly 3 of the sessions must succeed.
    targets = ["1", "3", "4"]
    sessions = []
    for number in range(SESSIONS):
        session = Dialler(app.test_client(), BRUNO, session_id=f"race-{number}")
        session.dial()
        session.send("1")
        session.send(targets[number % 3])
        sessions.append(session)
    barrier = threading.Barrier(SESSIONS)

    def confirm(session: Dialler) -> str:
        session.client = app.test_client()
        barrier.wait()
        return session.send("1")

    with ThreadPoolExecutor(SESSIONS) as pool:
        replies = list(pool.map(confirm, sessions))

    successes = [r for r in replies if r.startswith("END Votre profil est désormais")]
    refusals = [r for r in replies if r not in successes]
    assert len(successes) == 3
    for reply in refusals:
        assert reply in (
            "END Vous avez déjà effectué vos 3 migrations de ce mois. Réessayez le mois prochain.",
            # the same profile: open, for another (the session goes on, nothing applied)
            "CON Vous avez déjà le profil Novamix. Aucune migration n'a été décomptée.\n"
            "0 Retour | 00 Accueil",
            "CON Vous avez déjà le profil Dauphin. Aucune migration n'a été décomptée.\n"
            "0 Retour | 00 Accueil",
            "CON Vous avez déjà le profil Aigle. Aucune migration n'a été décomptée.\n"
            "0 Retour | 00 Accueil",
        )
    record = app.extensions["ussd"].store.admin.describe(BRUNO, THIS_MONTH)
    assert record["migrations_this_month"] == 3
    assert len(record["history"]) == 3
    # The history is a chain: each migration starts from where the previous one left.
    chain = record["history"]
    assert chain[0]["from"] == "tigre"
    assert all(a["to"] == b["from"] for a, b in itertools.pairwise(chain))
    assert record["profile"] == chain[-1]["to"]
    # Each success screen counts down from what the store held when it was applied.
    assert sorted(r.rsplit(": ", 1)[1] for r in successes) == ["0.", "1.", "2."]
