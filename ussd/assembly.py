"""The composition root: the one place the service is put together from its settings.

The web app (:func:`ussd.web.create_app`), every ``ussd`` command and the bench build the
service here, from a :class:`~ussd.settings.Settings` value handed to them, never from
``os.environ`` behind their backs: ``ussd serve`` passes its settings to each worker process
itself (:func:`worker_app`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .menu_files import load_menu
from .service import UssdService
from .settings import Settings
from .store import Store, connect

if TYPE_CHECKING:
    from .billing.relay import Relay

log = logging.getLogger("ussd")


def build_service(settings: Settings, redis_client: Any = None,
                  clock: Callable[[], datetime] | None = None) -> UssdService:
    """The service on ``redis_client``, or on the client ``settings`` name (the embedded store
    when there is no ``REDIS_URL``, then filled with the demo and seed files it asks for).

    Raises InvalidMenuError for a broken menu, ConfigError for a bad ``REDIS_URL``. Redis is
    not reached here, except to load the scripts when it answers (see ``Store.load_scripts``).
    """
    menu = load_menu(settings.menus_dir, settings.policy)
    client = redis_client if redis_client is not None else connect(settings)
    store = Store(client, prefix=settings.key_prefix, session_ttl=settings.session_ttl,
                  resume_window=settings.resume_window,
                  min_replicas=settings.redis_min_replicas, wait_ms=wait_ms(settings))
    store.load_scripts()  # once per process, so that no hop pays for it
    service = UssdService(menu, store, settings, **({"clock": clock} if clock else {}))
    if redis_client is None and settings.redis_url is None:
        fill_embedded_store(service, settings)
    return service


def wait_ms(settings: Settings) -> int:
    """How long a migration waits for its replicas (``USSD_REDIS_MIN_REPLICAS``): most of the
    Redis time-out, so that Redis answers the WAIT before the socket gives up on it."""
    return int(settings.redis_timeout * 800)


def fill_embedded_store(service: UssdService, settings: Settings) -> None:
    """Load the start-up data into this process's embedded store: the demo, then the seed
    files (a file's row for a demo number is then one stored already: kept, unless
    ``seed_replace``), as ``ussd serve`` loads them into a Redis."""
    from .demo import load_demo
    from .seed import load_files

    if settings.demo:
        load_demo(service)
    if settings.seed_files:
        from .commands import told_loaded
        from .months import month_of

        for data, count in load_files(service.store, settings.seed_files,
                                      month_of(service.clock(), service.zone),
                                      replace=settings.seed_replace):
            log.info("seed: %s", told_loaded(data, count, replace=settings.seed_replace))


def build_relay(settings: Settings, store: Store | None = None) -> Relay:
    """The relay for ``settings`` (``ussd relay``), on ``store`` or on the Redis ``settings``
    name; ConfigError without ``USSD_BILLING_URL``. Without ``USSD_SMS_URL`` it sends no SMS."""
    import logging
    from functools import partial

    from .billing.client import BillingClient
    from .billing.receipt import receipt_of
    from .billing.relay import BLOCK_MS, Relay
    from .billing.sms import SmsClient

    # The relay logs each call's outcome itself; httpx's line per request would double it.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    billing = settings.billing
    if not billing.url:
        raise ConfigError("USSD_BILLING_URL is not set: the relay has nowhere to deliver the "
                          "outbox's events")
    if store is None:
        store = Store(connect(settings), prefix=settings.key_prefix)
    sms = receipt = None
    if billing.sms_url:
        sms = SmsClient(billing.sms_url, billing.sms_username, billing.sms_api_key,
                        billing.sms_sender, billing.timeout)
        receipt = partial(receipt_of, load_menu(settings.menus_dir, settings.policy),
                          policy=settings.policy)
    return Relay(
        store.outbox, BillingClient(billing.url, billing.token, billing.timeout),
        sms=sms, receipt=receipt, max_attempts=billing.max_attempts,
        claim_after=billing.claim_after, backoff_first=billing.backoff,
        backoff_most=billing.backoff_max, concurrency=billing.concurrency,
        # A read waits on Redis for new entries: well within the client's own timeout.
        block_ms=min(BLOCK_MS, int(settings.redis_timeout * 500)))


def worker_app(settings: Settings, target: str | None = None) -> Any:
    """The WSGI app of one ``ussd serve`` worker process, built from the server's settings.

    Given to granian as its target loader (``target``, the name granian passes, is unused):
    each worker builds its own app, store connections and, on the embedded store, its own
    demo data, from the very settings the command checked before serving.
    """
    import gc

    from .web import create_app

    app = create_app(settings)
    if settings.redis_url is None and settings.billing.url:
        # The embedded store lives in this process only: its relay must too.
        import threading

        relay = build_relay(settings, app.extensions["ussd"].store)
        threading.Thread(target=relay.run, name="relay", daemon=True).start()
    # What is alive now (the modules, the app, the menu, the caches' first entries) lives as
    # long as the process: the collector need not walk it again. Its full collections cost a
    # hop about 1.8 us on average before, 0.3 us after (in-process, 20,000 hops).
    gc.collect()
    gc.freeze()
    return app
