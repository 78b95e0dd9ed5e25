"""The redis+sentinel:// URL (ussd/store/sentinel.py): every documented form, and the refusals,
which never quote a password."""

from __future__ import annotations

import pytest
import redis

from ussd.errors import ConfigError
from ussd.settings import Settings
from ussd.store import connect
from ussd.store.client import redacted
from ussd.store.sentinel import SentinelUrl, parse_sentinel_url


@pytest.mark.parametrize(("url", "parsed"), [
    ("redis+sentinel://s1:26379,s2:26380,s3/mymaster/0",
     SentinelUrl((("s1", 26379), ("s2", 26380), ("s3", 26379)), "mymaster", 0)),
    ("redis+sentinel://10.0.0.1/cache",
     SentinelUrl((("10.0.0.1", 26379),), "cache", 0)),
    ("redis+sentinel://:s3cr%40t@s1:26379,s2:26379/mymaster/2",
     SentinelUrl((("s1", 26379), ("s2", 26379)), "mymaster", 2, password="s3cr@t")),
    ("redis+sentinel://app:pw@s1,s2/mymaster/0",
     SentinelUrl((("s1", 26379), ("s2", 26379)), "mymaster", 0, username="app", password="pw")),
    ("redis+sentinel://:pw@[::1]:26379,[fe80::2]/mymaster/0?sentinel_password=sp"
     "&sentinel_username=watcher",
     SentinelUrl((("::1", 26379), ("fe80::2", 26379)), "mymaster", 0, password="pw",
                 sentinel_username="watcher", sentinel_password="sp")),
])
def test_the_documented_forms(url, parsed):
    assert parse_sentinel_url(url) == parsed


@pytest.mark.parametrize(("url", "message"), [
    ("redis+sentinel://:pw@/mymaster/0", "a redis+sentinel:// URL names no sentinel host"),
    ("redis+sentinel://:pw@s1:26379", "a redis+sentinel:// URL needs /<master name>[/<db>] "
                                       "after its hosts"),
    ("redis+sentinel://:pw@s1/m/0/x", "a redis+sentinel:// URL needs /<master name>[/<db>] "
                                       "after its hosts"),
    ("redis+sentinel://:pw@s1/m/zero", "redis+sentinel:// URL: the database must be a number, "
                                        "got 'zero'"),
    ("redis+sentinel://:pw@s1:port/m", "redis+sentinel:// URL: not a host[:port]: 's1:port'"),
    ("redis+sentinel://:pw@s1:70000/m", "redis+sentinel:// URL: not a host[:port]: "
                                         "'s1:70000'"),
    ("redis+sentinel://:pw@s1/m?ssl=true", "redis+sentinel:// URL: unknown option(s) ssl "
                                            "(known: sentinel_username, sentinel_password)"),
])
def test_a_malformed_url_is_refused_without_its_password(url, message):
    with pytest.raises(ConfigError) as refused:
        connect(Settings(redis_url=url))
    assert str(refused.value) == message


def test_connect_follows_the_master_the_sentinels_name():
    client = connect(Settings(redis_url="redis+sentinel://:pw@s1,s2:26380/mymaster/3",
                              redis_timeout=0.7))
    pool = client.connection_pool
    assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
    assert (pool.service_name, pool.connection_kwargs["db"],
            pool.connection_kwargs["password"], pool.connection_kwargs["socket_timeout"]) == (
        "mymaster", 3, "pw", 0.7)
    assert [s.connection_pool.connection_kwargs["port"]
            for s in pool.sentinel_manager.sentinels] == [26379, 26380]


def test_passwords_are_blanked_in_messages():
    assert redacted("redis+sentinel://app:pw@s1,s2/m/0?sentinel_password=sp") == (
        "redis+sentinel://app:***@s1,s2/m/0?sentinel_password=***")
    assert redacted("redis://:pw@host:6379/0") == "redis://:***@host:6379/0"
    assert redacted("redis://host:6379/0") == "redis://host:6379/0"
