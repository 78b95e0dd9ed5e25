"""What ``ussd serve`` sets up around the app: the log lines, the metrics shared by its worker
processes and their own listener, and the granian server itself.

Order matters here: prometheus_client picks its single- or multi-process mode when it is
first imported, from ``PROMETHEUS_MULTIPROC_DIR``, and granian forks its workers from this
process, so :func:`shared_metrics` runs before anything imports :mod:`ussd.metrics`, and the
workers inherit the mode, the directory and the log handler.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import socket
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from .limits import Limits
from .logs import LOG_FORMAT, JsonLogFormatter, LineHandler, LogFormatter
from .settings import Settings

log = logging.getLogger("ussd")

# Hops a worker runs at once: while one waits on Redis another runs. Measured on 2 cores
# (bench/README.md): 3 serve 10-15% more hops than 2 (the ceiling app as many or a few more),
# and 4 fewer than 3. The others wait their turn in ussd/overload.py.
DEFAULT_THREADS = 3
# Requests a worker holds at once, each on a thread of its own from the moment it arrives, so
# that its wait for a turn is measured (ussd/overload.py) rather than spent in granian's queue,
# where nothing sees it; and so that a request whose body is slow to come (granian cannot time
# a body out) holds its own thread only, not a hop's. As many as the connections it accepts:
# one request at a time on each, so none waits unseen. Threads are started as requests come
# (and stop after 30 s idle): a quiet worker has a few; each costs a few tens of kB of memory
# while it lives (bench/README.md, "Overload").
MAX_IN_FLIGHT = 1024
# Connections a worker accepts: granian's backpressure counts connections, not requests, and
# a gateway's keep-alive connection holds its place for as long as it lives; one more beyond
# the limit would wait unanswered in the kernel's queue (the "unanswered at 10 s").
MAX_CONNECTIONS = MAX_IN_FLIGHT
# A gateway waits a few seconds for a hop: a client that has not sent its headers by then is
# not a gateway worth a connection. The same time closes a keep-alive connection left idle
# (hyper starts the clock when it waits for the next request's headers). Redis calls are
# bounded by USSD_REDIS_TIMEOUT (1 s).
HEADER_READ_TIMEOUT_MS = 2_000
# A request's head (its line and headers) larger than this is answered 431 by the server
# (hyper's read buffer; a gateway's head is well under a kilobyte; hyper's least is 8 KiB).
MAX_HEADER_BYTES = 16_384
# On shutdown, hops in flight get this long to finish before their worker is killed.
WORKERS_KILL_TIMEOUT_S = 5


def serving_limits(limits: Limits, threads: int | None) -> Limits:
    """The bounds of an app ``ussd serve`` serves: ``threads`` hops at once, in turns."""
    return replace(limits, hops_at_once=threads or DEFAULT_THREADS)


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


def check_address(host: str, port: int) -> None:
    """Raise OSError (``EADDRINUSE``...) unless ``host:port`` can be listened on now.

    granian binds with ``SO_REUSEPORT``: a second server started on a port in use would not
    fail but share it, each connection going to one or the other (their own stores and API
    tokens: random 401s, dialogues broken mid-way). A probe without it fails instead.
    """
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed one's TIME_WAIT
        probe.bind((host, port))


def listen_address(value: str) -> str:
    """The IP address ``--host`` names (``[::1]`` as ``::1``); ValueError for anything else:
    granian listens on an address, never a name (``localhost`` fails only once it binds)."""
    return str(ipaddress.ip_address(value.removeprefix("[").removesuffix("]")))


def authority(host: str, port: int) -> str:
    """``host:port`` as a URL writes it: ``127.0.0.1:8000``, ``[::1]:8000``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def default_workers() -> int:
    """One worker per CPU this process may run on (a container's CPU set, not the host's)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def granian_server(target: str, host: str, port: int, workers: int, threads: int | None = None,
                   working_dir: str | None = None, in_flight: int | None = None):
    """The granian WSGI server ``ussd serve`` runs (``bench/run.py`` serves its ceiling app
    with it too, with ``threads`` threads and no turns: its best, measured).

    ``in_flight`` threads per worker (``ussd serve``: :data:`MAX_IN_FLIGHT`), else
    ``threads``; :data:`MAX_CONNECTIONS` connections per worker; heads of
    :data:`MAX_HEADER_BYTES` at most, read within :data:`HEADER_READ_TIMEOUT_MS`.
    """
    from granian import Granian
    from granian.http import HTTP1Settings

    threads = threads or DEFAULT_THREADS
    return Granian(
        target,
        address=host,
        port=port,
        interface="wsgi",
        workers=workers,
        blocking_threads=in_flight or threads,
        backpressure=MAX_CONNECTIONS,
        http="1",  # gateways speak HTTP/1.1
        websockets=False,
        http1_settings=HTTP1Settings(header_read_timeout=HEADER_READ_TIMEOUT_MS, keep_alive=True,
                                     max_buffer_size=MAX_HEADER_BYTES),
        respawn_failed_workers=True,
        workers_kill_timeout=WORKERS_KILL_TIMEOUT_S,
        log_access=False,
        working_dir=Path(working_dir) if working_dir else None,
    )
