"""Start and stop the app under test (the service or the ceiling) behind a WSGI server.

Every server is a child process on 127.0.0.1, stopped by its own PID. The service under granian
is started exactly as production starts it, ``ussd serve``; the ceiling app under granian
through the same :func:`ussd.cli.granian_server`, so both get the same server settings. The
gunicorn kinds exist to compare servers (see ``bench/README.md``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ussd.cli import DEFAULT_THREADS

BENCH = Path(__file__).resolve().parent
HOST = "127.0.0.1"
SERVERS = ("granian", "gunicorn-sync", "gunicorn-gthread")


def free_port() -> int:
    """A port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def service_env(redis_url: str, prefix: str, token: str) -> dict[str, str]:
    """The service's settings in the benches: the Africa's Talking endpoint only, on
    ``redis_url`` under ``prefix``, its gateway secret ``token`` checked as in production."""
    return {
        "REDIS_URL": redis_url,
        "USSD_KEY_PREFIX": prefix,
        "USSD_GATEWAYS": "africastalking",
        "USSD_AFRICASTALKING_TOKEN": token,
    }


class AppServer:
    """One app (``service`` or ``ceiling``) served by one WSGI server kind, as a child process."""

    def __init__(self, app: str, server: str, workers: int, threads: int | None,
                 env: dict[str, str], log: Path):
        self.app, self.server, self.workers, self.threads = app, server, workers, threads
        self.port = free_port()
        self.env = {**os.environ, **env}
        self.log_path = log
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def command(self) -> list[str]:
        """The command line that serves this app with this server."""
        python = sys.executable
        threads = self.threads or DEFAULT_THREADS  # as ussd serve; gunicorn sync has none
        if self.server == "granian" and self.app == "service":
            return [python, "-c", "from ussd.cli import main; main()", "serve",
                    "--host", HOST, "--port", str(self.port), "--workers", str(self.workers),
                    "--threads", str(threads)]
        if self.server == "granian":
            return [python, "-c",
                    "import sys; from ussd.cli import granian_server; "
                    "granian_server(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),"
                    " int(sys.argv[5]), working_dir=sys.argv[6]).serve()",
                    "ceiling:app", HOST, str(self.port), str(self.workers), str(threads),
                    str(BENCH)]
        target = "ussd.wsgi:app" if self.app == "service" else "ceiling:app"
        kind = self.server.removeprefix("gunicorn-")
        command = [python, "-m", "gunicorn", "--bind", f"{HOST}:{self.port}",
                   "--workers", str(self.workers), "--worker-class", kind,
                   "--chdir", str(BENCH), "--config", str(BENCH / "gunicorn_conf.py")]
        if kind == "gthread":
            command += ["--threads", str(threads)]
        return [*command, target]

    def start(self, timeout: float = 30.0) -> AppServer:
        """Start the server and wait until every worker can answer."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), env=self.env, cwd=BENCH,
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.app} under {self.server} exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as reply:
                    if reply.status in (200, 404):  # the ceiling has no /healthz: 404 is up
                        return self
            except urllib.error.HTTPError as error:
                if error.code == 404:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.app} under {self.server} not up in {timeout:.0f}s; "
                           f"see {self.log_path}")

    def stop(self) -> None:
        """Stop the server by its PID (SIGTERM, then SIGKILL), workers included."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        children = descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        for pid in children:  # workers the server failed to reap: ours, by PID
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server and its workers."""
        if self.proc is None:
            return 0.0
        return sum(process_cpu(pid) for pid in [self.proc.pid, *descendants(self.proc.pid)])

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def descendants(pid: int) -> list[int]:
    """The PIDs of every live descendant of ``pid``."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def process_cpu(pid: int) -> float:
    """User plus system CPU seconds of one live process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
