"""Hostile bodies, refused before they cost anything, as a real ``ussd serve`` (granian) meets
them: the table of docs/reliability.md, "Bounded input", in every dialect, then what the
operator sees of it (every log line one line, no number, no token, no path; every metric label
from its closed set).

The server runs one worker, the three dialects behind their tokens, ``USSD_BODY_TIMEOUT=1``,
JSON logs; the requests are written on raw sockets, so that a body can be huge, chunked or
slow and a header oversized, as an attacker with a gateway's secret would send them.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from api_calls import API_TOKENS, write_clients_file
from conftest import ALICE
from handsets import GATEWAYS, encode
from prometheus_client.parser import text_string_to_metric_families
from served import Served, get, serving_subscribers

from ussd import metrics
from ussd.contract import Reply, WireReply, WireRequest
from ussd.sim import http_request

pytestmark = pytest.mark.real_redis

TOKEN = "hostile-test-token-0123456789"
INVALID = "Demande non reconnue. Merci de composer #121#."
NUMBER_DIGITS = re.compile(r"0700000001|2250700000001")
DIALECTS = list(GATEWAYS.values())


@pytest.fixture(scope="module")
def server(tmp_path_factory, real_redis_url):
    folder = tmp_path_factory.mktemp("hostile")
    with serving_subscribers(real_redis_url, f"hostile{os.getpid()}", {
            "USSD_AFRICASTALKING_TOKEN": TOKEN, "USSD_HUBTEL_TOKEN": TOKEN,
            "USSD_FLARES_TOKEN": TOKEN, "USSD_LOG_FORMAT": "json", "USSD_BODY_TIMEOUT": "1",
            "USSD_API_CLIENTS": str(write_clients_file(folder / "clients.toml"))},
            folder / "server.log") as served:
        yield served


def head(dialect, method: str, target: str, headers: dict[str, str], length: int | None,
         extra: str = "") -> bytes:
    """A request's head: the dialect's path (its token in the path, or as a bearer token)."""
    if dialect.wire_format.token_in_path:
        target = target.replace(dialect.PATH, f"{dialect.PATH}/{TOKEN}", 1)
    else:
        headers = {**headers, "Authorization": f"Bearer {TOKEN}"}
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in
                                                                   headers.items())]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + extra + "\r\n\r\n").encode()


def exchange(port: int, *parts: bytes, pause: float = 0.0, timeout: float = 10.0):
    """Send ``parts`` (``pause`` seconds between them) on a new connection; the answer's
    status, headers and body, and the seconds it took from the first byte sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        started = time.monotonic()
        for number, part in enumerate(parts):
            if number and pause:
                time.sleep(pause)
            try:
                sock.sendall(part)
            except OSError:
                break  # answered (and closed) before the rest was read: as it should be
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head_text, _, body = data.partition(b"\r\n\r\n")
        lines = head_text.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        headers = {name.lower(): value for name, value in headers.items()}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return int(lines[0].split()[1]), headers, body.decode(), time.monotonic() - started


def hop_call(dialect, session: str):
    """The dial of ``ALICE`` in ``dialect``: method, target, headers, body."""
    return encode(dialect.dial(session, ALICE))


def clean_end(dialect, sent: WireRequest) -> tuple[int, str, str]:
    """What the dialect answers a request it cannot read: its own polite end, in French."""
    answer = dialect.wire_format.wire(Reply(INVALID, True), sent)
    return answer.status, answer.mimetype, answer.body


def worker_rss(server: Served) -> int:
    """Resident memory of the server's worker processes (its children), in kB."""
    total = 0
    for entry in Path("/proc").iterdir():
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("PPid", "").strip() == str(server.proc.pid):
            total += int(fields.get("VmRSS", "0 kB").split()[0])
    return total


# --- the table ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_deep_nesting_is_the_dialects_clean_end(server, dialect):
    """A kilobyte of ``[``: before, Hubtel's JSON read raised RecursionError, an HTML 500."""
    method, target, headers, _ = hop_call(dialect, "nest")
    nested = b"[" * 1024
    if dialect.wire_format.body == "query":
        target = target.split("?")[0] + "?SessionID=" + "%5B" * 1024
        request = head(dialect, method, target, {}, None)
    else:
        request = head(dialect, method, target, headers, len(nested)) + nested
    status, answer_headers, body, _ = exchange(server.port, request)
    expected = clean_end(dialect, WireRequest(method, "", {}, {}, None))
    assert (status, answer_headers["content-type"].split(";")[0], body) == expected


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_a_huge_body_is_refused_unread(server, dialect, chunked):
    """50 MB with a valid secret: before, read whole and served, the worker 70 MB larger."""
    method, target, headers, _ = hop_call(dialect, "huge")
    size = 50 * 1024 * 1024
    before = worker_rss(server)
    piece = b"text=" + b"1" * (64 * 1024 - 5)
    if chunked:
        request = head(dialect, method, target, headers, None, "\r\nTransfer-Encoding: chunked")
        chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        parts = [request, *[chunk] * (size // len(piece))]
    else:
        parts = [head(dialect, method, target, headers, size), *[piece] * (size // len(piece))]
    status, _, body, took = exchange(server.port, *parts)
    if chunked and dialect.wire_format.body == "query":
        # No length said, and a dialect that reads no body: it is never read, the hop served.
        assert (status, body.split("\n")[0]) == (200, "Orange #121#")
    else:
        assert (status, body) == (413, "request body too large\n")
    assert took < 5
    assert worker_rss(server) - before < 10_000  # kB: the body was never held


@pytest.mark.parametrize("dialect", [d for d in DIALECTS if d.wire_format.body != "query"],
                         ids=lambda d: d.name)
def test_slow_bodies_hold_no_hop_and_are_refused(server, dialect):
    """A hundred bodies that take 3 s each (the limit is 1 s), a hop sent meanwhile: the hop
    is answered at once, each slow body with 408 when it has come, never served."""
    method, target, headers, body = hop_call(dialect, "slow")
    request = head(dialect, method, target, headers, len(body))
    half = len(body) // 2

    def slow(number: int):
        return exchange(server.port, request + body[:half], body[half:], pause=3.0)

    with ThreadPoolExecutor(100) as pool:
        slow_ones = [pool.submit(slow, n) for n in range(100)]
        time.sleep(0.5)  # all hundred waiting for the rest of their bodies
        quick_method, quick_target, quick_headers, quick_body = hop_call(dialect, "quick")
        status, _, text, took = exchange(server.port, head(
            dialect, quick_method, quick_target, quick_headers, len(quick_body)) + quick_body)
        # Held behind the slow bodies, it would be answered once they are done: 2.5 s or more
        # after it was sent. (0.5 s was once missed on the 2 shared cores of a full run, and
        # 0.9 s, with bodies of 1.5 s, on a slowed VM: 0.95 s.)
        assert status == 200 and took < 2.0, (status, took)
        assert dialect.wire_format.read_reply(_answer(status, text, dialect)).text.startswith(
            "Orange #121#")
        answers = [future.result() for future in slow_ones]
    assert {(status, text) for status, _, text, _ in answers} == {
        (408, "request body too slow\n")}


def _answer(status: int, text: str, dialect):
    mimetype = "application/json" if dialect.wire_format.body == "json" else "text/plain"
    return WireReply(status, mimetype, text)


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_control_characters_stay_in_their_line(server, dialect):
    """A newline in what the gateway sends (an end report's status, a request's type) cannot
    start a line of its own in the log (checked after the table, below)."""
    forged = f'x\n{{"message": "forged", "number": "{ALICE}"}}\r\nINFO forged'
    request = dialect.end("ctl", ALICE).request
    kind = dialect.wire_format.body
    fields = {name: forged if name in ("status", "Type", "abort") else value
              for name, value in getattr(request, kind).items()}
    method, target, headers, body = http_request(
        WireRequest(request.method, request.suffix, **{kind: fields}), dialect.PATH)
    status, _, _, _ = exchange(server.port, head(dialect, method, target, headers,
                                                 len(body) if body else None) + (body or b""))
    assert status == 200


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_huge_headers_are_refused_by_the_server(server, dialect):
    method, target, headers, body = hop_call(dialect, "headers")
    request = head(dialect, method, target, {**headers, "X-Padding": "a" * 20_000},
                   len(body) if body else None) + (body or b"")
    status, answer_headers, _, took = exchange(server.port, request)
    assert (status, answer_headers.get("connection")) == (431, "close")
    assert took < 1


# --- the same table for the HTTP API --------------------------------------------------------------

def api_head(length: int | None, extra: str = "") -> bytes:
    lines = [f"POST /api/v1/subscribers/{ALICE}/migrations HTTP/1.1", "Host: 127.0.0.1",
             f"Authorization: Bearer {API_TOKENS['portal']}", "Idempotency-Key: hostile-1",
             "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + extra + "\r\n\r\n").encode()


def test_the_api_refuses_the_table_too(server):
    nested = b"[" * 1024
    status, headers, body, _ = exchange(server.port, api_head(len(nested)) + nested)
    assert (status, headers["content-type"], json.loads(body)["status"]) == (
        400, "application/problem+json", 400)
    size = 50 * 1024 * 1024
    piece = b"1" * 65536
    status, headers, body, took = exchange(server.port, api_head(size),
                                           *[piece] * (size // len(piece)))
    assert (status, headers["content-type"], json.loads(body)["status"]) == (
        413, "application/problem+json", 413)
    assert took < 5
    request = b'{"profile": "Tigre"}'
    status, headers, body, took = exchange(server.port, api_head(len(request)) + request[:8],
                                           request[8:], pause=1.5)
    assert (status, json.loads(body)["detail"]) == (408, "The body took over 1 s to come.")
    status, headers, _, _ = exchange(server.port, api_head(len(request), "\r\nX-Padding: "
                                                           + "a" * 20_000) + request)
    assert status == 431


def counted(server: Served) -> dict[tuple[str, ...], float]:
    """The refusals ``/metrics`` counts now: the gateways' by (gateway, reason), the API's by
    (endpoint, client, status)."""
    status, _, text = get(server.url + "/metrics")
    assert status == 200
    counts = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ussd_rejected_requests_total":
                counts[sample.labels["gateway"], sample.labels["reason"]] = sample.value
            elif sample.name == "ussd_api_requests_total":
                labels = sample.labels
                counts[labels["endpoint"], labels["client"], labels["status"]] = sample.value
    return counts


def counted_after(server: Served, send) -> dict[tuple[str, ...], float]:
    """What ``send()`` added to the counts of :func:`counted` (the series that grew)."""
    before = counted(server)
    send()
    after = counted(server)
    return {key: value - before.get(key, 0.0) for key, value in after.items()
            if value != before.get(key, 0.0)}


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_each_refused_body_is_counted(server, dialect):
    """The operator sees every body refused: too large (413) and too slow (408) under their
    own reasons, nesting as the malformed request its dialect refuses."""
    name = dialect.name
    method, target, headers, body = hop_call(dialect, "counted")
    too_large = head(dialect, method, target, headers, 20_000)  # refused unread: none sent

    def send_too_large():
        assert exchange(server.port, too_large)[0] == 413

    assert counted_after(server, send_too_large) == {(name, "body_too_large"): 1}
    if dialect.wire_format.body != "query":  # a dialect that reads no body waits for none
        request = head(dialect, method, target, headers, len(body))

        def send_too_slow():
            answer = exchange(server.port, request + body[:5], body[5:], pause=1.5)
            assert answer[0] == 408

        assert counted_after(server, send_too_slow) == {(name, "body_too_slow"): 1}
    nested = b"[" * 1024
    if dialect.wire_format.body == "query":
        nesting = head(dialect, method, target.split("?")[0] + "?SessionID=" + "%5B" * 1024,
                       {}, None)
    else:
        nesting = head(dialect, method, target, headers, len(nested)) + nested

    def send_nesting():
        assert exchange(server.port, nesting)[0] == 200  # the dialect's clean end

    assert counted_after(server, send_nesting) == {(name, "BadRequestError"): 1}


def test_each_body_the_api_refuses_is_counted(server):
    """The API's refusals are counted with its requests, by status."""
    nested = b"[" * 1024
    request = b'{"profile": "Tigre"}'
    for status, parts, pause in (
            (400, [api_head(len(nested)) + nested], 0.0),
            (413, [api_head(20_000)], 0.0),
            (408, [api_head(len(request)) + request[:8], request[8:]], 1.5)):

        def send(parts=parts, pause=pause, status=status):
            assert exchange(server.port, *parts, pause=pause)[0] == status

        assert counted_after(server, send) == {("post_migration", "portal", str(status)): 1}


# --- what the operator sees of it ----------------------------------------------------------------

def test_after_the_table_every_log_line_is_one_clean_line(server):
    lines = server.output().splitlines()
    records = []
    for line in lines:
        if line.startswith("{"):
            records.append(json.loads(line))  # each JSON line whole: none forged, none cut
        else:  # granian's own lines and ussd serve's start-up text: no request in them
            assert "forged" not in line and "Traceback" not in line, line
    written = "\n".join(lines)
    assert NUMBER_DIGITS.search(written) is None
    assert TOKEN not in written
    # What was forged is inside the line that quotes it, escaped: never a record of its own.
    assert not any(str(record.get("message", "")).startswith(("forged", "INFO forged"))
                   for record in records)
    assert all("/ussd/" not in json.dumps(record) for record in records)


def test_after_the_table_every_label_is_from_its_closed_set(server):
    status, _, text = get(server.url + "/metrics")
    assert status == 200
    allowed = (metrics.GATEWAYS | metrics.OUTCOMES | metrics.REASONS | metrics.REJECTIONS
               | metrics.ENDINGS | set(metrics.FUNNEL) | metrics.REDIS_OPERATIONS
               | metrics.CHANNELS | metrics.PROFILES | {metrics.OTHER, "", "-"}
               | metrics.API_ENDPOINTS | metrics.API_STATUSES | set(API_TOKENS)
               | {status for statuses in metrics.END_STATUSES.values() for status in statuses})
    for line in text.splitlines():
        if line.startswith("ussd_") and "{" in line:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("{", 1)[1].rsplit("}", 1)[0]))
            labels.pop("le", None)
            assert set(labels.values()) <= allowed, line
