"""``ussd seed``: load subscriber and consumption CSV files into Redis (registered on the group
in ``cli.py``)."""

from __future__ import annotations

import sys

import click


@click.command()
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check the files; store nothing.")
def seed(files: tuple[str, ...], dry_run: bool) -> None:
    """Load subscriber and consumption CSV files into the Redis at REDIS_URL.

    Every file is checked whole first (a bad row, a consumption row of an unknown subscriber or
    of a month not begun, an empty file: nothing is stored), reading each once, in memory that
    does not grow with the files.
    """
    from .cli import _fail_on_error, _redis_service
    from .months import month_of
    from .seed import load_files

    service = _redis_service()
    this_month = month_of(service.clock(), service.zone)
    with _ProgressBars() as progress:
        loaded = _fail_on_error(lambda: load_files(service.store, files, this_month,
                                                   dry_run=dry_run, progress=progress))
    for data, count in loaded:
        verb = "checked, nothing stored (--dry-run)" if dry_run else "loaded"
        click.echo(f"{data.path}: {count} {data.kind.value} row(s) {verb}")


class _ProgressBars:
    """A progress bar per phase of a load, on a terminal only (``seed.Progress``)."""

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
