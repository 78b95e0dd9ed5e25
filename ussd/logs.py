"""The server's log lines: its format, its handler, and the hop line written the short way.

``ussd serve`` sends every logger to one :class:`LineHandler` on standard error, formatted by
:class:`LogFormatter` in :data:`LOG_FORMAT`. The service writes one line per hop
(:class:`LineLogger`). Through ``logging`` the line cost 6.4 us warm, and a hop in the
in-process harness 20-30 us of CPU more than with the line off, mostly in the record
``logging`` builds (twenty attributes), its filters and its walk up the loggers' handlers,
none of which a plain line needs. When the line would reach that handler alone, it is written
straight to it: the same text, the same stream, the same lock (3.4 us warm).
"""

from __future__ import annotations

import logging
import time

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class LogFormatter(logging.Formatter):
    """The standard formatter, with the date and time of each second worked out once.

    The server writes a line per hop: converting and formatting the time on every line was
    an eighth of what a line costs (``time.localtime`` and ``strftime``). The same text.
    A plain record in ``LOG_FORMAT`` is put together directly, not through the format's
    ``%`` style and the checks for a traceback: another sixth.
    """

    _second: tuple[int, str] = (-1, "")

    @property
    def plain(self) -> bool:
        """True when this formatter writes ``LOG_FORMAT`` with the standard time."""
        return self._fmt == LOG_FORMAT and self.datefmt is None

    def format(self, record: logging.LogRecord) -> str:
        if not self.plain or record.exc_info or record.exc_text or record.stack_info:
            return super().format(record)
        record.message = record.getMessage()
        record.asctime = self.formatTime(record)
        return f"{record.asctime} {record.levelname} {record.name} {record.message}"

    def line(self, created: float, levelname: str, name: str, message: str) -> str:
        """The line :meth:`format` writes for a plain record of these fields (see ``plain``)."""
        return f"{self.time_text(created)} {levelname} {name} {message}"

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
        if handler is not None:
            try:
                message = msg % args
            except Exception:  # noqa: BLE001  (logging reports it below, and never raises)
                message = None
            if message is not None and handler.write_line(handler.formatter.line(
                    time.time(), logging.getLevelName(logging.INFO), logger.name, message)):
                return
        logger.info(msg, *args, stacklevel=2)


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
    if type(formatter) is not LogFormatter or not formatter.plain:
        return None
    return found
