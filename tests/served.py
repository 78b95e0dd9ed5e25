"""A real ``ussd serve`` process on a loopback port, for the tests that need one (install,
metrics across workers, logs as served): started, waited for, stopped by its process id."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"


def served_env(**settings: str) -> dict[str, str]:
    """This process's environment without its ``USSD_*``, ``PROMETHEUS_*`` and ``REDIS_URL``
    (a developer's own must not reach a test's server), plus ``settings``."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("USSD_", "PROMETHEUS_")) and key != "REDIS_URL"}
    return {**env, **settings}


@contextlib.contextmanager
def serving_subscribers(redis_url: str, prefix: str, settings: dict[str, str], log: Path,
                        arguments: tuple[str, ...] = ("--workers", "1")):
    """``ussd serve`` on ``redis_url`` under ``prefix``, the test subscribers stored first and
    every key of the prefix deleted after: the :class:`Served` server."""
    import redis
    from conftest import seed_subscribers

    from ussd.store import Store

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    seed_subscribers(Store(client, prefix=prefix))
    env = served_env(REDIS_URL=redis_url, USSD_KEY_PREFIX=prefix, **settings)
    try:
        with Served(list(arguments), env, log) as served:
            yield served
    finally:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def get(url: str, timeout: float = 5.0) -> tuple[int, dict[str, str], str]:
    """GET ``url``: status, headers (names in lower case), body (an HTTP error status is
    returned, not raised)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status, _lower(reply.headers), reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers), error.read().decode()


def _lower(headers) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


class Served:
    """``ussd serve ARGS`` as a child process (its own session, so its workers stop with it).

    ``command`` is how to run ``ussd`` (default: this interpreter with the package on its
    path); its output goes to ``log``.
    """

    def __init__(self, args: list[str], env: dict[str, str], log: Path,
                 command: list[str] | None = None, cwd: Path | None = None,
                 port: int | None = None):
        self.port = port or free_port()
        self.command = [*(command or [sys.executable, "-m", "ussd.cli"]), "serve",
                        "--host", HOST, "--port", str(self.port), *args]
        self.env, self.log, self.cwd = env, log, cwd
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 30.0, ready: str = "/healthz") -> Served:
        """Start it and wait until it answers ``ready``; RuntimeError with its output if not."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.command, env=self.env, cwd=self.cwd,
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ussd serve exited {self.proc.returncode}:\n{self.output()}")
            try:
                if get(self.url + ready, timeout=1)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"ussd serve not up in {timeout:.0f}s:\n{self.output()}")

    def output(self) -> str:
        """What the server wrote so far (standard output and error)."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the server's process group (its id is the server's), then SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout)

    def __enter__(self) -> Served:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
