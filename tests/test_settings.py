"""Settings from the environment, every default in one place (ussd/settings.py)."""

from __future__ import annotations

import dataclasses

import pytest

from ussd.errors import ConfigError
from ussd.rules import Policy, Profile
from ussd.settings import DEFAULT_MENUS_DIR, Settings


def test_an_empty_environment_gives_the_fields_defaults():
    assert Settings.from_env({}) == Settings()
    assert Settings() == Settings(
        redis_url=None, key_prefix="ussd", session_ttl=180, timezone="Africa/Abidjan",
        monthly_cap=3, thresholds={Profile.TIGRE: 2500, Profile.AIGLE: 8000},
        menus_dir=DEFAULT_MENUS_DIR, redis_timeout=1.0, demo=False, seed_files=(),
        gateways=None, gateway_secrets={}, proxy_hops=0, insecure=False, metrics_port=None,
        metrics_host=None, log_format="text", log_key=None, api_clients=None,
        api_demo_tokens={}, service_codes=("*121#", "#121#"), resume_window=120,
        simulator=False, simulator_auth=None)


def test_every_variable_is_read():
    settings = Settings.from_env({
        "REDIS_URL": "redis://10.0.0.5:6379/0", "USSD_KEY_PREFIX": "ci",
        "USSD_SESSION_TTL": "90", "USSD_TIMEZONE": "Africa/Accra", "USSD_MONTHLY_CAP": "5",
        "USSD_THRESHOLD_DAUPHIN": "1000", "USSD_THRESHOLD_aigle": "9000",
        "USSD_MENUS_DIR": "/srv/menus", "USSD_REDIS_TIMEOUT": "0.5", "USSD_DEMO": "yes",
        "USSD_SEED_FILES": "/a.csv:/b.csv", "USSD_GATEWAYS": " Hubtel, flares ",
        "USSD_PROXY_HOPS": "2", "USSD_INSECURE": "true", "USSD_METRICS_PORT": "9100",
        "USSD_METRICS_HOST": "127.0.0.1", "USSD_LOG_FORMAT": "JSON",
        "USSD_LOG_KEY": "k" * 32, "USSD_API_CLIENTS": "/etc/ussd/api.toml",
        "USSD_SERVICE_CODES": "*121#, *384*1234#", "USSD_RESUME_WINDOW": "0",
        "USSD_SIMULATOR": "1", "USSD_SIMULATOR_AUTH": "tester:0123456789abcdef",
    })
    assert dataclasses.asdict(settings) | {"menus_dir": str(settings.menus_dir),
                                           "api_clients": str(settings.api_clients)} == {
        "redis_url": "redis://10.0.0.5:6379/0", "key_prefix": "ci", "session_ttl": 90,
        "timezone": "Africa/Accra", "monthly_cap": 5,
        "thresholds": {Profile.TIGRE: 2500, Profile.AIGLE: 9000, Profile.DAUPHIN: 1000},
        "menus_dir": "/srv/menus", "redis_timeout": 0.5, "demo": True,
        "seed_files": ("/a.csv", "/b.csv"), "gateways": ("hubtel", "flares"),
        "gateway_secrets": {}, "proxy_hops": 2, "insecure": True, "metrics_port": 9100,
        "metrics_host": "127.0.0.1", "log_format": "json", "log_key": b"k" * 32,
        "api_clients": "/etc/ussd/api.toml", "api_demo_tokens": {},
        "service_codes": ("*121#", "*384*1234#"), "resume_window": 0, "simulator": True,
        "simulator_auth": "tester:0123456789abcdef",
    }
    assert settings.policy == Policy(monthly_cap=5, thresholds=settings.thresholds)


def test_ussd_redis_url_wins_over_redis_url():
    env = {"REDIS_URL": "redis://a:6379/0", "USSD_REDIS_URL": "redis://b:6379/0"}
    assert Settings.from_env(env).redis_url == "redis://b:6379/0"


@pytest.mark.parametrize(("name", "value", "message"), [
    ("USSD_SESSION_TTL", "soon", "USSD_SESSION_TTL must be a whole number, got 'soon'"),
    ("USSD_SESSION_TTL", "0", "USSD_SESSION_TTL must be at least 1 second"),
    ("USSD_MONTHLY_CAP", "-1", "USSD_MONTHLY_CAP must not be negative, got '-1'"),
    ("USSD_THRESHOLD_LION", "10", "USSD_THRESHOLD_LION: no such profile"),
    ("USSD_REDIS_TIMEOUT", "0", "USSD_REDIS_TIMEOUT must be between 0 and 60 seconds, got '0'"),
    ("USSD_REDIS_TIMEOUT", "x", "USSD_REDIS_TIMEOUT must be a number of seconds, got 'x'"),
    ("USSD_TIMEZONE", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ("USSD_SERVICE_CODES", "*121#,#12a#",
     "not a USSD service code: '#12a#' (e.g. *121# or *384*1234#)"),
    ("USSD_RESUME_WINDOW", "-5", "USSD_RESUME_WINDOW must not be negative, got '-5'"),
    ("USSD_SIMULATOR", "1",
     "USSD_SIMULATOR needs USSD_SIMULATOR_AUTH=user:password: the simulator can drive any "
     "subscriber's session"),
    ("USSD_SIMULATOR_AUTH", "tester:short",
     "USSD_SIMULATOR_AUTH must be user:password, the password at least 16 characters"),
    ("USSD_METRICS_PORT", "70000", "USSD_METRICS_PORT must be a TCP port (1-65535), got '70000'"),
    ("USSD_LOG_FORMAT", "xml", "USSD_LOG_FORMAT must be one of text, json, got 'xml'"),
    ("USSD_LOG_KEY", "short", "USSD_LOG_KEY must be at least 16 characters"),
])
def test_a_bad_value_is_refused_by_name(name, value, message):
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({name: value})
    assert str(refused.value) == message


def test_the_secrets_a_log_line_must_never_show():
    settings = Settings.from_env({
        "REDIS_URL": "redis://:hunter2-redis-pass@10.0.0.5:6379/0",
        "USSD_AFRICASTALKING_TOKEN": "t" * 20, "USSD_HUBTEL_BASIC_AUTH": "hubtel:" + "p" * 20,
        "USSD_LOG_KEY": "k" * 16, "USSD_SIMULATOR_AUTH": "tester:" + "s" * 20,
    })
    assert set(settings.secrets()) == {"t" * 20, "hubtel:" + "p" * 20, "p" * 20, "k" * 16,
                                       "hunter2-redis-pass", "tester:" + "s" * 20, "s" * 20}
    # Longest first: a secret holding another is blanked whole.
    assert list(settings.secrets()) == sorted(settings.secrets(), key=len, reverse=True)
    assert "k" * 16 not in repr(settings) and "t" * 20 not in repr(settings)


def test_the_demo_api_tokens_are_secrets_no_log_line_shows():
    settings = Settings(api_demo_tokens={"web": "w" * 32, "app": "a" * 32})
    assert set(settings.secrets()) >= {"w" * 32, "a" * 32}
    assert "w" * 32 not in repr(settings)
