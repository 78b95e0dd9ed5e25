"""The front proxy of the compose deployment holds what granian cannot: a body that stops
coming (docs/reliability.md, section 13, "Limits"; granian#728, wontfix).

Debian's nginx runs ``deploy/nginx.conf`` itself, the file docker-compose.yml mounts, with only
its listen port, its upstream address, its pid and log paths (and temporary folders) rewritten
for a test, in front of a real ``ussd serve`` (one worker, Africa's Talking and Hubtel behind
their tokens, a real Redis). The requests are raw sockets where a body must stall or be huge.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import ALICE
from handsets import GATEWAYS, encode
from served import HOST, Served, free_port, get, serving_subscribers

pytestmark = pytest.mark.real_redis

ROOT = Path(__file__).resolve().parent.parent.parent
CONFIG = ROOT / "deploy" / "nginx.conf"
NGINX = "/usr/sbin/nginx"
TOKEN = "front-proxy-test-token-0123456789"
MAIN = ("CON Orange #121#\n1. Changer de profil\n2. Mon profil\n3. Conditions de migration"
        "\n4. Language / Langue")
BODY_TIMEOUT = 2.0  # client_body_timeout in deploy/nginx.conf
STALLED = 50


def rewritten(text: str, folder: Path, port: int, upstream: int) -> str:
    """``deploy/nginx.conf`` for this test: each line rewritten must be there exactly once."""
    changes = {
        "user nginx;": "",  # as root, Debian's default worker user (nobody); else ignored
        "pid /var/run/nginx.pid;": f"pid {folder}/nginx.pid;",
        "/var/log/nginx/error.log": f"{folder}/error.log",
        "/var/log/nginx/access.log": f"{folder}/access.log",
        "server app:8000;": f"server {HOST}:{upstream};",
        "listen 8000;": f"listen {HOST}:{port};",
        "http {": "http {\n" + "".join(
            f"    {kind}_temp_path {folder}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
    }
    for line, replacement in changes.items():
        assert text.count(line) == 1, f"{line!r} is no longer once in {CONFIG}"
        text = text.replace(line, replacement)
    return text


@pytest.fixture(scope="module")
def app(tmp_path_factory, real_redis_url):
    log = tmp_path_factory.mktemp("frontproxy-app") / "server.log"
    with serving_subscribers(real_redis_url, f"frontproxy{os.getpid()}", {
            "USSD_AFRICASTALKING_TOKEN": TOKEN, "USSD_HUBTEL_TOKEN": TOKEN,
            "USSD_FLARES_TOKEN": TOKEN, "USSD_PROXY_HOPS": "1"}, log) as served:
        yield served


class Nginx:
    def __init__(self, folder: Path, port: int, proc: subprocess.Popen):
        self.folder, self.port, self.proc = folder, port, proc

    def logs(self) -> str:
        return "".join((self.folder / name).read_text(errors="replace")
                       for name in ("access.log", "error.log", "stderr.log")
                       if (self.folder / name).exists())


@pytest.fixture(scope="module")
def nginx(tmp_path_factory, app):
    if not os.path.exists(NGINX):
        if os.environ.get("CI"):
            pytest.fail("nginx is missing: .ci/run installs Debian's nginx-light")
        pytest.skip("nginx not installed (apt-get install nginx-light)")
    folder = tmp_path_factory.mktemp("frontproxy-nginx")
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / kind).mkdir()
        if os.geteuid() == 0:
            shutil.chown(folder / kind, "nobody")  # nginx's workers write there
    port = free_port()
    conf = folder / "nginx.conf"
    conf.write_text(rewritten(CONFIG.read_text(), folder, port, app.port))
    with open(folder / "stderr.log", "wb") as stderr:
        proc = subprocess.Popen([NGINX, "-p", str(folder), "-c", str(conf), "-e", "stderr",
                                 "-g", "daemon off;"], stdin=subprocess.DEVNULL,
                                stdout=stderr, stderr=subprocess.STDOUT, start_new_session=True)
    server = Nginx(folder, port, proc)
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"nginx exited {proc.returncode}:\n{server.logs()}")
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nginx not up in 10 s:\n{server.logs()}") from None
                time.sleep(0.05)
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # its own session: the master and its workers
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def africastalking_dial(port: int, session: str) -> tuple[int, str, float]:
    """Alice dials through Africa's Talking: the status, the body, the seconds it took."""
    dialect = GATEWAYS["africastalking"]
    method, target, headers, body = encode(dialect.dial(session, ALICE))
    headers = {**headers, "Authorization": f"Bearer {TOKEN}"}
    request = urllib.request.Request(f"http://{HOST}:{port}{target}", data=body,
                                     method=method, headers=headers)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            status, text = reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    return status, text, time.monotonic() - started


def stalled_head(length: int = 1000) -> bytes:
    """Africa's Talking's request head, with its secret, announcing ``length`` bytes of body."""
    return ("POST /ussd/africastalking HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {TOKEN}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def read_until_closed(sock: socket.socket) -> bytes | None:
    """What the server sent until it closed the connection; None if it reset it."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        return data or None
    return data


def logged(nginx: Nginx, status: str, at_least: int = 0) -> int:
    """How many requests nginx's access log records with ``status``, waiting up to a second
    for ``at_least`` (nginx writes the line once the connection is done with, a little after
    the answer)."""
    deadline = time.monotonic() + 1.0
    while True:
        text = (nginx.folder / "access.log").read_text()
        count = re.findall(r" POST (\d{3}) ", text).count(status)
        if count >= at_least or time.monotonic() > deadline:
            return count
        time.sleep(0.02)


def app_refused_slow(app: Served) -> float:
    """The app's own count of bodies it refused as too slow (``/metrics``)."""
    _, _, text = get(app.url + "/metrics")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("ussd_rejected_requests_total{")
               and 'reason="body_too_slow"' in line)


def test_a_hop_through_nginx_gets_the_exact_main_menu(nginx):
    status, text, _ = africastalking_dial(nginx.port, "front-first")
    assert (status, text) == (200, MAIN)


def test_a_stalled_body_is_refused_by_nginx_and_its_connection_closed(nginx):
    before = logged(nginx, "408")
    with socket.create_connection((HOST, nginx.port), timeout=10) as sock:
        sock.sendall(stalled_head() + b"s")
        started = time.monotonic()
        answer = read_until_closed(sock)  # returns once nginx has closed the connection
        took = time.monotonic() - started
    # nginx ends a request whose body timed out with 408 in its access log (checked below)
    # and sends nothing: reset_timedout_connection resets the connection at once.
    assert answer is None, answer[:200]
    assert BODY_TIMEOUT - 0.2 < took < BODY_TIMEOUT + 1.0, took
    assert logged(nginx, "408", before + 1) == before + 1
    print(f"stalled body: connection reset after {took:.2f} s")


def hubtel_huge(port: int) -> bytes | None:
    """50 KB to Hubtel's path, its secret in it: nginx's answer."""
    body = b"x" * 50_000
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall((f"POST /ussd/hubtel/{TOKEN} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Content-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n").encode())
        with contextlib.suppress(OSError):  # refused (and closed) before all was read
            sock.sendall(body)
        return read_until_closed(sock)


def test_a_50_kb_body_gets_413_from_nginx(nginx):
    # nginx refuses on the Content-Length, before the app is asked.
    before = logged(nginx, "413")
    answer = hubtel_huge(nginx.port)
    assert logged(nginx, "413", before + 1) == before + 1
    assert answer is not None and answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"Server: nginx\r\n" in answer  # nginx's own page, not the app's


def test_a_hop_is_answered_while_stalled_bodies_are_held(nginx, app):
    before, slow_before = logged(nginx, "408"), app_refused_slow(app)
    socks = []
    try:
        for _ in range(STALLED):
            sock = socket.create_connection((HOST, nginx.port), timeout=10)
            sock.sendall(stalled_head() + b"s")
            socks.append(sock)
        held = time.monotonic()
        status, text, took = africastalking_dial(nginx.port, "front-held")
        assert (status, text) == (200, MAIN)
        assert took < 1.0, took
        assert time.monotonic() - held < BODY_TIMEOUT  # asked while all of them were held
        answers = [read_until_closed(sock) for sock in socks]
        closed = time.monotonic() - held
    finally:
        for sock in socks:
            sock.close()
    assert answers == [None] * STALLED  # each reset by nginx, none answered by the app
    assert logged(nginx, "408", before + STALLED) == before + STALLED
    assert app_refused_slow(app) == slow_before  # the app never saw a slow body
    assert closed < BODY_TIMEOUT + 1.0, closed
    print(f"hop answered in {took:.3f} s beside {STALLED} stalled bodies, "
          f"all {STALLED} refused and closed within {closed:.2f} s")


def test_the_logs_never_name_the_secret(nginx):
    # Hubtel's secret is in its path: a hop and a refusal there, then every log nginx wrote.
    dialect = GATEWAYS["hubtel"]
    method, target, headers, body = encode(dialect.dial("front-logs", ALICE))
    target = target.replace(dialect.PATH, f"{dialect.PATH}/{TOKEN}", 1)
    request = urllib.request.Request(f"http://{HOST}:{nginx.port}{target}", data=body,
                                     method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 200
    assert hubtel_huge(nginx.port).startswith(b"HTTP/1.1 413 ")
    logs = nginx.logs()
    assert logged(nginx, "200", 1) >= 1 and logged(nginx, "413", 1) >= 1
    assert TOKEN not in logs, logs


def api_post(port: int, path: str, body: bytes) -> tuple[int, str, str]:
    """A POST to the HTTP API through ``port``, without a token: status, type, body."""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                      ).encode())
        with contextlib.suppress(OSError):
            sock.sendall(body)
        answer = read_until_closed(sock) or b""
    head, _, text = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    kind = next((line.split(":", 1)[1].strip() for line in lines
                 if line.lower().startswith("content-type:")), "")
    return int(lines[0].split()[1]), kind, text.decode()


def test_the_apis_bounds_pass_through_nginx_and_its_refusals_are_problems(nginx):
    # A consumption feed of 300 entries (about 18 KB, under the API's 256 KiB) reaches the
    # app, not nginx's gateway bound of 16 KiB: the app answers it (this test's server has no
    # API clients, so no API: its 404 problem).
    entries = ",".join(f'{{"msisdn":"070000{n:04d}","month":"2026-10","amount":1000}}'
                       for n in range(300))
    body = f'{{"months":[{entries}]}}'.encode()
    assert 16_384 < len(body) < 262_144
    status, kind, text = api_post(nginx.port, "/api/v1/consumption", body)
    assert (status, kind) == (404, "application/problem+json"), text[:200]
    assert '"title":"Not Found"' in text
    # Over the API's bound, nginx refuses it, as a problem, not an HTML page.
    status, kind, text = api_post(nginx.port, "/api/v1/consumption", b"x" * 300_000)
    assert (status, kind, text) == (
        413, "application/problem+json",
        '{"type":"about:blank","title":"Content Too Large","status":413}')
