"""The server's log output: one line per hop, written without a system call per line.

``ussd serve`` writes an INFO line for every hop. Python's stderr is line-buffered, so the
standard handler made a ``write`` system call for every one, and the call gives up the GIL
while the worker's other thread waits to take it: in the benchmark that, not the formatting,
was most of the ~55 us a log line cost a hop (bench/README.md). :class:`BufferedLineHandler`
writes the same lines to a buffered copy of stderr and flushes it:

- within ``FLUSH_SECONDS`` of a line (a daemon thread per process: granian forks its workers,
  and a thread does not survive a fork, so each process starts its own at its first line);
- at once for a WARNING or worse (an outage or a bug is seen at once, as before);
- when the buffer fills, and at exit (``logging.shutdown`` in the main process; in a worker,
  which multiprocessing ends with ``os._exit``, a multiprocessing finalizer).

Only a worker killed outright (SIGKILL) can lose the last ``FLUSH_SECONDS`` of its lines.
"""

from __future__ import annotations

import logging
import multiprocessing.util
import os
import sys
import threading
import time

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
FLUSH_SECONDS = 0.2
BUFFER_BYTES = 1 << 16


class SecondFormatter(logging.Formatter):
    """The standard format, with the date and time of a second worked out once a second.

    ``time.strftime`` for every line was a tenth of the line's cost; the text is the same
    (``2026-11-26 08:41:07,123``).
    """

    def __init__(self, fmt: str = FORMAT):
        super().__init__(fmt)
        self._second: int | None = None
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:  # a race here only works the same second out twice
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return f"{self._stamp},{int(record.msecs):03d}"


class BufferedLineHandler(logging.StreamHandler):
    """A stream handler that flushes on a short timer, on warnings and at exit (see above)."""

    def __init__(self, stream=None, interval: float = FLUSH_SECONDS):
        super().__init__(stream if stream is not None else _buffered_stderr())
        self.interval = interval
        self._dirty = False
        self._pid: int | None = None  # the process whose flusher thread is running

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + self.terminator)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
            return
        if record.levelno >= logging.WARNING:
            self.flush()
            return
        self._dirty = True
        if self._pid != os.getpid():
            self._start_flusher()

    def flush(self) -> None:
        self._dirty = False
        super().flush()

    def _start_flusher(self) -> None:
        # Called with the handler's lock held (Handler.handle), so once per process.
        self._pid = os.getpid()
        threading.Thread(target=self._flush_every_interval, name="log-flush", daemon=True).start()
        # A granian worker ends through multiprocessing, which skips atexit: flush there too.
        multiprocessing.util.Finalize(self, self.flush, exitpriority=100)

    def _flush_every_interval(self) -> None:
        pid = self._pid
        while self._pid == pid:
            time.sleep(self.interval)
            if self._dirty:
                self.flush()


def _buffered_stderr():
    """stderr's file descriptor, block-buffered (Python's own stderr is line-buffered); stderr
    itself when it has no file descriptor (a test runner's capture)."""
    try:
        descriptor = os.dup(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return sys.stderr
    return open(descriptor, "w", buffering=BUFFER_BYTES,
                encoding=sys.stderr.encoding or "utf-8", errors="backslashreplace")


def use_buffered_log(level: int = logging.INFO) -> BufferedLineHandler:
    """Send the root logger's output to a :class:`BufferedLineHandler` on stderr."""
    handler = BufferedLineHandler()
    handler.setFormatter(SecondFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    return handler
