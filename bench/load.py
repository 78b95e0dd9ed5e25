"""The load: whole #121# dialogues in the Africa's Talking dialect, played by ``wrk``.

Subscriber number ``n`` (MSISDN ``+22507`` and ``n`` on 8 digits) is of kind ``n % KINDS``: a
current profile, a target profile (one of the three others) and a language. Its dialogue is
dial, ``1`` (change profile), the target's number, ``1`` (confirm), and every reply must be the
screen expected for that kind at that hop: the profile list marks the kind's own profile, the
confirmation and the success name its target, so a reply from another session shows.
The expected screens are taken from the service itself on the embedded store, once.

Every request is built by the dialect's client half (``ussd/gateways/africastalking.py``) and
put on the wire by ``ussd.sim.http_request``; ``dialogues.lua`` only sends the bodies written
here, so the wire format is written once, in the dialect module.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

from ussd.contract import WireRequest
from ussd.gateways import dialect
from ussd.rules import PROFILES_IN_ORDER, Language, Profile
from ussd.sim import http_request

BENCH = Path(__file__).resolve().parent
CONSUMED = 9_000  # F CFA last month: enough for every profile under the default thresholds
GATEWAY = dialect("africastalking")  # the dialect the load speaks
PATH = f"/ussd/{GATEWAY.name}"
CODE = "*121#"


@dataclass(frozen=True)
class Kind:
    """What a subscriber of one kind is, and what its dialogue chooses."""

    profile: Profile
    target: Profile
    language: Language

    @property
    def inputs(self) -> tuple[str, ...]:
        """The input of each hop after the dial: change profile, the target, confirm."""
        return ("1", str(PROFILES_IN_ORDER.index(self.target) + 1), "1")


KINDS = tuple(
    Kind(profile, target, language)
    for language in Language
    for profile in PROFILES_IN_ORDER
    for target in PROFILES_IN_ORDER
    if target is not profile
)


def msisdn(number: int) -> str:
    """The MSISDN of subscriber ``number``."""
    return f"+22507{number:08d}"


def kind_of(number: int) -> Kind:
    return KINDS[number % len(KINDS)]


HOPS = 1 + len(KINDS[0].inputs)  # the dial, then one hop per input


def dialogue(number: int, session_id: str) -> list[WireRequest]:
    """The gateway's request of each hop of subscriber ``number``'s dialogue."""
    inputs = kind_of(number).inputs
    return [GATEWAY.dial(session_id, msisdn(number), CODE)] + [
        GATEWAY.hop(session_id, msisdn(number), CODE, inputs[:count])
        for count in range(1, len(inputs) + 1)]


def http(request: WireRequest) -> tuple[str, str, dict[str, str], bytes | None]:
    """``(method, target, headers, body)`` of one of the load's requests over HTTP."""
    return http_request(request, PATH)


def seed(store, count: int, month: str) -> None:
    """Store ``count`` subscribers (of every kind in turn) and their consumption in ``month``."""
    store.admin.put_subscribers((msisdn(n), kind_of(n).profile, kind_of(n).language)
                          for n in range(count))
    store.admin.put_consumption((msisdn(n), month, CONSUMED) for n in range(count))


def expected_replies() -> list[list[str]]:
    """For every kind, the exact reply body of each hop, as the service answers it."""
    import fakeredis

    from ussd.months import month_of, previous_month
    from ussd.settings import Settings
    from ussd.web import create_app

    settings = replace(Settings.from_env(), redis_url=None, key_prefix="expected")
    app = create_app(settings, redis_client=fakeredis.FakeRedis(decode_responses=True))
    service = app.extensions["ussd"]
    last_month = previous_month(month_of(service.clock(), service.zone))
    seed(service.store, len(KINDS), last_month)
    client = app.test_client()
    replies = []
    for number, kind in enumerate(KINDS):
        hops = []
        for request in dialogue(number, f"expected-{number}"):
            method, target, headers, body = http(request)
            response = client.open(target, method=method, headers=headers, data=body)
            hops.append(response.get_data(as_text=True))
        if not (hops[-1].startswith("END ") and kind.target.title in hops[-1]):
            raise RuntimeError(f"the service did not migrate {kind}: {hops}")
        replies.append(hops)
    return replies


def lua_string(text: str) -> str:
    """``text`` as a Lua string literal (bytes outside printable ASCII as ``\\ddd``)."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in '"\\' else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def write_data(path: Path, run: str, first: int, last: int, replies: list[list[str]] | None,
               fixed: str | None = None) -> Path:
    """The Lua data file of one wrk run (see ``dialogues.lua``), and beside it the bodies of
    every request of the run, one a line: subscriber ``n``'s hop ``h`` (from 1) on line
    ``(n - first) * HOPS + h``, session ids ``<run>-<n>``."""
    bodies = path.with_suffix(".bodies")
    sent = [http(request) for number in range(first, last + 1)
            for request in dialogue(number, f"{run}-{number}")]
    # One shape for every request (the same method, target and headers): only bodies differ.
    [(method, target, headers)] = {(m, t, tuple(h.items())) for m, t, h, _ in sent}
    bodies.write_text("".join(body.decode() + "\n" for *_, body in sent))  # URL-encoded: no \n
    lines = [f"FIRST, LAST = {first}, {last}",
             f"KINDS, HOPS = {len(KINDS)}, {HOPS}",
             f"METHOD, PATH = {lua_string(method)}, {lua_string(target)}",
             "HEADERS = {" + ", ".join(f"[{lua_string(name)}] = {lua_string(value)}"
                                       for name, value in headers) + "}",
             f"BODIES = {lua_string(str(bodies))}"]
    if fixed is not None:
        lines.append("EXPECTED = {any = {" + ", ".join([lua_string(fixed)] * HOPS) + "}}")
    else:
        lines.append("EXPECTED = {")
        for hops in replies:
            lines.append("  {" + ", ".join(lua_string(h) for h in hops) + "},")
        lines.append("}")
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass(frozen=True)
class LoadResult:
    """What one wrk run measured."""

    seconds: float
    hops: int
    sessions: int
    bad_replies: int
    socket_errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    first_bad: str
    load_cpu_seconds: float

    @property
    def hops_per_second(self) -> float:
        return self.hops / self.seconds

    @property
    def sessions_per_second(self) -> float:
        return self.sessions / self.seconds

    @property
    def errors(self) -> int:
        return self.bad_replies + self.socket_errors


def wrk_path() -> str:
    """The wrk binary; a clear error when it is missing."""
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("bench/run.py needs wrk (Debian: apt-get install wrk): a compiled load "
                         "generator, so that the load itself takes little of the 2 cores")
    return path


def play(url: str, data: Path, concurrency: int, seconds: float, token: str | None,
         script: str = "dialogues.lua") -> LoadResult:
    """Run wrk for ``seconds`` with ``concurrency`` connections, each playing dialogues (or
    what ``script`` plays: ``api.lua``, which sends its own token, ``token`` None)."""
    auth = ["--header", f"Authorization: Bearer {token}"] if token else []
    command = [wrk_path(), "--threads", str(concurrency), "--connections", str(concurrency),
               "--duration", f"{seconds:g}s", "--timeout", "5s", *auth,
               "--script", str(BENCH / script), url, "--", str(data), str(concurrency)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read()
    _, proc.returncode, usage = os.wait4(proc.pid, 0)  # wait4: wrk's own CPU time
    match = re.search(r"^RESULT (.*)$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk gave no result:\n{output}")
    fields = dict(pair.split("=") for pair in match.group(1).split())
    number = {name: int(value) for name, value in fields.items()}
    bad = re.search(r"^FIRST_BAD (.*)$", output, re.MULTILINE)
    return LoadResult(
        seconds=number["duration_us"] / 1e6,
        hops=number["checked"],
        sessions=number["sessions"],
        bad_replies=number["bad_replies"],
        socket_errors=sum(number[k] for k in ("connect", "read", "write", "timeout")),
        p50_ms=number["p50_us"] / 1000,
        p95_ms=number["p95_us"] / 1000,
        p99_ms=number["p99_us"] / 1000,
        max_ms=number["max_us"] / 1000,
        first_bad=bad.group(1) if bad else "",
        load_cpu_seconds=usage.ru_utime + usage.ru_stime,
    )
