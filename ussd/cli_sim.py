"""``ussd sim``: dial #121# like a handset, through any gateway's dialect (ussd/sim.py).

Registered on the ``ussd`` group by :mod:`ussd.cli`. Inputs come from ``--input`` values, or
are typed: at a terminal with line editing and a history (Python's ``readline``, kept in
``~/.ussd_sim_history`` from one run to the next), from a pipe echoed after the prompt so that
a transcript reads as a dialogue. ``--show-length`` prints each screen's length and alphabet
under it. The browser simulator (``/simulator``) downloads its transcripts as these very
command lines.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from .contract import Reply
from .errors import SimulatorError
from .gateways import DIALECTS, dialect
from .text import GSM_LIMIT, measure

HISTORY = Path("~/.ussd_sim_history")
HISTORY_LENGTH = 1000
BAR = "+----------------------------"


@click.command()
@click.option("--url", default="http://127.0.0.1:8000", show_default=True,
              help="The server to dial.")
@click.option("--gateway", type=click.Choice(DIALECTS),
              default="africastalking", show_default=True, help="The dialect to speak.")
@click.option("--msisdn", default="+2250700000001", show_default=True,
              help="The subscriber's number.")
@click.option("--dial", default="#121#", show_default=True, help="The code dialled.")
@click.option("--input", "inputs", multiple=True,
              help="An input to send (repeatable); none: interactive.")
@click.option("--hang-up", "hang_up", is_flag=True,
              help="After the inputs, hang up (the gateway reports it) instead of ending.")
@click.option("--time-out", "time_out", is_flag=True,
              help="After the inputs, let the session time out (the gateway reports it).")
@click.option("--show-length", is_flag=True,
              help="Print each screen's length and alphabet (GSM 03.38: 182, UCS-2: 80).")
@click.option("--token", default=None,
              help="The gateway's token (default: USSD_<GATEWAY>_TOKEN).")
@click.option("--user", default=None,
              help="HTTP basic user (default: from USSD_<GATEWAY>_BASIC_AUTH).")
@click.option("--password", default=None,
              help="HTTP basic password (default: from USSD_<GATEWAY>_BASIC_AUTH).")
def sim(url: str, gateway: str, msisdn: str, dial: str, inputs: tuple[str, ...],
        hang_up: bool, time_out: bool, show_length: bool, token: str | None,
        user: str | None, password: str | None) -> None:
    """Dial #121# like a handset through a gateway: play --input values, or type them."""
    from .sim import Credentials, Handset

    if hang_up and time_out:
        raise click.UsageError("--hang-up and --time-out are exclusive: a session ends once")
    ending = "hang_up" if hang_up else "time_out" if time_out else None
    credentials = Credentials.from_env(gateway)
    if token or user:
        credentials = Credentials(token=token, user=user, password=password)
    handset = Handset(dialect(gateway), url, msisdn, dial, credentials)
    try:
        screen = handset.start()
        show(screen, show_length)
        if inputs or ending:
            for position, text in enumerate(inputs):
                if screen.end:
                    unused = len(inputs) - position
                    raise SimulatorError(f"the session ended with {unused} input(s) unused")
                click.echo(f"> {text}")
                screen = handset.send(text)
                show(screen, show_length)
            if ending:
                if screen.end:
                    raise SimulatorError("the session ended before it could be left")
                getattr(handset, ending)()
                click.echo("(hung up)" if ending == "hang_up" else "(timed out)")
            return
        with prompt() as typed:
            while not screen.end:
                text = typed()
                if text is None:
                    handset.hang_up()
                    click.echo("(hung up)")
                    return
                screen = handset.send(text)
                show(screen, show_length)
    except SimulatorError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)


def show(screen: Reply, show_length: bool = False) -> None:
    """A screen as the handset shows it, in a box; with its length and alphabet if asked."""
    click.echo(f"{BAR} {'END' if screen.end else 'CON'}")
    for line in screen.text.split("\n"):
        click.echo(f"| {line}")
    if show_length:
        length, limit = measure(screen.text)
        alphabet = "GSM 03.38" if limit == GSM_LIMIT else "UCS-2"
        click.echo(f"{BAR} {length}/{limit} {alphabet}")
    else:
        click.echo(BAR)


@contextlib.contextmanager
def prompt():
    """A function reading the next input (None when there is no more: Ctrl-D, the pipe's end,
    Ctrl-C). At a terminal: ``input`` with readline's editing and a history kept in
    ``HISTORY``; from a pipe: the line, echoed after the prompt."""
    if not sys.stdin.isatty():
        def piped() -> str | None:
            click.echo("> ", nl=False)
            line = sys.stdin.readline()
            if not line:
                click.echo()
                return None
            text = line.rstrip("\r\n")
            click.echo(text)  # the transcript reads as a dialogue: "> 1", then the screen
            return text

        yield piped
        return
    history = _history()

    def typed() -> str | None:
        try:
            return input("> ")
        except (EOFError, KeyboardInterrupt):
            click.echo()
            return None

    try:
        yield typed
    finally:
        if history is not None:
            with contextlib.suppress(OSError):
                history.write_history_file(HISTORY.expanduser())


def _history():
    """readline, set up with the history of earlier runs; None where Python has none."""
    try:
        import readline
    except ImportError:  # Windows: plain input, no editing
        return None
    readline.set_history_length(HISTORY_LENGTH)
    with contextlib.suppress(OSError):
        readline.read_history_file(HISTORY.expanduser())
    return readline
