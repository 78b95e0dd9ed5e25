"""The operator's ``ussd`` commands on a Redis: seed, show, migrate, prune, and log-hash;
and what every command shares (the settings and logging, the service on Redis, errors)."""

from __future__ import annotations

import json
import sys

import click

from .errors import UssdError


@click.command()
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check the files and count the subscribers "
              "stored already; store nothing.")
@click.option("--replace", is_flag=True, help="Overwrite the profile and language of the "
              "subscribers stored already with the files' (default: leave them as they are).")
def seed(files: tuple[str, ...], dry_run: bool, replace: bool) -> None:
    """Load subscriber and consumption CSV files into the Redis at REDIS_URL.

    A subscribers file adds the subscribers not stored yet; a subscriber stored already keeps
    the profile and language it has now (it may have migrated, or chosen its language, since
    the file was made), unless --replace. A consumption row sets its subscriber's total for
    the month, replacing any figure stored: billing's figure is the truth.

    Every file is checked whole first, reading each once (a file on disk: its header line is
    read before, to order them), in memory that does not grow with the files. If any file is
    bad (a bad row, a consumption row of an unknown subscriber or of a month not begun, an
    empty file), nothing of any file is stored, and one run names every bad file with its bad
    rows (exit status 1).
    """
    from .months import month_of
    from .seed import load_files

    service = redis_service()
    this_month = month_of(service.clock(), service.zone)
    with _ProgressBars() as progress:
        loaded = fail_on_error(lambda: load_files(service.store, files, this_month,
                                                  dry_run=dry_run, progress=progress,
                                                  replace=replace))
    for data, count in loaded:
        click.echo(told_loaded(data, count, dry_run, replace))


def told_loaded(data, count: int, dry_run: bool = False, replace: bool = False) -> str:
    """What ``ussd seed`` and ``ussd serve --seed`` say of a file loaded (``dry_run``: checked;
    ``seed.load_files``): its rows, and of a subscribers file how many were (or would be)
    added, and how many were stored already, left as they are or overwritten."""
    said = (f"{data.path}: {count} {data.kind.value} row(s) "
            + ("checked, nothing stored (--dry-run)" if dry_run else "loaded"))
    if data.stored is None:  # consumption
        return said
    added, stored = count - data.stored, data.stored
    said += (f": {added} would be added, {stored} already stored" if dry_run
             else f": {added} added, {stored} already stored")
    if stored and replace:
        said += " would be overwritten (--replace)" if dry_run else " and overwritten (--replace)"
    elif stored:
        said += (" would be left as they are" if dry_run else " and left as they are") + (
            " (--replace overwrites their profile and language)")
    return said


class _ProgressBars:
    """A progress bar per phase of a load, on a terminal only (``seed_staging.Progress``)."""

    def __init__(self):
        self.bar = None
        self.phase = None
        self.shown = sys.stderr.isatty()

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.shown:
            return
        if phase != self.phase:
            self.__exit__()
            self.phase = phase
            self.bar = click.progressbar(length=max(total, 1), label=phase, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.bar.pos)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@click.command()
@click.argument("msisdn")
def show(msisdn: str) -> None:
    """Print as JSON what is stored for a subscriber."""
    from .months import month_of
    from .phone import normalize_msisdn

    service = redis_service()
    number = fail_on_error(lambda: normalize_msisdn(msisdn))
    record = fail_on_error(
        lambda: service.store.admin.describe(number, month_of(service.clock(), service.zone))
    )
    if record is None:
        raise click.ClickException(f"no subscriber {number}")
    click.echo(json.dumps(record, indent=2, ensure_ascii=False))


@click.command()
@click.argument("msisdn")
@click.argument("profile")
@click.option("--channel", type=click.Choice(["web", "app", "care"]), default="web",
              show_default=True)
def migrate(msisdn: str, profile: str, channel: str) -> None:
    """Migrate a subscriber as the web customer area, the app or customer care would: the same
    rules and the same path as the HTTP API (recorded as asked by ``cli``)."""
    from .phone import normalize_msisdn
    from .rules import Channel

    service = redis_service()
    number = fail_on_error(lambda: normalize_msisdn(msisdn))
    decision = fail_on_error(
        lambda: service.migrate(number, profile, Channel(channel), client="cli"))
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


@click.command()
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

    service = redis_service()
    keep_from = month_of(service.clock(), service.zone)
    for _ in range(keep_months):
        keep_from = previous_month(keep_from)
    report = fail_on_error(lambda: service.store.admin.prune_months(keep_from, dry_run=dry_run))
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"months before {keep_from}: {verb} {report.fields} field(s) of "
               f"{report.changed} subscriber(s); {report.subscribers} subscriber(s) visited")


@click.command("move-to-buckets")
@click.option("--dry-run", is_flag=True, help="Count what would move; move nothing.")
def move_to_buckets(dry_run: bool) -> None:
    """Move subscribers stored before the outbox (keys tagged {+225...}) to their buckets.

    Run it once, with the servers stopped, when upgrading a Redis that holds data from before
    the billing outbox: this version reads the subscribers under their buckets' tags only.
    Says how many keys it left: those whose new key exists already, and those matching the
    old layout that it did not recognise (counted, not named).
    """
    service = redis_service()
    report = fail_on_error(lambda: service.store.admin.move_to_buckets(dry_run))
    told = [f"{report.moved} key(s) {'would move' if dry_run else 'moved'} to their buckets"]
    if report.clashes:
        told.append(f"{report.clashes} left where a key of the new layout exists already")
    if report.unrecognised:  # counted, not named: a key's name may hold a number
        told.append(f"{report.unrecognised} other key(s) matching "
                    f"{service.store.keys.old_layout_pattern()} left, not recognised (no "
                    "subscriber's hash, history or session under a normalised number)")
    click.echo("; ".join(told))


@click.command("log-hash")
@click.argument("msisdn")
def log_hash(msisdn: str) -> None:
    """Print the hash log lines carry for a subscriber (USSD_LOG_KEY), to find their lines."""
    from .observe import subscriber_hash
    from .phone import normalize_msisdn
    from .settings import Settings

    settings = fail_on_error(Settings.from_env)
    if settings.log_key is None:
        raise click.ClickException("USSD_LOG_KEY is not set: it must be the key the servers "
                                   "log with")
    number = fail_on_error(lambda: normalize_msisdn(msisdn))
    click.echo(subscriber_hash(settings.log_key, number))


def settings_from_env():
    """The settings from the environment, and the log lines set up as they ask."""
    from .server import configure_logging
    from .settings import Settings

    settings = fail_on_error(Settings.from_env)
    configure_logging(settings)
    return settings


def redis_service(settings=None):
    """The service on the Redis at REDIS_URL; a clear error when there is none."""
    from .assembly import build_service

    settings = settings or settings_from_env()
    if settings.redis_url is None:
        raise click.ClickException(
            "REDIS_URL is not set: this command works on a Redis server "
            "(for example REDIS_URL=redis://127.0.0.1:6379/0)"
        )
    service = fail_on_error(lambda: build_service(settings))
    if not service.store.ping():
        raise click.ClickException(f"cannot reach Redis at {redacted(settings.redis_url)}")
    return service


def redacted(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def fail_on_error(action):
    """Run ``action``; turn our errors into a one-line message and exit status 1."""
    try:
        return action()
    except UssdError as error:
        raise click.ClickException(str(error)) from None
