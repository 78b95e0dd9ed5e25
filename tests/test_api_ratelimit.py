"""Each API client's rate limit (ussd/api/ratelimit.py): a 429 with Retry-After past the limit,
held across workers on a Redis (and on the 3-master cluster: tests/test_cluster.py), in memory
on the embedded store."""

from __future__ import annotations

from dataclasses import replace

import pytest
from api_calls import ApiCaller
from conftest import ALICE, BRUNO, seed_subscribers

from ussd.api.ratelimit import parse_rate_limit
from ussd.errors import ConfigError
from ussd.settings import Settings
from ussd.store import Store, connect
from ussd.web import create_app


@pytest.mark.parametrize(("text", "shown"), [
    ("20/second", ["20 per 1 second"]),
    ("20 per second", ["20 per 1 second"]),
    ("20/second; 600/minute", ["20 per 1 second", "600 per 1 minute"]),
    ("5/2 hours", ["5 per 2 hour"]),
])
def test_a_rate_limit_is_read_as_limits_writes_it(text, shown):
    assert [str(item) for item in parse_rate_limit(text)] == shown


@pytest.mark.parametrize("text", ["", "lots", "20", "0/second", "20/fortnight", "-1/second"])
def test_a_rate_limit_that_is_none_is_refused(text):
    with pytest.raises(ConfigError, match="not a rate limit"):
        parse_rate_limit(text)


def limited_out(response) -> None:
    assert response.status_code == 429
    wait = int(response.headers["Retry-After"])
    assert 1 <= wait <= 60
    assert response.get_json() == {
        "type": "/api/v1/problems/rate-limited", "title": "Too many requests", "status": 429,
        "detail": f"The client limited is over its rate limit; retry in {wait} s.",
        "retry_after": wait}


def test_past_its_limit_a_client_gets_429_and_others_go_on(api, store):
    for _ in range(3):  # "3/minute"
        assert api.get(f"/api/v1/subscribers/{ALICE}", client="limited").status_code == 200
    limited_out(api.get(f"/api/v1/subscribers/{ALICE}", client="limited"))
    limited_out(api.migrate(ALICE, "Tigre", client="limited"))
    assert store.redis.hget(store.keys.subscriber(ALICE), "p") == "novamix"  # not applied
    assert api.get(f"/api/v1/subscribers/{BRUNO}", client="portal").status_code == 200


def test_refused_requests_count_too_but_unauthenticated_ones_do_not(api):
    for _ in range(5):
        assert api.get(f"/api/v1/subscribers/{ALICE}", client=None).status_code == 401
    for _ in range(3):  # a 404 and 400s are requests all the same
        assert api.get("/api/v1/subscribers/12", client="limited").status_code == 400
    limited_out(api.get(f"/api/v1/subscribers/{ALICE}", client="limited"))


@pytest.mark.real_redis
def test_the_limit_holds_across_workers(real_redis, settings, clients_file, api_document):
    # Two apps on one Redis, as two workers or two machines: one count.
    seed_subscribers(Store(real_redis, prefix=settings.key_prefix))
    workers = [ApiCaller(create_app(replace(settings, api_clients=clients_file),
                                    redis_client=real_redis).test_client(), api_document)
               for _ in range(2)]
    for worker in (0, 1, 0):
        assert workers[worker].get(f"/api/v1/subscribers/{ALICE}",
                                   client="limited").status_code == 200
    limited_out(workers[1].get(f"/api/v1/subscribers/{ALICE}", client="limited"))
    # Kept under the deployment's prefix, one key per client and limit.
    assert list(real_redis.scan_iter(f"{settings.key_prefix}:limits:*")) == [
        f"{settings.key_prefix}:limits:LIMITER/limited/3/1/minute"]


def test_a_limit_that_cannot_be_counted_is_503(settings, clients_file, api_document):
    dead = connect(Settings(redis_url="redis://127.0.0.1:1/0", redis_timeout=0.2))
    app = create_app(replace(settings, api_clients=clients_file), redis_client=dead)
    response = ApiCaller(app.test_client(), api_document).get(
        f"/api/v1/subscribers/{ALICE}", client="limited")
    assert (response.status_code, response.headers["Retry-After"]) == (503, "1")
    assert response.get_json()["type"] == "/api/v1/problems/unavailable"


def test_a_cluster_limiter_connects_as_the_store_does():
    from redis.connection import parse_url

    from ussd.api.ratelimit import cluster_options

    store = {**parse_url("rediss://ops:pw@10.0.0.5:6379/0"), "socket_timeout": 1.0,
             "socket_connect_timeout": 1.0, "ssl_ca_certs": "/etc/ca.pem", "retry": object(),
             "decode_responses": True}
    assert cluster_options(store) == {
        "username": "ops", "password": "pw", "socket_timeout": 1.0,
        "socket_connect_timeout": 1.0, "ssl_ca_certs": "/etc/ca.pem", "ssl": True}
    assert cluster_options(parse_url("redis://10.0.0.5:6379/0")) == {}
