"""``ussd sim`` as a tester runs it (ussd/cli_sim.py): piped inputs echoed, the exclusive
endings, each screen's length and alphabet, a dialect the server does not serve, and line
editing with a history at a real terminal (a pseudo-terminal, the command in a process of its
own against an app served on loopback)."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import fakeredis
import pytest
from click.testing import CliRunner
from conftest import NOW, seed_subscribers
from handsets import serving

from ussd.cli import main
from ussd.cli_sim import show
from ussd.contract import Reply
from ussd.settings import Settings
from ussd.web import create_app

MAIN = ("| Orange #121#\n| 1. Changer de profil\n| 2. Mon profil\n| 3. Conditions de migration\n"
        "| 4. Language / Langue\n")
BAR = "+----------------------------"


@pytest.fixture(scope="module")
def served():
    """The app on fakeredis, every dialect but Flares, served over HTTP on loopback."""
    client = fakeredis.FakeRedis(decode_responses=True)
    app = create_app(Settings(key_prefix="cli-sim", gateways=("africastalking", "hubtel")),
                     redis_client=client, clock=lambda: NOW)
    seed_subscribers(app.extensions["ussd"].store)
    with serving(app) as url:
        yield url


def sim(*args: str, stdin: str | None = None):
    return CliRunner().invoke(main, ["sim", *args], input=stdin)


def test_inputs_from_a_pipe_are_echoed_so_the_transcript_reads_as_a_dialogue(served):
    result = sim("--url", served, "--msisdn", "0700000002", stdin="2\n0\n")
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"{BAR} CON\n{MAIN}{BAR}\n"
        "> 2\n"
        f"{BAR} CON\n| Votre profil: Tigre.\n| Migrations restantes ce mois: 3 sur 3.\n"
        f"| Crédit consommé le mois passé: 9.500 F CFA.\n| 0 Retour | 00 Accueil\n{BAR}\n"
        "> 0\n"
        f"{BAR} CON\n{MAIN}{BAR}\n"
        "> \n(hung up)\n")


def test_hang_up_and_time_out_are_exclusive(served):
    result = sim("--url", served, "--input", "1", "--hang-up", "--time-out")
    assert result.exit_code == 2
    assert "--hang-up and --time-out are exclusive: a session ends once" in result.output


def test_show_length_prints_each_screens_length_and_alphabet(served):
    result = sim("--url", served, "--msisdn", "0700000003", "--input", "2", "--input", "00",
                 "--show-length")
    assert result.exit_code == 0, result.output
    bars = [line for line in result.output.splitlines() if line.startswith(BAR + " ")
            and not line.endswith(("CON", "END"))]
    # The main menu, 95 characters; "my profile", 127 of which "|" takes two septets.
    assert bars == [f"{BAR} 95/182 GSM 03.38", f"{BAR} 128/182 GSM 03.38",
                    f"{BAR} 95/182 GSM 03.38"]


def test_a_screen_outside_the_gsm_alphabet_is_measured_in_ucs2(capsys):
    show(Reply("Numéro êtes-vous prêt ?", False), show_length=True)
    assert capsys.readouterr().out == (
        f"{BAR} CON\n| Numéro êtes-vous prêt ?\n{BAR} 23/80 UCS-2\n")


def test_a_dialect_the_server_does_not_serve_says_so(served):
    result = sim("--url", served, "--gateway", "flares")
    assert result.exit_code == 1
    assert result.output == (f"error: HTTP 404 from {served}/ussd/flares: the flares gateway "
                             "dialect is not served here (USSD_GATEWAYS)\n")


def test_a_path_that_is_not_this_service_says_what_to_check():
    def elsewhere(environ, start_response):
        start_response("404 Not Found", [("Content-Type", "text/html")])
        return [b"<html>not here</html>"]

    with serving(elsewhere) as url:
        result = sim("--url", url)
    assert result.exit_code == 1
    assert result.output == (f"error: HTTP 404 from {url}/ussd/africastalking: nothing there: "
                             "is --url this service, with the dialect served (USSD_GATEWAYS)?\n")



@pytest.mark.parametrize(("suffix", "hint"), [
    # Our own 404 (one plain line, not the "not served" sentence) gets the hint too.
    ("/prefix", "nothing there: is --url this service, with the dialect served (USSD_GATEWAYS)?"),
    # The gateway's callback URL given as --url.
    ("/ussd/africastalking",
     "--url is the server's address (http://host:port), without /ussd/..."),
])
def test_a_wrong_path_on_this_service_says_what_to_check(served, suffix, hint):
    result = sim("--url", served + suffix)
    assert result.exit_code == 1
    assert result.output == (f"error: HTTP 404 from {served}{suffix}/ussd/africastalking: "
                             f"{hint}\n")


# --- at a terminal ---------------------------------------------------------------------------


class Terminal:
    """``ussd sim`` in a process of its own on a pseudo-terminal: type, and wait for text."""

    def __init__(self, args: list[str], home: Path):
        self.master, slave = pty.openpty()
        env = {**os.environ, "HOME": str(home), "TERM": "xterm", "INPUTRC": "/dev/null",
               "PYTHONPATH": os.pathsep.join(sys.path)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ussd.cli", "sim", *args], stdin=slave, stdout=slave,
            stderr=slave, env=env, start_new_session=True)
        os.close(slave)
        self.seen = b""

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait_for(self, text: str, timeout: float = 20) -> None:
        """Read until ``text`` has appeared since the last wait (AssertionError if it does
        not within ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        wanted = text.encode()
        while wanted not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"never saw {text!r} in {self.seen[-600:]!r}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.seen += os.read(self.master, 4096)
                except OSError:  # the process has closed the terminal
                    break
        assert wanted in self.seen, f"never saw {text!r} in {self.seen[-600:]!r}"
        self.seen = self.seen[self.seen.index(wanted) + len(wanted):]

    def close(self) -> int:
        try:
            return self.process.wait(timeout=20)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
            os.close(self.master)


UP, LEFT, ENTER, CTRL_D = "\x1b[A", "\x1b[D", "\r", "\x04"


def test_line_editing_and_history_at_a_terminal(served, tmp_path):
    """Readline at the prompt: the left arrow moves within the line ("9", left, "9" is "99",
    the next page: without editing the arrow's bytes would be sent, an invalid choice), the
    up arrow recalls an earlier input, and the history is kept for the next run."""
    terminal = Terminal(["--url", served, "--msisdn", "0700000001"], tmp_path)
    try:
        terminal.wait_for("4. Language / Langue")
        terminal.type("3" + ENTER)
        terminal.wait_for("99 Suite")
        terminal.type("9" + LEFT + "9" + ENTER)
        terminal.wait_for("Aigle: au moins 8.000 F CFA")  # page 2: "99" was sent
        terminal.type("00" + ENTER)
        terminal.wait_for("4. Language / Langue")
        terminal.type(UP + UP + UP + ENTER)  # "00", "99", then "3": the conditions again
        terminal.wait_for("Migration gratuite, 3 maximum par mois.")
        terminal.wait_for(BAR + "\r\n> ")  # readline reads the line now: Ctrl-D is its EOF
        terminal.type(CTRL_D)
        terminal.wait_for("(hung up)")
    finally:
        status = terminal.close()
    assert status == 0
    assert (tmp_path / ".ussd_sim_history").read_text().split() == ["3", "99", "00", "3"]
