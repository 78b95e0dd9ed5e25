"""Replayed hops: the same request again, at once or overtaken by later hops, gets the reply it
got the first time and never applies anything twice. On fakeredis and on a real Redis, in every
dialect that numbers its hops (Africa's Talking by its cumulative text, Hubtel by Sequence).

The record keeps the screens of the last ``session.REPLAY_WINDOW`` hops (see
docs/reliability.md); a replay older than that gets the current screen, still applying nothing.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import fakeredis
import pytest
from conftest import ALICE, JOHN, LAST_MONTH, NOW, THIS_MONTH, seed_subscribers
from handsets import Handset, served_dialects, test_client_transport
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from ussd.contract import Hop
from ussd.menu_files import load_menu
from ussd.rules import Language, Profile
from ussd.service import UssdService
from ussd.session import REPLAY_WINDOW
from ussd.settings import DEFAULT_MENUS_DIR, Settings
from ussd.store import Store
from ussd.web import create_app

NUMBERED = [d for d in served_dialects() if d.numbers_hops]
MIGRATED_TIGRE = ("Votre profil est désormais Tigre. Vous gardez vos avantages en cours dans "
                  "la limite de leur validité. Migrations restantes ce mois: 2.")


@pytest.fixture(params=NUMBERED, ids=lambda d: d.name)
def dialect(request):
    return request.param


@pytest.fixture
def handset(client, dialect):
    """``handset(msisdn)``: a new session of that subscriber in this test's dialect."""
    return lambda msisdn, **kw: Handset(test_client_transport(client), dialect, msisdn, **kw)


def counted(service, msisdn=ALICE):
    """(migrations this month, history length, profile) as stored."""
    record = service.store.admin.describe(msisdn, THIS_MONTH)
    return record["migrations_this_month"], len(record["history"]), record["profile"]


def test_every_hop_sent_twice_gets_the_same_reply(handset, service):
    phone = handset(ALICE)
    first = phone.dial()
    assert phone.replay(0) == first
    for text in ("1", "2", "1"):  # change profile, Tigre, confirm
        reply = phone.send(text)
        assert phone.replay(len(phone.requests) - 1) == reply
        assert phone.replay(len(phone.requests) - 1) == reply
    assert phone.replies[-1] == (MIGRATED_TIGRE, True)
    assert counted(service) == (1, 1, "tigre")


def test_an_overtaken_hop_gets_its_own_first_reply_not_the_current_screen(handset, service):
    phone = handset(ALICE)
    phone.dial()
    profiles = phone.send("1")
    confirm = phone.send("2")
    # Hop 1's request arrives again after hop 2: the profile list, not the confirmation.
    assert phone.replay(1) == profiles != confirm
    # ...and it changed nothing: the next hop goes on from the confirmation.
    assert phone.send("1") == (MIGRATED_TIGRE, True)
    assert counted(service) == (1, 1, "tigre")


def test_every_hop_replayed_in_every_order_after_the_migration(handset, service):
    phone = handset(ALICE)
    phone.dial()
    for text in ("1", "2", "1"):
        phone.send(text)
    assert len(phone.requests) == REPLAY_WINDOW  # the whole dialogue is in the window
    for order in itertools.permutations(range(len(phone.requests))):
        for number in order:
            assert phone.replay(number) == phone.replies[number]
    assert counted(service) == (1, 1, "tigre")


def test_a_replay_older_than_the_window_gets_the_current_screen_and_changes_nothing(
        handset, service):
    phone = handset(ALICE)
    phone.dial()
    # conditions, its page 2, back home, my profile, back home, the profile list
    for text in ("3", "99", "0", "2", "0", "1"):
        phone.send(text)
    current = phone.replies[-1]
    newest = len(phone.requests) - 1
    for number in range(newest - REPLAY_WINDOW + 1, newest + 1):
        assert phone.replay(number) == phone.replies[number]
    for number in range(newest - REPLAY_WINDOW + 1):
        assert phone.replay(number) == current
    # The dialogue goes on from the profile list, as if no replay had come.
    assert phone.send("2")[0].startswith("Migration vers Tigre: gratuite.")
    assert counted(service) == (0, 0, "novamix")


def test_a_replay_after_the_gateway_closed_the_session_applies_nothing(handset, service):
    phone = handset(ALICE)
    phone.dial()
    for text in ("1", "2", "1"):
        phone.send(text)
    phone.hang_up()
    for number in reversed(range(len(phone.requests))):
        assert phone.replay(number) == phone.replies[number]
    assert counted(service) == (1, 1, "tigre")


def test_a_new_input_after_the_gateway_closed_the_session_is_not_walked(handset, service):
    phone = handset(ALICE)
    phone.dial()
    phone.send("1")
    phone.send("2")
    phone.hang_up()
    assert phone.send("1") == ("Merci d'avoir utilisé #121#.", True)
    assert counted(service) == (0, 0, "novamix")


def test_replays_are_in_the_subscribers_language(handset, service):
    phone = handset(JOHN)
    phone.dial()
    english = phone.send("1")
    phone.send("1")
    assert english[0].startswith("Choose your new profile:")
    assert phone.replay(1) == english


@pytest.mark.real_redis
def test_copies_of_the_confirm_hop_racing_each_other_migrate_once(real_redis, settings, dialect):
    seed_subscribers_into(real_redis, settings)
    app = create_app(settings, redis_client=real_redis, clock=lambda: NOW)
    service = app.extensions["ussd"]
    phone = Handset(test_client_transport(app.test_client()), dialect, ALICE)
    phone.dial()
    phone.send("1")
    phone.send("2")
    confirm = phone.dialect.hop(phone.session_id, ALICE, ["1", "2", "1"])
    copies = 12
    barrier = threading.Barrier(copies)

    def send_copy(_):
        transport = test_client_transport(app.test_client())
        barrier.wait()
        return dialect.reply(transport(confirm))

    with ThreadPoolExecutor(copies) as pool:
        replies = set(pool.map(send_copy, range(copies)))
    assert replies == {(MIGRATED_TIGRE, True)}
    assert counted(service) == (1, 1, "tigre")


def seed_subscribers_into(client, settings):
    seed_subscribers(Store(client, prefix=settings.key_prefix))


# --- replays are invisible: a property over whole dialogues -----------------------------------

INPUTS = st.sampled_from(["1", "2", "3", "4", "0", "00", "99", "7"])


@pytest.mark.real_redis
@hypothesis_settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(inputs=st.lists(INPUTS, min_size=1, max_size=8),
       replays=st.lists(st.tuples(st.integers(0, 8), st.integers(0, 2**16)), max_size=10),
       data=st.data())
def test_replays_anywhere_change_neither_replies_nor_outcome(real_redis, key_prefix, dialect,
                                                              inputs, replays, data):
    """The same dialogue with and without replays of earlier hops interleaved: every reply
    and the subscriber's final state are the same; each replay within the window gets the
    very reply its hop got."""
    outcomes = []
    for with_replays in (False, True):
        prefix = f"{key_prefix}{int(with_replays)}{data.draw(st.integers(0, 10**9))}"
        settings_ = Settings(key_prefix=prefix)
        seed_subscribers_into(real_redis, settings_)
        app = create_app(settings_, redis_client=real_redis, clock=lambda: NOW)
        phone = Handset(test_client_transport(app.test_client()), dialect, ALICE)
        phone.dial()
        for position, text in enumerate(inputs, start=1):
            if phone.replies[-1][1]:
                break  # the session has ended
            phone.send(text)
            for at, pick in replays if with_replays else ():
                if at == position:
                    newest = len(phone.requests) - 1
                    number = newest - pick % min(REPLAY_WINDOW, newest + 1)
                    assert phone.replay(number) == phone.replies[number]
        service = app.extensions["ussd"]
        outcomes.append((phone.replies, counted(service)))
        for key in real_redis.scan_iter(f"{prefix}:*"):
            real_redis.delete(key)
    assert outcomes[0] == outcomes[1]


# --- the window costs little: a session record stays small -------------------------------------

RECORD_LIMIT = 400  # bytes in Redis per live session (issue 5's budget), the window included
WIDEST = 99_999_999  # F CFA: the widest figure a screen shows


def explorer() -> tuple[UssdService, list[str]]:
    """A service on fakeredis whose subscribers have the widest figures."""
    store = Store(fakeredis.FakeRedis(decode_responses=True))
    subscribers = {"+2250700000011": (Profile.NOVAMIX, Language.FR),
                   "+2250700000012": (Profile.AIGLE, Language.EN),
                   "+2250700000013": (Profile.TIGRE, Language.FR)}
    store.admin.put_subscribers((m, p, lang) for m, (p, lang) in subscribers.items())
    store.admin.put_consumption((m, LAST_MONTH, WIDEST) for m in subscribers)
    service = UssdService(load_menu(DEFAULT_MENUS_DIR), store, Settings(), clock=lambda: NOW)
    return service, list(subscribers)


EXPLORER = explorer()


@hypothesis_settings(max_examples=300, deadline=None)
@given(inputs=st.lists(INPUTS, max_size=12), who=st.integers(0, 2), replays=st.booleans())
def test_a_session_record_stays_within_its_budget(inputs, who, replays):
    service, msisdns = EXPLORER
    msisdn = msisdns[who]
    session_id = f"size-{uuid.uuid4().hex}"
    key = service.store.keys.session(msisdn, "africastalking", session_id)
    for count in range(len(inputs) + 1):
        hop = Hop("africastalking", session_id, msisdn, tuple(inputs[:count]), cumulative=True,
                  sequence=count)
        service.handle(hop)
        if replays:
            service.handle(hop)
        record = service.store.redis.get(key)
        assert len(record.encode()) <= RECORD_LIMIT, record
    service.store.redis.delete(key)
