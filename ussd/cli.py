"""The ``ussd`` command: serve here; seed, show, migrate, prune and log-hash in
:mod:`ussd.commands`; relay, events and stub-billing in :mod:`ussd.cli_billing`; menu in
:mod:`ussd.cli_menu`; the handset simulator (sim) in :mod:`ussd.cli_sim`."""

from __future__ import annotations

import errno
import functools
import logging
from datetime import UTC, datetime
from pathlib import Path

import click

from . import simulator
from .cli_billing import events, relay, stub_billing
from .cli_menu import menu
from .cli_sim import sim
from .commands import fail_on_error as _fail_on_error
from .commands import log_hash, migrate, move_to_buckets, prune, seed, show
from .commands import redacted as _redacted
from .commands import redis_service as _redis_service
from .commands import settings_from_env as _settings
from .commands import told_loaded as _told_loaded
from .gateways import DIALECTS

# Where bench/ has always found them (they live in ussd.server, with the rest of serving).
from .server import DEFAULT_THREADS as DEFAULT_THREADS
from .server import default_workers as default_workers
from .server import granian_server as granian_server


@click.group()
@click.version_option(package_name="ussd121")
def main() -> None:
    """The #121# profile-change USSD service."""


def _listen_address(_context, _parameter, value: str) -> str:
    from .server import listen_address

    try:
        return listen_address(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an IP address (granian listens on an "
                                 "address, not a name: 127.0.0.1, ::1, 0.0.0.0, ::)") from None


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, callback=_listen_address,
              help="IP address to listen on (0.0.0.0 or :: for every interface).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Worker processes (default: one per CPU; always 1 on the embedded store).")
@click.option("--demo", is_flag=True, help="Load the demo subscribers (see the README); with a "
              "Redis, only into one that holds no data.")
@click.option("--reset", is_flag=True, help="With --demo and a Redis: delete the demo numbers' "
              "keys (and only those) first.")
@click.option("--seed", "seed_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="CSV file of subscribers or consumption to load first (repeatable; all "
                   "checked first, none loaded if one is bad; as ussd seed: the subscribers "
                   "stored already left as they are).")
@click.option("--replace", "replace_stored", is_flag=True,
              help="With --seed: overwrite the profile and language of the subscribers "
                   "stored already (in the Redis, or by an earlier file) with the files'.")
@click.option("--threads", type=click.IntRange(1, 32), default=None,
              help="Hops a worker runs at once, the others waiting their turn (default: 3, "
                   "see bench/README.md).")
@click.option("--insecure", is_flag=True,
              help="Serve gateway endpoints that have no secret even with a Redis (only where "
                   "nothing but the gateway can reach this server).")
def serve(host: str, port: int, workers: int | None, threads: int | None, demo: bool,
          reset: bool, seed_files: tuple[str, ...], replace_stored: bool, insecure: bool):
    """Serve the USSD endpoints and the HTTP API with granian (a production WSGI server)."""
    from .server import remove_metrics_dir, shared_metrics

    metrics_dir = shared_metrics()  # first: before anything imports prometheus_client
    try:
        _serve(host, port, workers, threads, demo, reset, seed_files, replace_stored, insecure)
    finally:
        remove_metrics_dir(metrics_dir)


def _serve(host: str, port: int, workers: int | None, threads: int | None, demo: bool,
           reset: bool, seed_files: tuple[str, ...], replace_stored: bool,
           insecure: bool) -> None:
    from dataclasses import replace

    from .api import api_clients, api_summary
    from .api.clients import load_clients, new_demo_tokens
    from .assembly import worker_app
    from .auth import check_gateway_security
    from .cli_billing import billing_banner
    from .demo import figures_note
    from .menu_files import load_menu
    from .months import month_of
    from .seed import check_files
    from .server import (
        MAX_IN_FLIGHT,
        authority,
        check_address,
        default_workers,
        granian_server,
        serving_limits,
        start_metrics_listener,
    )

    settings = _settings()
    if reset and not demo:
        raise click.UsageError("--reset goes with --demo (it deletes the demo numbers' keys)")
    if replace_stored and not seed_files:
        raise click.UsageError("--replace goes with --seed (it overwrites the subscribers "
                               "stored already with the files')")
    address = authority(host, port)
    try:  # before anything is loaded: a port in use would be shared, not refused (server.py)
        check_address(host, port)
    except OSError as error:
        busy = " (another server listening there?)" if error.errno == errno.EADDRINUSE else ""
        raise click.ClickException(f"cannot serve on {address}: {error.strerror or error}{busy}"
                                   ) from None
    # Skip what our format does not show (the thread and process names): logging's documented
    # switches. The hop line itself is written without logging (ussd.logs). Workers inherit it.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    if insecure:
        settings = replace(settings, insecure=True)
    if demo:  # the browser simulator beside the demo (ussd/simulator)
        settings = replace(settings, simulator=True)
    unprotected = _fail_on_error(lambda: check_gateway_security(settings, DIALECTS))
    _fail_on_error(lambda: load_menu(settings.menus_dir, settings.policy))
    if demo and (note := figures_note(settings.policy)):
        click.echo(note)
    if settings.api_clients is not None:  # a bad clients file stops the start, Redis untouched
        _fail_on_error(lambda: load_clients(settings.api_clients))
    this_month = month_of(datetime.now(UTC), settings.zone)
    _fail_on_error(lambda: check_files(seed_files, this_month))  # every bad file named
    if settings.redis_url is None:
        click.echo("No REDIS_URL set: serving from the embedded in-process store "
                   "(data lives only as long as the server; one worker).")
        # The worker fills its own store: these settings are handed to it (worker_app), the
        # demo API clients' tokens too, made here to be printed.
        settings = replace(settings, demo=demo, api_demo_tokens=new_demo_tokens() if demo else {},
                           seed_files=tuple(str(Path(f).resolve()) for f in seed_files),
                           seed_replace=replace_stored)
        workers = 1
    else:
        click.echo(f"Using Redis at {_redacted(settings.redis_url)}")
        _load_into_redis(settings, demo, reset, seed_files, replace_stored)
        settings = replace(settings, demo=False, seed_files=())  # loaded once, above
        workers = workers or default_workers()
    if unprotected:
        click.echo(f"WARNING: no secret for the gateway endpoint(s) {', '.join(unprotected)}: "
                   "anyone who can reach this server can drive a session (see USSD_<DIALECT>_"
                   "TOKEN in the README).")
    if settings.log_key is None:
        click.echo("Note: USSD_LOG_KEY is not set: log lines carry the masked number only, "
                   "no subscriber hash to find one subscriber's lines by.")
    for line in billing_banner(settings):
        click.echo(line)
    served = settings.gateways or DIALECTS
    click.echo(f"Serving #121# on http://{address} ({workers} worker(s)): "
               + ", ".join(f"/ussd/{name}" for name in served))
    clients = _fail_on_error(lambda: api_clients(settings, settings.redis_url is None))
    click.echo("\n".join(api_summary(clients, settings, f"http://{address}")))
    if simulator.enabled(settings):
        guarded = " (HTTP basic auth: USSD_SIMULATOR_AUTH)" if settings.simulator_auth else ""
        click.echo(f"Browser simulator on http://{address}/simulator/{guarded}")
    elif settings.simulator:
        click.echo("Browser simulator off: on a Redis it needs USSD_SIMULATOR_AUTH.")
    if settings.metrics_port is not None:
        metrics_host = settings.metrics_host or host
        try:
            start_metrics_listener(metrics_host, settings.metrics_port)
        except OSError as error:
            raise click.ClickException(f"cannot serve metrics on {metrics_host}:"
                                       f"{settings.metrics_port}: {error.strerror}") from None
        click.echo(f"Metrics on http://{metrics_host}:{settings.metrics_port}/metrics")
    # Each worker builds its app from these very settings, not from the environment.
    # granian needs a target's name; the loader below builds the app instead of importing it.
    settings = replace(settings, limits=serving_limits(settings.limits, threads))
    granian_server("ussd.wsgi:app", host, port, workers, threads, in_flight=MAX_IN_FLIGHT).serve(
        target_loader=functools.partial(worker_app, settings))


def _load_into_redis(settings, demo: bool, reset: bool, seed_files: tuple[str, ...],
                     replace_stored: bool) -> None:
    """Load the demo and the seed files into the Redis, once, before serving: the demo only
    where it overwrites nothing (checked before anything is written, see ``demo.make_room``),
    then the files, the subscribers stored already (a demo number too) left as they are
    (``replace_stored``: overwritten), as ``ussd seed``."""
    from .demo import DEMO_RANGE, load_demo, make_room
    from .months import month_of
    from .seed import load_files

    service = _redis_service(settings)
    if demo:
        click.echo(f"Demo: {_fail_on_error(lambda: make_room(service, reset))}")
        count = _fail_on_error(lambda: load_demo(service))
        click.echo(f"Demo data set: {count} subscribers, {DEMO_RANGE}")
    this_month = month_of(service.clock(), service.zone)
    loaded = _fail_on_error(lambda: load_files(service.store, seed_files, this_month,
                                               replace=replace_stored))
    for data, count in loaded:
        click.echo(_told_loaded(data, count, replace=replace_stored))


for command in (seed, show, migrate, prune, log_hash, move_to_buckets, relay, events,
                stub_billing, menu, sim):
    main.add_command(command)

if __name__ == "__main__":
    main()
