"""Helpers for the relay's tests: a relay running in a thread against stub servers, and waiting
for what billing and the SMS provider should end up seeing (always bounded in time)."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable

from ussd.billing.client import BillingClient
from ussd.billing.receipt import receipt_of
from ussd.billing.relay import Relay
from ussd.billing.sms import SmsClient
from ussd.billing.stubs import BillingStub, SmsStub
from ussd.menu_files import load_menu
from ussd.rules import Policy
from ussd.settings import DEFAULT_MENUS_DIR

BILLING_TOKEN = "billing-token-0123456789"
SMS_KEY = "at-api-key-0123"
SENDER = "ORANGECI"
MENU = load_menu(DEFAULT_MENUS_DIR)


def wait_for(condition: Callable[[], object], seconds: float = 10.0, what: str = "") -> None:
    """Wait until ``condition()`` is true; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what or condition}")
        time.sleep(0.02)


def make_relay(store, billing: BillingStub, sms: SmsStub | None = None, *, timeout: float = 1.0,
               **options) -> Relay:
    """A relay on ``store`` to the stubs, with fast back-offs (seeded jitter)."""
    options = {"max_attempts": 10, "claim_after": 3.0, "backoff_first": 0.02,
               "backoff_most": 0.1, "concurrency": 4, "block_ms": 100,
               "rng": random.Random(7), **options}
    sms_client = receipt = None
    if sms is not None:
        sms_client = SmsClient(f"{sms.url}version1/messaging", "sandbox", SMS_KEY, SENDER,
                               timeout)
        receipt = lambda event: receipt_of(MENU, event, Policy())  # noqa: E731
    return Relay(store.outbox, BillingClient(f"{billing.url}events", BILLING_TOKEN, timeout),
                 sms=sms_client, receipt=receipt, **options)


@contextlib.contextmanager
def running(relay: Relay):
    """Run ``relay`` in a thread for the block; stop it (as SIGTERM does) and wait for it."""
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    try:
        yield relay
    finally:
        relay.stop()
        thread.join(timeout=15)
        assert not thread.is_alive(), "the relay did not stop"


@contextlib.contextmanager
def stubs(**billing_options):
    """A billing stub (bearer token required) and an SMS stub (apiKey required)."""
    with BillingStub(token=BILLING_TOKEN, **billing_options) as billing, \
            SmsStub(api_key=SMS_KEY) as sms:
        yield billing, sms
