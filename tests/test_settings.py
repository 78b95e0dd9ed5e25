"""Settings from the environment, every default in one place (ussd/settings.py)."""

from __future__ import annotations

import dataclasses

import pytest

from ussd.billing.config import BillingSettings
from ussd.errors import ConfigError
from ussd.limits import Limits
from ussd.rules import Policy, Profile
from ussd.settings import DEFAULT_MENUS_DIR, Settings


def test_an_empty_environment_gives_the_fields_defaults():
    assert Settings.from_env({}) == Settings()
    assert Settings() == Settings(
        redis_url=None, key_prefix="ussd", session_ttl=180, timezone="Africa/Abidjan",
        monthly_cap=3, thresholds={Profile.TIGRE: 2500, Profile.AIGLE: 8000},
        menus_dir=DEFAULT_MENUS_DIR, redis_timeout=1.0, redis_min_replicas=0,
        limits=Limits(), demo=False, seed_files=(),
        gateways=None, gateway_secrets={}, proxy_hops=0, insecure=False, metrics_port=None,
        metrics_host=None, log_format="text", log_key=None, api_clients=None,
        api_demo_tokens={}, service_codes=("*121#", "#121#"), resume_window=120,
        simulator=False, simulator_auth=None,
        billing=BillingSettings(
            url=None, token=None, timeout=10.0, max_attempts=10, claim_after=30.0, backoff=1.0,
            backoff_max=60.0, concurrency=8, metrics_port=9121, sms_url=None, sms_username=None,
            sms_api_key=None, sms_sender=None))


def test_every_variable_is_read():
    settings = Settings.from_env({
        "REDIS_URL": "redis://10.0.0.5:6379/0", "USSD_KEY_PREFIX": "ci",
        "USSD_SESSION_TTL": "90", "USSD_TIMEZONE": "Africa/Accra", "USSD_MONTHLY_CAP": "5",
        "USSD_THRESHOLD_DAUPHIN": "1000", "USSD_THRESHOLD_aigle": "9000",
        "USSD_MENUS_DIR": "/srv/menus", "USSD_REDIS_TIMEOUT": "0.5", "USSD_DEMO": "yes",
        "USSD_UNKNOWN_OUTCOME_WAIT": "0", "USSD_REDIS_MIN_REPLICAS": "1",
        "USSD_MAX_BODY": "4096", "USSD_BODY_TIMEOUT": "1.5", "USSD_BUSY_AFTER": "0.25",
        "USSD_SEED_FILES": "/a.csv:/b.csv", "USSD_GATEWAYS": " Hubtel, flares ",
        "USSD_PROXY_HOPS": "2", "USSD_INSECURE": "true", "USSD_METRICS_PORT": "9100",
        "USSD_METRICS_HOST": "127.0.0.1", "USSD_LOG_FORMAT": "JSON",
        "USSD_LOG_KEY": "k" * 32, "USSD_API_CLIENTS": "/etc/ussd/api.toml",
        "USSD_SERVICE_CODES": "*121#, *384*1234#", "USSD_RESUME_WINDOW": "0",
        "USSD_SIMULATOR": "1", "USSD_SIMULATOR_AUTH": "tester:0123456789abcdef",
        "USSD_BILLING_URL": "https://billing.example/events",
        "USSD_BILLING_TOKEN": "billing-secret-token-0123", "USSD_BILLING_TIMEOUT": "5",
        "USSD_BILLING_MAX_ATTEMPTS": "4", "USSD_RELAY_CLAIM_AFTER": "45",
        "USSD_RELAY_BACKOFF": "0.5", "USSD_RELAY_BACKOFF_MAX": "20",
        "USSD_RELAY_CONCURRENCY": "3", "USSD_RELAY_METRICS_PORT": "0",
        "USSD_SMS_URL": "https://api.sandbox.africastalking.com/version1/messaging",
        "USSD_SMS_USERNAME": "sandbox", "USSD_SMS_API_KEY": "at-key",
        "USSD_SMS_SENDER": "ORANGE",
    })
    assert dataclasses.asdict(settings) | {"menus_dir": str(settings.menus_dir),
                                           "api_clients": str(settings.api_clients)} == {
        "redis_url": "redis://10.0.0.5:6379/0", "key_prefix": "ci", "session_ttl": 90,
        "timezone": "Africa/Accra", "monthly_cap": 5,
        "thresholds": {Profile.TIGRE: 2500, Profile.AIGLE: 9000, Profile.DAUPHIN: 1000},
        "menus_dir": "/srv/menus", "redis_timeout": 0.5, "redis_min_replicas": 1,
        "limits": {"unknown_outcome_wait": 0.0, "max_body": 4096, "body_timeout": 1.5,
                   "busy_after": 0.25, "hops_at_once": None},
        "demo": True,
        "seed_files": ("/a.csv", "/b.csv"), "seed_replace": False,
        "gateways": ("hubtel", "flares"),
        "gateway_secrets": {}, "proxy_hops": 2, "insecure": True, "metrics_port": 9100,
        "metrics_host": "127.0.0.1", "log_format": "json", "log_key": b"k" * 32,
        "api_clients": "/etc/ussd/api.toml", "api_demo_tokens": {},
        "service_codes": ("*121#", "*384*1234#"), "resume_window": 0, "simulator": True,
        "simulator_auth": "tester:0123456789abcdef",
        "billing": {
            "url": "https://billing.example/events", "token": "billing-secret-token-0123",
            "timeout": 5.0, "max_attempts": 4, "claim_after": 45.0, "backoff": 0.5,
            "backoff_max": 20.0, "concurrency": 3, "metrics_port": 0,
            "sms_url": "https://api.sandbox.africastalking.com/version1/messaging",
            "sms_username": "sandbox", "sms_api_key": "at-key", "sms_sender": "ORANGE"},
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
    ("USSD_UNKNOWN_OUTCOME_WAIT", "-1",
     "USSD_UNKNOWN_OUTCOME_WAIT must be between 0 and 60 seconds, got '-1'"),
    ("USSD_BUSY_AFTER", "0", "USSD_BUSY_AFTER must be between 0.001 and 60 seconds, got '0'"),
    ("USSD_BODY_TIMEOUT", "nan", "USSD_BODY_TIMEOUT must be between 0.001 and 60 seconds, "
                                 "got 'nan'"),
    ("USSD_MAX_BODY", "10", "USSD_MAX_BODY must be a number of bytes from 1024 to 16777216, "
                            "got '10'"),
    ("USSD_SERVICE_CODES", "*121#,#12a#",
     "not a USSD service code: '#12a#' (e.g. *121# or *384*1234#)"),
    ("USSD_RESUME_WINDOW", "-5", "USSD_RESUME_WINDOW must not be negative, got '-5'"),
    ("USSD_SIMULATOR", "1",
     "USSD_SIMULATOR needs USSD_SIMULATOR_AUTH=user:password: the simulator can drive any "
     "subscriber's session"),
    ("USSD_SIMULATOR_AUTH", "tester:short",
     "USSD_SIMULATOR_AUTH must be user:password, the password at least 16 characters"),
    ("USSD_BILLING_URL", "billing.example", "USSD_BILLING_URL must be an http:// or https:// "
                                            "URL, got 'billing.example'"),
    ("USSD_SMS_URL", "ftp://x", "USSD_SMS_URL must be an http:// or https:// URL, got 'ftp://x'"),
    ("USSD_BILLING_MAX_ATTEMPTS", "0", "USSD_BILLING_MAX_ATTEMPTS must be at least 1, got 0"),
    ("USSD_RELAY_CONCURRENCY", "many",
     "USSD_RELAY_CONCURRENCY must be a whole number, got 'many'"),
    ("USSD_RELAY_CLAIM_AFTER", "15",
     "USSD_RELAY_CLAIM_AFTER must be more than twice USSD_BILLING_TIMEOUT"),
    ("USSD_BILLING_TIMEOUT", "121",
     "USSD_BILLING_TIMEOUT must be between 0 and 120 seconds, got '121'"),
    ("USSD_METRICS_PORT", "70000", "USSD_METRICS_PORT must be a TCP port (1-65535), got '70000'"),
    ("USSD_LOG_FORMAT", "xml", "USSD_LOG_FORMAT must be one of text, json, got 'xml'"),
    ("USSD_LOG_KEY", "short", "USSD_LOG_KEY must be at least 16 characters"),
])
def test_a_bad_value_is_refused_by_name(name, value, message):
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({name: value})
    assert str(refused.value) == message


def test_the_billing_token_is_not_read_as_a_gateway_secret():
    """Any USSD_<NAME>_TOKEN used to be a gateway's: this one stopped ``ussd serve`` with
    "no gateway dialect 'billing'"."""
    settings = Settings.from_env({"USSD_BILLING_TOKEN": "billing-secret-token-0123",
                                  "USSD_HUBTEL_TOKEN": "hubtel-secret-token-0123"})
    assert settings.billing.token == "billing-secret-token-0123"
    assert set(settings.gateway_secrets) == {"hubtel"}
    assert "billing-secret" not in repr(settings)


def test_empty_billing_and_sms_variables_are_unset():
    """docker compose passes an unset variable as an empty string."""
    empty = dict.fromkeys(("USSD_BILLING_URL", "USSD_BILLING_TOKEN", "USSD_SMS_URL",
                           "USSD_SMS_USERNAME", "USSD_SMS_API_KEY", "USSD_SMS_SENDER",
                           "USSD_BILLING_TIMEOUT", "USSD_RELAY_METRICS_PORT"), "")
    assert Settings.from_env(empty) == Settings()
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
