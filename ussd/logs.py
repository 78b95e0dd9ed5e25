"""The server's log lines: their formats, their handler, and the hop line written the short way.

``ussd serve`` sends every logger to one :class:`LineHandler` on standard error, formatted by
:class:`LogFormatter` in :data:`LOG_FORMAT` (text, the default) or by
:class:`JsonLogFormatter`, one JSON object per line (``USSD_LOG_FORMAT=json``, through
python-json-logger). Both blank any secret the settings hold. The service writes one line per
hop and one per applied migration (:class:`LineLogger`): an event and its fields, written
``event key=value ...`` in text and as keys of the object in JSON.

Through ``logging`` the hop line cost 6.4 us warm, and a hop in the in-process harness 20-30
us of CPU more than with the line off, mostly in the record ``logging`` builds (twenty
attributes), its filters and its walk up the loggers' handlers, none of which a plain line
needs. When the line would reach that handler alone, it is written
straight to it: the same text, the same stream, the same lock (3.4 us warm).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping

from pythonjsonlogger.orjson import OrjsonFormatter

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
BLANKED = "***"


def event_text(event: str, fields: Mapping[str, object]) -> str:
    """An event line's message in text: ``hop gateway=hubtel outcome=shown ...``."""
    return event + "".join([f" {key}={value}" for key, value in fields.items()])


# What a caller sends can reach a line (a status, a field quoted in a refusal): each control
# character is written escaped, so that none can end the line and forge the next one.
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(32), 127, 0x85)} | {
    ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def one_line(text: str) -> str:
    """``text`` with its control characters escaped (``\\n``, ``\\x1b``...): one line."""
    return text if text.isprintable() else text.translate(_CONTROLS)


def blank(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every one of ``secrets`` (longest first) replaced by ``***``."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, BLANKED)
    return text


class LogFormatter(logging.Formatter):
    """The standard formatter, with the date and time of each second worked out once.

    The server writes a line per hop: converting and formatting the time on every line was
    an eighth of what a line costs (``time.localtime`` and ``strftime``). The same text.
    A plain record in ``LOG_FORMAT`` is put together directly, not through the format's
    ``%`` style and the checks for a traceback: another sixth.
    """

    _second: tuple[int, str] = (-1, "")

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, *,
                 secrets: Iterable[str] = ()):
        super().__init__(fmt, datefmt)
        self.secrets = tuple(secrets)

    @property
    def plain(self) -> bool:
        """True when this formatter writes ``LOG_FORMAT`` with the standard time."""
        return self._fmt == LOG_FORMAT and self.datefmt is None

    def format(self, record: logging.LogRecord) -> str:
        if not self.plain or record.exc_info or record.exc_text or record.stack_info:
            return blank(super().format(record), self.secrets)
        record.message = one_line(record.getMessage())
        record.asctime = self.formatTime(record)
        return blank(f"{record.asctime} {record.levelname} {record.name} {record.message}",
                     self.secrets)

    def formatMessage(self, record: logging.LogRecord) -> str:
        # The message on one line; a traceback, added after it, keeps its own lines.
        record.message = one_line(record.message)
        return super().formatMessage(record)

    def line(self, created: float, levelname: str, name: str, message: str) -> str:
        """The line :meth:`format` writes for a plain record of these fields (see ``plain``)."""
        return blank(f"{self.time_text(created)} {levelname} {name} {one_line(message)}",
                     self.secrets)

    def event_line(self, created: float, levelname: str, name: str, event: str,
                   fields: Mapping[str, object]) -> str:
        """The line :meth:`format` writes for :meth:`LineLogger.event`'s record."""
        return self.line(created, levelname, name, event_text(event, fields))

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return self.time_text(record.created, record.msecs)

    def time_text(self, created: float, msecs: float | None = None) -> str:
        """``formatTime``'s text for a record made at ``created`` (its ``msecs``, if known)."""
        second, text = self._second
        if second != int(created):
            second = int(created)
            text = time.strftime(self.default_time_format, self.converter(created))
            self._second = (second, text)
        if msecs is None:
            msecs = (created - int(created)) * 1000  # as LogRecord works it out
        return self.default_msec_format % (text, msecs)


class JsonLogFormatter(OrjsonFormatter):
    """One JSON object per line (python-json-logger, serialised by orjson): ``time`` (UTC,
    ISO 8601, milliseconds), ``level``, ``logger``, ``message``, then the record's extra
    fields; an event line's fields (:meth:`LineLogger.event`) as keys of their own, with the
    event as ``message``. A traceback goes in ``exc_info``. Secrets are blanked."""

    _second: tuple[int, str] = (-1, "")

    def __init__(self, *, secrets: Iterable[str] = ()):
        super().__init__(["asctime", "levelname", "name", "message"],
                         rename_fields={"asctime": "time", "levelname": "level",
                                        "name": "logger"})
        self.secrets = tuple(secrets)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self.time_text(record.created)

    def time_text(self, created: float) -> str:
        """``2026-11-30T09:15:02.062Z``: the date and time of each second worked out once."""
        second, text = self._second
        if second != int(created):
            second = int(created)
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, text)
        return f"{text}.{int((created - second) * 1000):03d}Z"

    def add_fields(self, log_data: dict, record: logging.LogRecord, message_dict: dict) -> None:
        super().add_fields(log_data, record, message_dict)
        if "event" in log_data and isinstance(log_data.get("fields"), Mapping):
            log_data["message"] = log_data.pop("event")
            log_data.update(log_data.pop("fields"))

    def serialize_log_record(self, log_data: dict) -> str:
        return blank(super().serialize_log_record(log_data), self.secrets)

    def event_line(self, created: float, levelname: str, name: str, event: str,
                   fields: Mapping[str, object]) -> str:
        """The line :meth:`format` writes for :meth:`LineLogger.event`'s record."""
        return self.serialize_log_record({"time": self.time_text(created), "level": levelname,
                                          "logger": name, "message": event, **fields})


class LineHandler(logging.StreamHandler):
    """``logging.StreamHandler`` (standard error by default), each line flushed as it is
    written, without the second lock ``StreamHandler.flush`` takes: a line per hop."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001  (as logging's handlers: reported, never raised)
            self.handleError(record)
            return
        if not self.write_line(line):
            self.handleError(record)

    def write_line(self, line: str) -> bool:
        """Write one finished line under the handler's lock (``emit`` holds it already);
        False if the stream refused it (the caller then hands the record to ``logging``,
        which reports the failure)."""
        with self.lock:
            try:
                stream = self.stream
                stream.write(line + self.terminator)
                stream.flush()
            except RecursionError:
                raise
            except Exception:  # noqa: BLE001
                return False
        return True


class LineLogger:
    """A logger's INFO lines, written straight to the server's handler when it alone gets them.

    That is when the logger has no filter, and the one handler its records reach is a
    :class:`LineHandler` with no filter, a level that lets INFO through, and a
    :class:`LogFormatter` in ``LOG_FORMAT``: ``ussd serve``'s own set-up. Then nothing that
    ``logging`` does with a record could change the line, and it is written as ``logging``
    would write it. Any other set-up (a test's capture, a second handler, another format) gets
    the record from ``logging`` itself, as from ``logger.info``.
    """

    def __init__(self, logger: logging.Logger):
        self.logger = logger

    def info(self, msg: str, *args: object) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        handler = sole_line_handler(logger)
        # A plain text line only: a JSON line is an event's (``event``), with its fields.
        if handler is not None and type(handler.formatter) is LogFormatter:
            try:
                message = msg % args
            except Exception:  # noqa: BLE001  (logging reports it below, and never raises)
                message = None
            if message is not None and handler.write_line(handler.formatter.line(
                    time.time(), logging.getLevelName(logging.INFO), logger.name, message)):
                return
        logger.info(msg, *args, stacklevel=2)

    def event(self, event: str, fields: Mapping[str, object]) -> None:
        """One event line at INFO: ``event key=value ...`` in text, an object in JSON.

        Through ``logging``, the record's message is the text line (what a capture sees)
        and its ``event`` and ``fields`` attributes give the JSON formatter the fields.
        """
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        handler = sole_line_handler(logger)
        if handler is not None:
            try:
                line = handler.formatter.event_line(time.time(), _INFO, logger.name, event,
                                                    fields)
            except Exception:  # noqa: BLE001  (logging reports it below, and never raises)
                line = None
            if line is not None and handler.write_line(line):
                return
        logger.info(event_text(event, fields), extra={"event": event, "fields": fields},
                    stacklevel=2)


_INFO = logging.getLevelName(logging.INFO)


def sole_line_handler(logger: logging.Logger) -> LineHandler | None:
    """The one handler a record of ``logger`` at INFO reaches, if it is a plain
    :class:`LineHandler` and nothing on the way could drop or change the record.

    As ``Logger.handle`` does: the logger's own filters, then every handler up the tree until
    a logger that does not propagate (the filters of the loggers above are not consulted).
    """
    if logger.filters:
        return None
    found = None
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if found is not None:
                return None
            found = handler
        current = current.parent if current.propagate else None
    if (type(found) is not LineHandler or found.filters or found.level > logging.INFO):
        return None
    formatter = found.formatter
    if type(formatter) is JsonLogFormatter:
        return found
    if type(formatter) is not LogFormatter or not formatter.plain:
        return None
    return found
