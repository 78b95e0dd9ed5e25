"""The ``ussd`` commands of billing: ``relay``, ``events pending|dead|redrive`` and
``stub-billing`` (registered on the group in ``cli.py``)."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
import time

import click

# The queues' names (store.keys.QUEUES), written here: importing the store package would load
# prometheus_client before ``ussd serve`` could set its multi-process folder.
EVENTS, SMS = "events", "sms"
NOUNS = {EVENTS: ("event", "events"), SMS: ("SMS receipt", "SMS receipts")}
QUEUE = click.option("--queue", type=click.Choice([EVENTS, SMS]), default=EVENTS,
                     show_default=True, help="The billing events, or the SMS receipts.")


def billing_banner(settings) -> list[str]:
    """What ``ussd serve`` says at start-up about billing and the SMS receipts."""
    if settings.redis_url is not None:
        return ["Billing events wait in the Redis outbox until `ussd relay` delivers them "
                "(ussd events pending: what waits)"]
    if not settings.billing.url:
        return ["no USSD_BILLING_URL: migrations stay in this process's outbox and reach no "
                "billing"]
    return [f"Relaying migrations to billing at {settings.billing.url} (in this process)",
            f"SMS receipts through {settings.billing.sms_url}" if settings.billing.sms_url
            else "no USSD_SMS_URL: no SMS will be sent"]


@contextlib.contextmanager
def _store(settings):
    """The store on the Redis at REDIS_URL (a clear error when there is none), closed after."""
    from .commands import fail_on_error as _fail_on_error
    from .commands import redacted as _redacted
    from .store import Store, connect

    if settings.redis_url is None:
        raise click.ClickException(
            "REDIS_URL is not set: the outbox lives in Redis (with the embedded store, "
            "ussd serve runs the relay itself when USSD_BILLING_URL is set)")
    client = _fail_on_error(lambda: connect(settings))
    try:
        store = Store(client, prefix=settings.key_prefix)
        if not store.ping():
            raise click.ClickException(f"cannot reach Redis at {_redacted(settings.redis_url)}")
        yield store
    finally:
        client.close()


@click.command()
def relay() -> None:
    """Deliver the outbox: each migration's event to billing, then the subscriber's SMS.

    Runs until SIGTERM or Ctrl-C; run as many as you like, they share the work.
    """
    from .assembly import build_relay
    from .commands import fail_on_error as _fail_on_error
    from .commands import settings_from_env as _settings

    settings = _settings()
    with _store(settings) as store:
        _relay(settings, store, _fail_on_error(lambda: build_relay(settings, store)))


def _relay(settings, store, worker) -> None:
    from .billing.metrics import serve_metrics
    from .commands import redacted as _redacted

    click.echo(f"Relaying the outbox of {_redacted(settings.redis_url)} to "
               f"{settings.billing.url} as {worker.name}")
    if settings.billing.token is None:
        click.echo("no USSD_BILLING_TOKEN: billing is called without Authorization")
    if settings.billing.sms_url:
        click.echo(f"SMS receipts through {settings.billing.sms_url}")
    else:
        click.echo("no USSD_SMS_URL: no SMS will be sent")
    if settings.billing.metrics_port:
        serve_metrics(store.outbox, worker.queues, settings.billing.metrics_port)
        click.echo(f"Metrics on http://0.0.0.0:{settings.billing.metrics_port}/metrics")
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.stop())
    worker.run()


@click.group()
def events() -> None:
    """What waits in the outbox, what failed and why, and sending dead events again."""


@events.command()
@QUEUE
def pending(queue: str) -> None:
    """List the entries not delivered yet: age, attempts, holder, last error."""
    from .commands import fail_on_error as _fail_on_error
    from .commands import settings_from_env as _settings

    with _store(_settings()) as store:
        found = _fail_on_error(lambda: list(store.outbox.waiting(queue)))
    now = time.time()
    count = 0
    for waiting in found:
        count += 1
        age = now - int(waiting.entry.entry_id.split("-")[0]) / 1000
        click.echo(f"{waiting.entry.event_id}  {_describe(waiting.entry.body)}  "
                   f"waiting {age:.0f} s  attempts {waiting.attempts}  "
                   f"held by {waiting.holder or 'no relay yet'}"
                   + (f"  last error: {waiting.error}" if waiting.error else ""))
    click.echo(f"{_count(count, queue)} waiting")


@events.command()
@QUEUE
def dead(queue: str) -> None:
    """List the dead letters: given up on, with why."""
    from .commands import fail_on_error as _fail_on_error
    from .commands import settings_from_env as _settings

    with _store(_settings()) as store:
        letters = _fail_on_error(lambda: list(store.outbox.dead(queue)))
    for letter in letters:
        click.echo(f"{letter.entry.event_id}  {_describe(letter.entry.body)}  dead since "
                   f"{letter.at} after {letter.attempts} attempt(s): {letter.reason}")
    click.echo(f"{_count(len(letters), queue)} dead")


@events.command()
@click.argument("ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every dead letter of the queue.")
@QUEUE
def redrive(ids: tuple[str, ...], everything: bool, queue: str) -> None:
    """Send dead letters again (by event id, or --all), as they were first written."""
    from .commands import fail_on_error as _fail_on_error
    from .commands import settings_from_env as _settings

    if bool(ids) == everything:
        raise click.UsageError("give event ids, or --all")
    with _store(_settings()) as store:
        letters = _fail_on_error(lambda: list(store.outbox.dead(queue)))
        if ids:
            by_id = {letter.entry.event_id: letter for letter in letters}
            unknown = [event_id for event_id in ids if event_id not in by_id]
            if unknown:
                raise click.ClickException(f"no dead {NOUNS[queue][0]} {', '.join(unknown)}: "
                                           "nothing sent again")
            letters = [by_id[event_id] for event_id in dict.fromkeys(ids)]
        done = _fail_on_error(lambda: store.outbox.redrive(letters))
    click.echo(f"{_count(done, queue)} sent again"
               + (": " + ", ".join(letter.entry.event_id for letter in letters) if done else ""))


@click.command("stub-billing")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8090, show_default=True, type=click.IntRange(0, 65535),
              help="Billing's port.")
@click.option("--sms-port", default=8091, show_default=True, type=click.IntRange(0, 65535),
              help="The SMS provider's port.")
@click.option("--token", default=None, help="Refuse billing calls without this bearer token.")
@click.option("--api-key", default=None, help="Refuse SMS calls without this apiKey.")
def stub_billing(host: str, port: int, sms_port: int, token: str | None,
                 api_key: str | None) -> None:
    """Run a billing server and an SMS provider on loopback, for the demo: each prints what it
    receives. Make billing fail for a while with: curl -X POST <billing>/_stub/down?seconds=60
    """
    from .billing.stubs import BillingStub, SmsStub

    def echo(line: str) -> None:
        click.echo(f"{time.strftime('%H:%M:%S')} {line}")

    billing = BillingStub(host, port, token=token, echo=echo).start()
    sms = SmsStub(host, sms_port, api_key=api_key, echo=echo).start()
    click.echo(f"Billing stub on {billing.url}, SMS stub on {sms.url}; for the server and the "
               "relay:")
    click.echo(f"  export USSD_BILLING_URL={billing.url}events USSD_SMS_URL={sms.url}"
               "version1/messaging USSD_SMS_USERNAME=sandbox"
               + (f" USSD_BILLING_TOKEN={token}" if token else "")
               + (f" USSD_SMS_API_KEY={api_key}" if api_key else ""))
    click.echo(f"  billing outage: curl -X POST '{billing.url}_stub/down?seconds=60'")
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    billing.stop()
    sms.stop()
    click.echo(f"Stopped: billing applied {len(billing.applied)} event(s) "
               f"({len(billing.received)} call(s)), {len(sms.sent)} SMS sent")
    sys.stdout.flush()


def _count(count: int, queue: str) -> str:
    """``1 event``, ``2 events``, ``0 SMS receipts``."""
    return f"{count} {NOUNS[queue][count != 1]}"


def _describe(body: str) -> str:
    """An entry in a few words: the number and the migration (event) or the SMS's recipient."""
    fields = json.loads(body)
    if "from" in fields:
        return f"{fields['msisdn']} {fields['from']} -> {fields['to']} ({fields['channel']})"
    return f"SMS to {fields['to']}"
