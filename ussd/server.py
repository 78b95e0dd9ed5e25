"""What ``ussd serve`` sets up around the app: the log lines, the metrics shared by its worker
processes and their own listener, and the granian server itself.

Order matters here: prometheus_client picks its single- or multi-process mode when it is
first imported, from ``PROMETHEUS_MULTIPROC_DIR``, and granian forks its workers from this
process, so :func:`shared_metrics` runs before anything imports :mod:`ussd.metrics`, and the
workers inherit the mode, the directory and the log handler.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from .logs import LOG_FORMAT, JsonLogFormatter, LineHandler, LogFormatter
from .settings import Settings

log = logging.getLogger("ussd")

# Python threads per worker: while one thread waits on Redis another runs. Measured on 2 cores
# (bench/README.md): 3 threads serve 10-15% more hops than 2 (the ceiling app as many or a
# few more), and 4 fewer than 3.
DEFAULT_THREADS = 3
# Requests a worker takes on at once beyond its threads wait in its queue, not in the kernel.
BACKPRESSURE_PER_THREAD = 8
# A gateway waits a few seconds for a hop: a client that has not sent its headers by then is
# not a gateway worth a worker. Redis calls are bounded by USSD_REDIS_TIMEOUT (1 s).
HEADER_READ_TIMEOUT_MS = 2_000
# On shutdown, hops in flight get this long to finish before their worker is killed.
WORKERS_KILL_TIMEOUT_S = 5


def configure_logging(settings: Settings) -> None:
    """Every logger to one :class:`LineHandler` on standard error, in the format the settings
    ask for (``USSD_LOG_FORMAT``: text, or one JSON object per line); secrets blanked."""
    handler = LineHandler()
    if settings.log_format == "json":
        formatter: logging.Formatter = JsonLogFormatter(secrets=settings.secrets())
    else:
        formatter = LogFormatter(LOG_FORMAT, secrets=settings.secrets())
    handler.setFormatter(formatter)
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


def shared_metrics() -> str | None:
    """Put prometheus_client in multiprocess mode for this server and its workers; the
    directory of the workers' files, or None when prometheus_client was imported already.

    The directory is ``PROMETHEUS_MULTIPROC_DIR`` when set (emptied of an earlier run's files,
    as prometheus_client requires at each start), else a new temporary one, removed at exit
    (:func:`remove_metrics_dir`). Imported already (``serve`` called inside a process that
    used the metrics, as a test does): each worker then counts for itself, and a warning says
    so.
    """
    # prometheus_client chose its mode when imported: multiprocess only if the variable was set.
    if "prometheus_client" in sys.modules and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        log.warning("metrics are per worker process: prometheus_client was imported "
                    "before ussd serve could set PROMETHEUS_MULTIPROC_DIR")
        return None
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    directory = given or tempfile.mkdtemp(prefix="ussd-metrics-")
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.remove(os.path.join(directory, name))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    return None if given else directory


def remove_metrics_dir(directory: str | None) -> None:
    """Remove the temporary directory :func:`shared_metrics` made (None: nothing to do)."""
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


def start_metrics_listener(host: str, port: int) -> None:
    """Serve ``/metrics`` on ``host:port`` from this (the main) process, in a thread:
    prometheus_client's own server, reading every worker's files."""
    from prometheus_client import start_http_server

    from .metrics import registry

    start_http_server(port, addr=host, registry=registry())


def default_workers() -> int:
    """One worker per CPU this process may run on (a container's CPU set, not the host's)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def granian_server(target: str, host: str, port: int, workers: int, threads: int | None = None,
                   working_dir: str | None = None):
    """The granian WSGI server ``ussd serve`` runs (``bench/run.py`` serves its ceiling app
    with it too, so that both are measured on the same server settings)."""
    from granian import Granian
    from granian.http import HTTP1Settings

    threads = threads or DEFAULT_THREADS
    return Granian(
        target,
        address=host,
        port=port,
        interface="wsgi",
        workers=workers,
        blocking_threads=threads,
        backpressure=threads * BACKPRESSURE_PER_THREAD,
        http="1",  # gateways speak HTTP/1.1
        websockets=False,
        http1_settings=HTTP1Settings(header_read_timeout=HEADER_READ_TIMEOUT_MS, keep_alive=True),
        respawn_failed_workers=True,
        workers_kill_timeout=WORKERS_KILL_TIMEOUT_S,
        log_access=False,
        working_dir=Path(working_dir) if working_dir else None,
    )
