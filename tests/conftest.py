"""Shared fixtures: the store on fakeredis and on a real Redis, the app, a fixed clock.

Real-Redis tests use the machine's server at 127.0.0.1:6379 (database 9) when it answers,
else a ``redis-server`` started for the session; each test writes under its own key prefix
and deletes its keys afterwards, so the shared server is left as it was found.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import fakeredis
import pytest
import redis
from api_calls import ApiCaller, write_clients_file
from handsets import GATEWAYS, flask_response
from redis_servers import RedisServer, shared_redis_url

from ussd.menu_files import load_menu
from ussd.rules import Language, Profile
from ussd.service import UssdService
from ussd.settings import DEFAULT_MENUS_DIR, Settings
from ussd.store import Store, connect
from ussd.web import create_app

TEST_DB = 9
# Mid-month in Abidjan (UTC+0): "this month" is 2026-11, "last month" 2026-10.
NOW = datetime(2026, 11, 15, 10, 0, tzinfo=UTC)
THIS_MONTH, LAST_MONTH = "2026-11", "2026-10"

# The test subscribers: msisdn, profile, language, credit consumed last month.
ALICE = "+2250700000001"  # Novamix, 3.000 F CFA: Tigre yes, Aigle no
BRUNO = "+2250700000002"  # Tigre, 9.500: Aigle yes
CELINE = "+2250700000003"  # Novamix, 1.200: Tigre no
JOHN = "+2250700000005"  # Aigle, English
NOBODY = "+2250799999999"  # not a subscriber
SUBSCRIBERS = [
    (ALICE, Profile.NOVAMIX, Language.FR, 3000),
    (BRUNO, Profile.TIGRE, Language.FR, 9500),
    (CELINE, Profile.NOVAMIX, Language.FR, 1200),
    (JOHN, Profile.AIGLE, Language.EN, 12000),
]


@pytest.fixture(scope="session")
def real_redis_url():
    """A real Redis: the machine's, or one started for this test session."""
    url = shared_redis_url(TEST_DB)
    if url is not None:
        yield url
        return
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def key_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def real_redis(real_redis_url, key_prefix):
    """A redis-py client on the real server; this test's keys are deleted afterwards."""
    client = redis.Redis.from_url(real_redis_url, decode_responses=True)
    yield client
    keys = list(client.scan_iter(f"{key_prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["fakeredis", pytest.param("redis", marks=pytest.mark.real_redis)])
def redis_client(request, key_prefix):
    """The same tests on the embedded store and on a real Redis."""
    if request.param == "fakeredis":
        return fakeredis.FakeRedis(decode_responses=True)
    return request.getfixturevalue("real_redis")


@pytest.fixture(scope="module")
def own_redis_server():
    """A ``redis-server`` of the test module's own, no snapshots: for tests that flush its
    scripts, stop it or count every command, which the machine's shared server must not see."""
    with RedisServer({"save": ""}) as server:
        yield server


@pytest.fixture
def settings(key_prefix) -> Settings:
    return Settings(key_prefix=key_prefix)


@pytest.fixture(scope="session")
def menu():
    return load_menu(DEFAULT_MENUS_DIR)


@pytest.fixture
def clock():
    """A clock the test can move: ``clock.now = ...``."""

    class Clock:
        now = NOW

        def __call__(self) -> datetime:
            return self.now

    return Clock()


@pytest.fixture
def store(redis_client, settings) -> Store:
    store = Store(redis_client, prefix=settings.key_prefix, session_ttl=settings.session_ttl,
                  resume_window=settings.resume_window)
    seed_subscribers(store)
    return store


@pytest.fixture
def service(menu, store, settings, clock) -> UssdService:
    return UssdService(menu, store, settings, clock=clock)


@pytest.fixture
def real_service(real_redis_url, key_prefix, real_redis, menu, clock) -> UssdService:
    """The service on the real Redis alone (its own connection, as a server's), the test
    subscribers stored under the test's prefix: for the relay and the billing commands."""
    client = connect(Settings(redis_url=real_redis_url))
    store = Store(client, prefix=key_prefix)
    seed_subscribers(store)
    yield UssdService(menu, store, Settings(key_prefix=key_prefix), clock=clock)
    client.close()


@pytest.fixture
def app(redis_client, settings, clock, store):
    return create_app(settings, redis_client=redis_client, clock=clock)


@pytest.fixture
def client(app):
    return app.test_client()


def seed_subscribers(store: Store) -> None:
    """Store the test subscribers and their consumption of last month."""
    store.admin.put_subscribers((m, p, lang) for m, p, lang, _ in SUBSCRIBERS)
    store.admin.put_consumption((m, LAST_MONTH, amount) for m, _, _, amount in SUBSCRIBERS)


class Dialler:
    """Plays a USSD session through the Africa's Talking endpoint, as the gateway would; each
    reply is the body the gateway gets (``CON ...``/``END ...``)."""

    def __init__(self, client, msisdn: str, session_id: str | None = None,
                 service_code: str = "*121#"):
        self.client = client
        self.msisdn = msisdn
        self.session_id = session_id or f"AT-{uuid.uuid4().hex[:12]}"
        self.service_code = service_code
        self.inputs: list[str] = []

    def post(self, text: str) -> str:
        """One callback whose cumulative ``text`` is ``text``; the body of the reply."""
        call = GATEWAYS["africastalking"].hop(self.session_id, self.msisdn, [text],
                                              self.service_code)
        response = flask_response(self.client, call)
        assert response.status_code == 200
        assert response.mimetype == "text/plain"
        return response.get_data(as_text=True)

    def dial(self) -> str:
        """The first hop."""
        return self.post("")

    def send(self, *inputs: str) -> str:
        """Type inputs (several at once as chained input) and return the reply."""
        self.inputs.extend(inputs)
        return self.post("*".join(self.inputs))


@pytest.fixture
def dialler(client):
    """``dialler(msisdn)`` starts a new session for that number."""
    return lambda msisdn, **kw: Dialler(client, msisdn, **kw)


@pytest.fixture
def clients_file(tmp_path):
    """The tests' API clients (``api_calls.API_CLIENTS``), in a clients file."""
    return write_clients_file(tmp_path / "clients.toml")


@pytest.fixture
def api_app(redis_client, settings, clock, store, clients_file):
    """The app with the HTTP API on, its clients from ``clients_file``."""
    return create_app(replace(settings, api_clients=clients_file), redis_client=redis_client,
                      clock=clock)


@pytest.fixture(scope="session")
def api_document() -> str:
    """The API's OpenAPI document, as the app serves it."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        clients = write_clients_file(Path(folder) / "clients.toml")
        app = create_app(Settings(api_clients=clients),
                         redis_client=fakeredis.FakeRedis(decode_responses=True))
        return app.test_client().get("/api/v1/openapi.json").get_data(as_text=True)


@pytest.fixture
def api(api_app, api_document):
    """The API called as its clients call it, every answer checked against its document."""
    return ApiCaller(api_app.test_client(), api_document)
