"""The ``ussd`` command: serve, show, migrate, prune, and the handset simulator (seed is in
cli_seed.py; the billing commands, relay, events and stub-billing, in cli_billing.py)."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from .errors import SimulatorError, UssdError
from .gateways import DIALECTS, dialect
from .logs import LOG_FORMAT, LineHandler, LogFormatter


@click.group()
@click.version_option(package_name="ussd121")
def main() -> None:
    """The #121# profile-change USSD service."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Worker processes (default: one per CPU; always 1 on the embedded store).")
@click.option("--demo", is_flag=True, help="Load the demo subscribers (see the README).")
@click.option("--seed", "seed_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="CSV file of subscribers or consumption to load first (repeatable).")
@click.option("--threads", type=click.IntRange(1, 32), default=None,
              help="Python threads per worker (default: 3, see bench/README.md).")
@click.option("--insecure", is_flag=True,
              help="Serve gateway endpoints that have no secret even with a Redis (only where "
                   "nothing but the gateway can reach this server).")
def serve(host: str, port: int, workers: int | None, threads: int | None, demo: bool,
          seed_files: tuple[str, ...], insecure: bool):
    """Serve the USSD endpoints and the HTTP API with granian (a production WSGI server)."""
    from dataclasses import replace

    from .api import api_clients, api_summary
    from .api.clients import new_demo_tokens
    from .assembly import worker_app
    from .auth import check_gateway_security
    from .cli_billing import billing_banner
    from .gateways import DIALECTS
    from .menu_files import load_menu
    from .months import month_of
    from .seed import check_file

    settings = _settings()
    # Skip what our format does not show (the thread and process names): logging's documented
    # switches. The hop line itself is written without logging (ussd.logs). Workers inherit it.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    if insecure:
        settings = replace(settings, insecure=True)
    unprotected = _fail_on_error(lambda: check_gateway_security(settings, DIALECTS))
    _fail_on_error(lambda: load_menu(settings.menus_dir, settings.policy))
    this_month = month_of(datetime.now(UTC), settings.zone)
    for path in seed_files:
        _fail_on_error(lambda path=path: check_file(path, this_month))
    if settings.redis_url is None:
        click.echo("No REDIS_URL set: serving from the embedded in-process store "
                   "(data lives only as long as the server; one worker).")
        # The worker fills its own store: these settings are handed to it (worker_app), the
        # demo API clients' tokens too, made here to be printed.
        settings = replace(settings, demo=demo, api_demo_tokens=new_demo_tokens() if demo else {},
                           seed_files=tuple(str(Path(f).resolve()) for f in seed_files))
        workers = 1
    else:
        click.echo(f"Using Redis at {_redacted(settings.redis_url)}")
        _load_into_redis(settings, demo, seed_files)
        settings = replace(settings, demo=False, seed_files=())  # loaded once, above
        workers = workers or default_workers()
    if unprotected:
        click.echo(f"WARNING: no secret for the gateway endpoint(s) {', '.join(unprotected)}: "
                   "anyone who can reach this server can drive a session (see USSD_<DIALECT>_"
                   "TOKEN in the README).")
    for line in billing_banner(settings):
        click.echo(line)
    served = settings.gateways or DIALECTS
    click.echo(f"Serving #121# on http://{host}:{port} ({workers} worker(s)): "
               + ", ".join(f"/ussd/{name}" for name in served))
    clients = _fail_on_error(lambda: api_clients(settings, settings.redis_url is None))
    click.echo("\n".join(api_summary(clients, settings, f"http://{host}:{port}")))
    # Each worker builds its app from these very settings, not from the environment.
    granian_server("ussd.wsgi:app", host, port, workers, threads).serve(
        target_loader=functools.partial(worker_app, settings))


# Python threads per worker: while one thread waits on Redis another runs. Measured on 2 cores
# (bench/README.md): 3 threads serve 10-15% more hops than 2 (the ceiling app as many or a
# few more), and 4 fewer than 3.
DEFAULT_THREADS = 3
# Requests a worker takes on at once beyond its threads wait in its queue, not in the kernel.
BACKPRESSURE_PER_THREAD = 8
# A gateway waits a few seconds for a hop: a client that has not sent its headers by then is
# not a gateway worth a worker. Redis calls are bounded by USSD_REDIS_TIMEOUT (1 s).
HEADER_READ_TIMEOUT_MS = 2_000
# On shutdown, hops in flight get this long to finish before their worker is killed.
WORKERS_KILL_TIMEOUT_S = 5


def default_workers() -> int:
    """One worker per CPU this process may run on (a container's CPU set, not the host's)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def granian_server(target: str, host: str, port: int, workers: int, threads: int | None = None,
                   working_dir: str | None = None):
    """The granian WSGI server ``ussd serve`` runs (``bench/run.py`` serves its ceiling app
    with it too, so that both are measured on the same server settings)."""
    from granian import Granian
    from granian.http import HTTP1Settings

    threads = threads or DEFAULT_THREADS
    return Granian(
        target,
        address=host,
        port=port,
        interface="wsgi",
        workers=workers,
        blocking_threads=threads,
        backpressure=threads * BACKPRESSURE_PER_THREAD,
        http="1",  # gateways speak HTTP/1.1
        websockets=False,
        http1_settings=HTTP1Settings(header_read_timeout=HEADER_READ_TIMEOUT_MS, keep_alive=True),
        respawn_failed_workers=True,
        workers_kill_timeout=WORKERS_KILL_TIMEOUT_S,
        log_access=False,
        working_dir=Path(working_dir) if working_dir else None,
    )


@main.command()
@click.argument("msisdn")
def show(msisdn: str) -> None:
    """Print as JSON what is stored for a subscriber."""
    from .months import month_of
    from .phone import normalize_msisdn

    service = _redis_service()
    number = _fail_on_error(lambda: normalize_msisdn(msisdn))
    record = _fail_on_error(
        lambda: service.store.admin.describe(number, month_of(service.clock(), service.zone))
    )
    if record is None:
        raise click.ClickException(f"no subscriber {number}")
    click.echo(json.dumps(record, indent=2, ensure_ascii=False))


@main.command()
@click.argument("msisdn")
@click.argument("profile")
@click.option("--channel", type=click.Choice(["web", "app", "care"]), default="web",
              show_default=True)
def migrate(msisdn: str, profile: str, channel: str) -> None:
    """Migrate a subscriber as the web customer area, the app or customer care would: the same
    rules and the same path as the HTTP API (recorded as asked by ``cli``)."""
    from .phone import normalize_msisdn
    from .rules import Channel

    service = _redis_service()
    number = _fail_on_error(lambda: normalize_msisdn(msisdn))
    decision = _fail_on_error(lambda: service.migrate(number, profile, Channel(channel), "cli"))
    click.echo(json.dumps({
        "reason": decision.reason.value,
        "approved": decision.approved,
        "current": decision.current and decision.current.value,
        "target": decision.target and decision.target.value,
        "required": decision.required,
        "consumed": decision.consumed,
        "migrations_left": decision.migrations_left,
    }, indent=2))
    if not decision.approved:
        sys.exit(1)


@main.command()
@click.option("--keep-months", type=click.IntRange(1, 120), default=1, show_default=True,
              help="Months kept before the current one (1: last month, which the rules read).")
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
def prune(keep_months: int, dry_run: bool) -> None:
    """Delete the consumption and migration counts of old months from every subscriber.

    The rules read only last month's consumption and this month's migrations; each month
    kept adds two fields per subscriber. The migration history is kept whole. Run it once a
    month, after the 1st (a hop in flight across midnight still reads the month before).
    """
    from .months import month_of, previous_month

    service = _redis_service()
    keep_from = month_of(service.clock(), service.zone)
    for _ in range(keep_months):
        keep_from = previous_month(keep_from)
    report = _fail_on_error(lambda: service.store.admin.prune_months(keep_from, dry_run=dry_run))
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"months before {keep_from}: {verb} {report.fields} field(s) of "
               f"{report.changed} subscriber(s); {report.subscribers} subscriber(s) visited")


@main.command()
@click.option("--url", default="http://127.0.0.1:8000", show_default=True,
              help="The server to dial.")
@click.option("--gateway", type=click.Choice(DIALECTS),
              default="africastalking", show_default=True, help="The dialect to speak.")
@click.option("--msisdn", default="+2250700000001", show_default=True,
              help="The subscriber's number.")
@click.option("--dial", default="#121#", show_default=True, help="The code dialled.")
@click.option("--input", "inputs", multiple=True,
              help="An input to send (repeatable); none: interactive.")
@click.option("--hang-up", "ending", flag_value="hang_up",
              help="After the inputs, hang up (the gateway reports it) instead of ending.")
@click.option("--time-out", "ending", flag_value="time_out",
              help="After the inputs, let the session time out (the gateway reports it).")
@click.option("--token", default=None,
              help="The gateway's token (default: USSD_<GATEWAY>_TOKEN).")
@click.option("--user", default=None,
              help="HTTP basic user (default: from USSD_<GATEWAY>_BASIC_AUTH).")
@click.option("--password", default=None,
              help="HTTP basic password (default: from USSD_<GATEWAY>_BASIC_AUTH).")
def sim(url: str, gateway: str, msisdn: str, dial: str, inputs: tuple[str, ...],
        ending: str | None, token: str | None, user: str | None, password: str | None) -> None:
    """Dial #121# like a handset through a gateway: play --input values, or type them."""
    from .sim import Credentials, Handset

    credentials = Credentials.from_env(gateway)
    if token or user:
        credentials = Credentials(token=token, user=user, password=password)
    handset = Handset(dialect(gateway), url, msisdn, dial, credentials)
    try:
        screen = handset.start()
        _show(dial, screen)
        if inputs or ending:
            for position, text in enumerate(inputs):
                if screen.end:
                    unused = len(inputs) - position
                    raise SimulatorError(f"the session ended with {unused} input(s) unused")
                click.echo(f"> {text}")
                screen = handset.send(text)
                _show(text, screen)
            if ending:
                if screen.end:
                    raise SimulatorError("the session ended before it could be left")
                getattr(handset, ending)()
                click.echo("(hung up)" if ending == "hang_up" else "(timed out)")
            return
        while not screen.end:
            try:
                text = click.prompt(">", default="", show_default=False, prompt_suffix=" ")
            except (click.Abort, EOFError):
                handset.hang_up()
                click.echo("\n(hung up)")
                return
            screen = handset.send(text)
            _show(text, screen)
    except SimulatorError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)


def _show(sent: str, screen) -> None:
    bar = "END" if screen.end else "CON"
    click.echo(f"+---------------------------- {bar}")
    for line in screen.text.split("\n"):
        click.echo(f"| {line}")
    click.echo("+----------------------------")


def _settings():
    from .settings import Settings

    handler = LineHandler()
    handler.setFormatter(LogFormatter(LOG_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    return _fail_on_error(Settings.from_env)


def _redis_service():
    """The service on the Redis at REDIS_URL; a clear error when there is none."""
    from .assembly import build_service

    settings = _settings()
    if settings.redis_url is None:
        raise click.ClickException(
            "REDIS_URL is not set: this command works on a Redis server "
            "(for example REDIS_URL=redis://127.0.0.1:6379/0)"
        )
    service = _fail_on_error(lambda: build_service(settings))
    if not service.store.ping():
        raise click.ClickException(f"cannot reach Redis at {_redacted(settings.redis_url)}")
    return service


def _load_into_redis(settings, demo: bool, seed_files: tuple[str, ...]) -> None:
    from .demo import load_demo
    from .months import month_of
    from .seed import load_files

    service = _redis_service()
    this_month = month_of(service.clock(), service.zone)
    for data, count in _fail_on_error(lambda: load_files(service.store, seed_files, this_month)):
        click.echo(f"{data.path}: {count} {data.kind.value} row(s) loaded")
    if demo:
        click.echo(f"Demo data set: {_fail_on_error(lambda: load_demo(service))} subscribers")


def _redacted(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def _fail_on_error(action):
    """Run ``action``; turn our errors into a one-line message and exit status 1."""
    try:
        return action()
    except UssdError as error:
        raise click.ClickException(str(error)) from None


def _register() -> None:
    """Commands in modules of their own: seed (cli_seed.py), billing's (cli_billing.py)."""
    from .cli_billing import events, relay, stub_billing
    from .cli_seed import seed

    for command in (seed, relay, events, stub_billing):
        main.add_command(command)


_register()

if __name__ == "__main__":
    main()
