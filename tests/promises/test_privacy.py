"""Privacy of the logs: one line per hop, the phone number masked (``+225*******001``); no full
number, in any format, reaches a log record, whatever the path: dialogues in every dialect,
replays, end reports, refused requests, a Redis outage, a failing hop, the other channels.
"""

from __future__ import annotations

import logging
import re
import traceback

import fakeredis
import pytest
from conftest import ALICE, JOHN, NOW, seed_subscribers
from handsets import Handset, served_dialects, test_client_transport

from ussd.rules import Channel
from ussd.settings import Settings
from ussd.web import create_app

# Alice, +225 07 00 00 00 01, as gateways and people write her number.
FORMATS = ["+2250700000001", "2250700000001", "0700000001", "00225 07 00 00 00 01"]
# Any run of her subscriber digits: "0700000001", "2250700000001"... all hold these nine.
ALICE_DIGITS = re.compile(r"7\D?0\D?0\D?0\D?0\D?0\D?0\D?0\D?1")
JOHN_DIGITS = re.compile(r"7\D?0\D?0\D?0\D?0\D?0\D?0\D?0\D?5")
# Numbers that are refused, yet are (or hold) somebody's whole number.
REFUSED_NUMBERS = ["0700000001x", "+2250700000001 ext. 5", "+33612345678", "07000000011",
                   "+225 0700000001\n", "+2250700000001\x00"]
FOREIGN_DIGITS = re.compile(r"6\D?1\D?2\D?3\D?4\D?5\D?6\D?7\D?8")


def leaks(records) -> list[str]:
    """Every logged text (message and traceback) that shows a whole number."""
    found = []
    for record in records:
        text = record.getMessage()
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        if record.exc_text:
            text += record.exc_text
        for pattern in (ALICE_DIGITS, JOHN_DIGITS, FOREIGN_DIGITS):
            if pattern.search(text):
                found.append(f"{record.name}: {text}")
    return found


def hop_lines(records) -> list[logging.LogRecord]:
    return [r for r in records if r.name == "ussd.hop" and r.getMessage().startswith("hop ")]


@pytest.fixture
def logged(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.mark.parametrize("dialect", served_dialects(), ids=lambda d: d.name)
def test_no_whole_number_in_the_logs_of_whole_dialogues(app, logged, dialect):
    transport = test_client_transport(app.test_client())
    hops = 0
    for number in FORMATS:
        phone = Handset(transport, dialect, number,
                        session_id=f"ATUid-{number.strip('+')}-1")  # an id holding the number
        phone.dial()
        for text in ("1", "2", "1"):
            phone.send(text)
        phone.replay(1)
        phone.hang_up()
        hops += 5
    john = Handset(transport, dialect, JOHN)
    john.dial()
    hops += 1
    assert leaks(logged.records) == []
    lines = hop_lines(logged.records)
    assert len(lines) == hops  # one line per hop...
    assert all("\n" not in line.getMessage() for line in lines)  # ...one line each
    assert all("msisdn=+225*******001" in line.getMessage() for line in lines[:-1])
    assert "msisdn=+225*******005" in lines[-1].getMessage()


@pytest.mark.parametrize("dialect", served_dialects(), ids=lambda d: d.name)
@pytest.mark.parametrize("number", REFUSED_NUMBERS)
def test_no_whole_number_in_the_logs_of_refused_requests(client, logged, dialect, number):
    transport = test_client_transport(client)
    dialect.reply(transport(dialect.dial("S-refused", number)))
    dialect.reply(transport(dialect.dial("", ALICE)))  # a valid number, a missing session id
    transport(dialect.end("S-refused", number))
    assert leaks(logged.records) == []


class BrokenRedis(fakeredis.FakeRedis):
    """A Redis client whose every script call fails as a bug would: not a Redis error."""

    def execute_command(self, *args, **kwargs):
        if str(args[0]).upper().startswith("EVAL"):
            raise RuntimeError(f"a bug, while serving {ALICE}")
        return super().execute_command(*args, **kwargs)


def test_no_whole_number_in_the_logs_of_an_outage_or_a_failing_hop(logged, key_prefix):
    from ussd.store import connect

    unreachable = connect(Settings(redis_url="redis://127.0.0.1:1/0", redis_timeout=0.2))
    broken = BrokenRedis(decode_responses=True)
    for redis_client in (unreachable, broken):
        app = create_app(Settings(key_prefix=key_prefix), redis_client=redis_client,
                         clock=lambda: NOW)
        for dialect in served_dialects():
            phone = Handset(test_client_transport(app.test_client()), dialect, FORMATS[2])
            text, end = phone.dial()
            assert end and text.startswith("Service momentanément indisponible.")
    # The bug's own message holds the number: it reaches the log only through our line, masked.
    assert [r for r in logged.records if r.exc_info] == []
    assert leaks(logged.records) == []


def test_no_whole_number_in_the_logs_of_the_other_channels(service, logged):
    seed_subscribers(service.store)
    for target in ("tigre", "dauphin", "novamix", "tigre"):  # the fourth is over the cap
        service.migrate(ALICE, target, Channel.WEB)
    assert leaks(logged.records) == []
