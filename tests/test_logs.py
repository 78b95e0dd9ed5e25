"""The server's buffered log handler: same lines, out promptly, none lost at a worker's exit."""

from __future__ import annotations

import logging
import multiprocessing
import time

from ussd.logs import FORMAT, BufferedLineHandler, SecondFormatter


def _logger(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def _handler(path, interval: float) -> BufferedLineHandler:
    handler = BufferedLineHandler(open(path, "w", buffering=1 << 16), interval=interval)
    handler.setFormatter(SecondFormatter())
    return handler


def test_the_line_is_the_standard_formatters():
    standard, ours = logging.Formatter(FORMAT), SecondFormatter()
    for created in (1_764_146_000.0, 1_764_146_000.999, 1_764_146_001.0421, 1_764_146_001.5):
        record = logging.LogRecord("ussd.hop", logging.INFO, __file__, 1, "hop msisdn=%s ms=%.1f",
                                   ("+225*******304", 0.42), None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert ours.format(record) == standard.format(record)


def test_a_line_is_out_within_the_interval(tmp_path):
    path = tmp_path / "log"
    logger = _logger(_handler(path, 0.05), "test.logs.prompt")
    logger.info("hop one")
    deadline = time.monotonic() + 2
    while "hop one" not in path.read_text() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path.read_text().endswith("INFO test.logs.prompt hop one\n")


def test_a_warning_is_out_at_once(tmp_path):
    path = tmp_path / "log"
    logger = _logger(_handler(path, 3600), "test.logs.warning")
    logger.info("hop one")
    logger.warning("store failure")
    assert path.read_text().count("\n") == 2


def _child(path) -> None:
    logger = _logger(_handler(path, 3600), "test.logs.child")
    for number in range(3):
        logger.info("hop %d", number)


def test_a_workers_lines_are_out_when_it_ends(tmp_path):
    # granian's workers are forked and ended by multiprocessing (os._exit, no atexit).
    path = tmp_path / "log"
    child = multiprocessing.get_context("fork").Process(target=_child, args=(path,))
    child.start()
    child.join(10)
    assert child.exitcode == 0
    assert path.read_text().count(" hop ") == 3
