"""The server's log lines (``ussd.logs``): the format, the handler, and the hop line written
straight to the handler when ``logging`` could add nothing to it."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import os
import re
import subprocess
import sys
import time

import pytest

from ussd.logs import LOG_FORMAT, JsonLogFormatter, LineHandler, LineLogger, LogFormatter


@pytest.mark.parametrize("created", [1_764_000_000.0, 1_764_000_000.999, 1_764_000_001.25,
                                     1_764_000_000.5, 1_764_086_399.999, 1_764_086_400.001])
def test_the_log_formatter_writes_what_the_standard_one_writes(created):
    """The server's formatter works the time out once a second: the same lines, in order or
    not, across a second and a day."""
    fmt = "%(asctime)s %(levelname)s %(name)s %(message)s"
    ours, standard = LogFormatter(fmt), logging.Formatter(fmt)
    for moment in (created - 1, created, created, created + 0.5, created):
        record = logging.makeLogRecord({"name": "ussd.hop", "levelname": "INFO", "msg": "hop",
                                        "created": moment, "msecs": (moment % 1) * 1000})
        assert ours.format(record) == standard.format(record)


def _failure() -> tuple:
    try:
        raise ValueError("boom")
    except ValueError:
        return sys.exc_info()


@pytest.mark.parametrize("datefmt", [None, "%d/%m %H:%M"])
@pytest.mark.parametrize("fmt", [LOG_FORMAT, "%(levelname)s:%(name)s:%(message)s"])
@pytest.mark.parametrize("extra", [
    {},
    {"msg": "hop gateway=%s inputs=%d ms=%.1f", "args": ("africastalking", 3, 1.25)},
    {"exc_info": _failure()},
    {"stack_info": "Stack (most recent call last):\n  here"},
    {"exc_text": "Traceback: cached by another formatter"},
])
def test_the_log_formatter_writes_a_line_as_the_standard_one_would(fmt, datefmt, extra):
    """Put together directly for a plain line in the server's format; the standard way for a
    traceback, a stack or another format: the same text either way."""
    fields = {"name": "ussd.hop", "levelname": "INFO", "levelno": 20, "msg": "hop",
              "created": 1_764_000_000.25, "msecs": 250.0, **extra}
    ours = LogFormatter(fmt, datefmt).format(logging.makeLogRecord(fields))
    assert ours == logging.Formatter(fmt, datefmt).format(logging.makeLogRecord(fields))
    if set(extra) <= {"msg", "args"}:
        assert "\n" not in ours


@pytest.mark.parametrize("fmt", [LOG_FORMAT, "%(levelname)s:%(name)s:%(message)s"])
@pytest.mark.parametrize("sent", [
    "Incomplete\nINFO ussd.hop hop gateway=forged outcome=approved",
    "a\rb\x1b[31mred\x00\x7f\u2028c\u2029d\x85e\tf",
])
def test_what_a_caller_sent_stays_on_its_line(fmt, sent):
    """A control character in a message (a status or a field a line quotes) is written
    escaped: the line cannot end early and forge the next one; a traceback keeps its lines."""
    formatter = LogFormatter(fmt)
    record = logging.makeLogRecord({"name": "ussd.gateway", "levelname": "INFO", "levelno": 20,
                                    "msg": "session end status=%s", "args": (sent,),
                                    "created": 1_764_000_000.25, "msecs": 250.0})
    line = formatter.format(record)
    assert line.endswith("session end status=" + sent.encode("unicode_escape").decode())
    assert line.isprintable()
    assert formatter.line(1_764_000_000.25, "INFO", "ussd.gateway", "x " + sent).isprintable()
    failing = logging.makeLogRecord({**record.__dict__, "exc_info": _failure()})
    first, *traceback = LogFormatter(fmt).format(failing).split("\n")
    assert first == line and len(traceback) == 4  # the traceback keeps its own lines


def test_the_line_handler_writes_and_flushes_each_line():
    flushed = []

    class Stream(io.StringIO):
        def flush(self):
            flushed.append(self.getvalue())

    stream = Stream()
    handler = LineHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    for n in (1, 2):
        handler.handle(logging.makeLogRecord({"levelname": "INFO", "msg": "hop %d",
                                              "args": (n,)}))
    assert flushed == ["INFO hop 1\n", "INFO hop 1\nINFO hop 2\n"]


def test_a_line_that_cannot_be_written_goes_to_handle_error(monkeypatch):
    class Closed(io.StringIO):
        def write(self, text):
            raise OSError("disk full")

    handler = LineHandler(Closed())
    failed = []
    monkeypatch.setattr(handler, "handleError", failed.append)
    record = logging.makeLogRecord({"msg": "hop"})
    handler.handle(record)
    assert failed == [record]


HOP = ("hop gateway=%s msisdn=%s inputs=%d end=%s ms=%.1f",
       "africastalking", "+225*******001", 3, False, 1.25)
NOW = 1_764_000_000.0625


@pytest.fixture
def frozen(monkeypatch):
    """``time.time`` stopped, for logging's records and the short way alike."""
    monkeypatch.setattr(time, "time", lambda: NOW)


def server_logger(name: str = "ussd.hop", stream: io.StringIO | None = None):
    """A logger set up as ``ussd serve`` sets up the root one: one LineHandler, our format.

    Made outside the logging tree: under pytest the root logger carries pytest's handlers.
    """
    logger = logging.Logger(name, logging.INFO)
    handler = LineHandler(stream if stream is not None else io.StringIO())
    handler.setFormatter(LogFormatter(LOG_FORMAT))
    logger.addHandler(handler)
    return logger, handler


def test_a_hop_line_is_written_as_logging_writes_it_without_a_record(frozen, monkeypatch):
    logger, handler = server_logger()
    records = []
    monkeypatch.setattr(logger, "makeRecord", lambda *a, **k: records.append(a))
    LineLogger(logger).info(*HOP)
    LineLogger(logger).info("hop %s", "again")
    second = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(NOW))
    assert handler.stream.getvalue() == (
        f"{second},062 INFO ussd.hop hop gateway=africastalking msisdn=+225*******001 "
        f"inputs=3 end=False ms=1.2\n"
        f"{second},062 INFO ussd.hop hop again\n"
    )
    assert records == []  # the short way: no LogRecord made


class Dropping(logging.Filter):
    def filter(self, record):
        return False


def _another_format(logger, handler):
    handler.setFormatter(LogFormatter("%(levelname)s:%(name)s:%(message)s"))


def _a_date_format(logger, handler):
    handler.setFormatter(LogFormatter(LOG_FORMAT, datefmt="%H:%M"))


def _the_standard_formatter(logger, handler):
    handler.setFormatter(logging.Formatter(LOG_FORMAT))


def _a_second_handler(logger, handler):
    second = LineHandler(handler.stream)
    second.setFormatter(LogFormatter(LOG_FORMAT))
    logger.addHandler(second)


def _a_handler_above_info(logger, handler):
    handler.setLevel(logging.WARNING)


def _a_logger_above_info(logger, handler):
    logger.setLevel(logging.WARNING)


def _a_filter_on_the_logger(logger, handler):
    logger.addFilter(Dropping())


def _a_filter_on_the_handler(logger, handler):
    handler.addFilter(Dropping())


def _a_disabled_logger(logger, handler):
    logger.disabled = True


def _a_filter_on_a_parent(logger, handler):
    """Not consulted by logging for a record of a logger below: the line is written."""
    _the_handler_on_a_parent(logger, handler)
    logger.parent.addFilter(Dropping())


def _another_handler_class(logger, handler):
    logger.removeHandler(handler)
    other = logging.StreamHandler(handler.stream)
    other.setFormatter(handler.formatter)
    logger.addHandler(other)


def _the_handler_on_a_parent(logger, handler):
    parent = logging.Logger("ussd", logging.INFO)
    logger.removeHandler(handler)
    parent.addHandler(handler)
    logger.parent = parent


def _not_propagated_to_the_handler(logger, handler):
    _the_handler_on_a_parent(logger, handler)
    logger.propagate = False


def _no_handler_at_all(logger, handler):
    logger.removeHandler(handler)


@pytest.mark.parametrize("setup", [
    lambda logger, handler: None, _another_format, _a_date_format, _the_standard_formatter,
    _a_second_handler, _a_handler_above_info, _a_logger_above_info, _a_filter_on_the_logger,
    _a_filter_on_the_handler, _a_disabled_logger, _a_filter_on_a_parent, _another_handler_class,
    _the_handler_on_a_parent, _not_propagated_to_the_handler, _no_handler_at_all,
], ids=lambda setup: getattr(setup, "__name__", "as_served").strip("_"))
def test_a_hop_line_reaches_what_logger_info_reaches_in_any_set_up(frozen, setup, capsys):
    """Whatever the set-up, the hop logger writes exactly what ``logger.info`` writes:
    the short way when it can, through ``logging`` when anything could change the line."""
    written = {}
    for way in ("logging", "short"):
        logger, handler = server_logger()
        setup(logger, handler)
        if way == "short":
            LineLogger(logger).info(*HOP)
        else:
            logger.info(*HOP)
        written[way] = (handler.stream.getvalue(), capsys.readouterr().err)
    assert written["short"] == written["logging"]


def test_a_line_the_stream_refuses_goes_to_logging_which_reports_it(frozen, monkeypatch):
    class Full(io.StringIO):
        def write(self, text):
            raise OSError("disk full")

    logger, handler = server_logger(stream=Full())
    failed = []
    monkeypatch.setattr(handler, "handleError", failed.append)
    LineLogger(logger).info(*HOP)
    assert [record.getMessage() for record in failed] == [HOP[0] % HOP[1:]]
    assert failed[0].name == "ussd.hop" and failed[0].levelno == logging.INFO


SERVER = r'''
import logging
from ussd.cli import _settings
from ussd.gateways import dialect
from ussd.web import create_app

made = []
make_record = logging.Logger.makeRecord
def counting(self, name, *args, **kwargs):
    made.append(name)
    return make_record(self, name, *args, **kwargs)
logging.Logger.makeRecord = counting

_settings()  # the logging of ussd serve: one LineHandler on standard error
app = create_app()  # the embedded store with the demo subscribers (USSD_DEMO=1)
client = app.test_client()
gateway = dialect("africastalking")  # its client half: the requests Africa's Talking sends
for inputs in ((), ("1",)):
    request = gateway.hop("ATUid_log", "+2250700000001", "*121#", inputs)
    reply = client.post("/ussd/africastalking", data=request.form)
    assert reply.status_code == 200, reply.status_code
print("records made for ussd.hop:", made.count("ussd.hop"))
'''


def serve_two_hops(**env: str) -> subprocess.CompletedProcess:
    """The SERVER script above, in a fresh interpreter, with the demo and ``env``."""
    clean = {key: value for key, value in os.environ.items()
             if not key.startswith("USSD_") and key != "REDIS_URL"}
    done = subprocess.run([sys.executable, "-c", SERVER], capture_output=True, text=True,
                          env={**clean, "USSD_DEMO": "1", **env}, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "records made for ussd.hop: 0"
    assert "0700000001" not in done.stderr and "2250700000001" not in done.stderr
    return done


def test_the_server_writes_each_hop_line_to_standard_error_the_short_way():
    """As ``ussd serve`` sets logging up: each hop's line on standard error, in the server's
    format, the number masked, and no LogRecord made for it."""
    done = serve_two_hops()
    hop_lines = [line for line in done.stderr.splitlines() if " ussd.hop " in line]
    line = (r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO ussd.hop hop gateway=africastalking "
            r"msisdn=\+225\*{7}001 session=[0-9a-f]{20} inputs=%d end=False outcome=shown "
            r"screen=%s ms=\d+\.\d")
    assert [bool(re.fullmatch(line % (n, screen), text))
            for n, (text, screen) in enumerate(zip(hop_lines, ("main", "profiles"),
                                                   strict=True))] == [True] * 2


def test_the_server_writes_json_lines_the_short_way_with_the_subscriber_hash():
    key = "care-desk-key-0123456789"
    done = serve_two_hops(USSD_LOG_FORMAT="json", USSD_LOG_KEY=key)
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON
    hops = [line for line in lines if line["logger"] == "ussd.hop"]
    expected = hmac.new(key.encode(), b"+2250700000001", hashlib.sha256).hexdigest()[:20]
    assert [(hop["message"], hop["gateway"], hop["msisdn"], hop["subscriber"], hop["inputs"],
             hop["end"], hop["outcome"], hop["screen"]) for hop in hops] == [
        ("hop", "africastalking", "+225*******001", expected, n, False, "shown", screen)
        for n, screen in enumerate(("main", "profiles"))]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", hop["time"])
               and hop["level"] == "INFO" and isinstance(hop["ms"], float) for hop in hops)
    assert key not in done.stderr


def test_a_line_whose_arguments_do_not_fit_is_reported_never_raised(frozen, monkeypatch):
    """As logging does with any record: the hop goes on, and the error is reported."""
    logger, handler = server_logger()
    failed = []
    monkeypatch.setattr(handler, "handleError", failed.append)
    LineLogger(logger).info("hop inputs=%d", "three")
    assert handler.stream.getvalue() == ""
    assert [(record.msg, record.args) for record in failed] == [("hop inputs=%d", ("three",))]


# --- event lines, JSON, secrets -----------------------------------------------------------------

EVENT = ("hop", {"gateway": "hubtel", "msisdn": "+225*******001", "inputs": 2, "end": True,
                 "outcome": "refused", "reason": "insufficient_consumption", "ms": 1.2})


def json_logger(name: str = "ussd.hop", secrets: tuple[str, ...] = ()):
    logger, handler = server_logger(name)
    handler.setFormatter(JsonLogFormatter(secrets=secrets))
    return logger, handler


@pytest.mark.parametrize("setup", [
    lambda logger, handler: None, _a_second_handler, _a_filter_on_the_handler,
    _the_handler_on_a_parent, _another_handler_class, _no_handler_at_all,
], ids=["as_served", "a_second_handler", "a_filter_on_the_handler", "the_handler_on_a_parent",
        "another_handler_class", "no_handler_at_all"])
@pytest.mark.parametrize("make", [server_logger, json_logger], ids=["text", "json"])
def test_an_event_line_reaches_what_logging_writes_in_either_format(frozen, setup, make, capsys,
                                                                   monkeypatch):
    """The short way and ``logging`` write the same event line, text or JSON."""
    written = {}
    for way in ("logging", "short"):
        logger, handler = make()
        setup(logger, handler)
        with monkeypatch.context() as patch:
            if way == "logging":  # what LineLogger hands logging when it cannot go short
                patch.setattr("ussd.logs.sole_line_handler", lambda logger: None)
            LineLogger(logger).event(*EVENT)
        written[way] = (handler.stream.getvalue(), capsys.readouterr().err)
    assert written["short"] == written["logging"]


def test_an_event_line_in_text_and_in_json(frozen):
    logger, handler = server_logger()
    LineLogger(logger).event(*EVENT)
    second = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(NOW))
    assert handler.stream.getvalue() == (
        f"{second},062 INFO ussd.hop hop gateway=hubtel msisdn=+225*******001 inputs=2 "
        "end=True outcome=refused reason=insufficient_consumption ms=1.2\n")
    logger, handler = json_logger()
    LineLogger(logger).event(*EVENT)
    assert json.loads(handler.stream.getvalue()) == {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S.062Z", time.gmtime(NOW)), "level": "INFO",
        "logger": "ussd.hop", "message": "hop", **EVENT[1]}


def test_json_lines_of_plain_records_and_tracebacks(frozen):
    logger, handler = json_logger("ussd.gateway")
    logger.warning("refused gateway=%s status=%d", "flares", 403)
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    first, second = map(json.loads, handler.stream.getvalue().splitlines())
    assert first == {"time": time.strftime("%Y-%m-%dT%H:%M:%S.062Z", time.gmtime(NOW)),
                     "level": "WARNING", "logger": "ussd.gateway",
                     "message": "refused gateway=flares status=403"}
    assert second["message"] == "failed" and "ValueError: boom" in second["exc_info"]


@pytest.mark.parametrize("make", [server_logger, json_logger], ids=["text", "json"])
def test_secrets_are_blanked_in_every_line(make):
    token = "tok-" + "x" * 20
    logger, handler = make("ussd.web")
    handler.formatter.secrets = (token,)
    logger.error("request failed on /ussd/flares/%s", token)
    try:
        raise RuntimeError(f"bad token {token}")
    except RuntimeError:
        logger.exception("failed")
    LineLogger(logger).event("hop", {"session": token})
    written = handler.stream.getvalue()
    assert token not in written
    assert written.count("***") == 3  # in the message, the exception's text, the event


def test_a_plain_line_under_the_json_format_goes_through_logging_as_json(frozen):
    # The short way writes text lines only; under USSD_LOG_FORMAT=json a plain line is the
    # formatter's, through logging (it used to raise: the JSON formatter writes no text line).
    logger, handler = json_logger()
    LineLogger(logger).info("hop %s", "again")
    line = json.loads(handler.stream.getvalue())
    assert (line["message"], line["logger"], line["level"]) == ("hop again", "ussd.hop", "INFO")
