"""Overload is shed, not queued: a real ``ussd serve`` given far more hops than it can serve
answers every one of them within its budget, the ones it cannot serve in time with a fast
polite "busy" end (docs/reliability.md, "Overload"; the figures at scale: bench/overload.py).

The server runs one worker serving one hop at once (``--threads 1``), its Redis behind a
delaying proxy that makes every round trip 20 ms: about 20 hops a second. A hundred hops come
at once, in every dialect.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from conftest import ALICE, JOHN, seed_subscribers
from delaying_proxy import DelayingProxy
from handsets import GATEWAYS, encode
from redis_servers import RedisServer
from served import Served, get, served_env

from ussd.store import Store
from ussd.store.keys import session_digest

pytestmark = pytest.mark.real_redis

TOKEN = "overload-test-token-0123456789"
BUDGET = 0.3  # USSD_BUSY_AFTER
HOPS = 100
BUSY = {ALICE: "Service très sollicité. Merci de recomposer #121# dans un instant.",
        JOHN: "Service busy. Please dial #121# again in a moment."}
DIALECTS = list(GATEWAYS.values())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with RedisServer() as redis_server, DelayingProxy(redis_server.port) as proxy:
        client = redis.Redis(port=redis_server.port, decode_responses=True)
        seed_subscribers(Store(client, prefix="overload"))
        env = served_env(REDIS_URL=proxy.url, USSD_KEY_PREFIX="overload",
                         USSD_AFRICASTALKING_TOKEN=TOKEN, USSD_HUBTEL_TOKEN=TOKEN,
                         USSD_FLARES_TOKEN=TOKEN, USSD_BUSY_AFTER=str(BUDGET))
        log = tmp_path_factory.mktemp("overload") / "server.log"
        with Served(["--workers", "1", "--threads", "1"], env, log) as served:
            proxy.delay = 0.02
            yield served
        client.close()


def dial(url: str, dialect, msisdn: str, session: str) -> tuple[int, str, float]:
    """One dial through ``dialect``: the status, the screen (or the body), the seconds."""
    import urllib.error
    import urllib.request

    from ussd.contract import WireReply

    method, target, headers, body = encode(dialect.dial(session, msisdn))
    if dialect.wire_format.token_in_path:
        target = target.replace(dialect.PATH, f"{dialect.PATH}/{TOKEN}", 1)
    else:
        headers = {**headers, "Authorization": f"Bearer {TOKEN}"}
    request = urllib.request.Request(url + target, data=body, method=method, headers=headers)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            answer = WireReply(reply.status, reply.headers.get_content_type(),
                               reply.read().decode(), dict(reply.headers))
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), time.monotonic() - started
    took = time.monotonic() - started
    return answer.status, dialect.wire_format.read_reply(answer).text, took


def burst(url: str, dialect, tag: str) -> tuple[list[str], list[tuple[int, str, float]]]:
    """A hundred dials through ``dialect`` at once, Alice and John in turn, on sessions named
    after ``tag``: the numbers dialled and each answer (status, screen, seconds)."""
    # The worker has served both before: it knows John reads English (it asks Redis nothing
    # to answer "busy").
    assert dial(url, dialect, JOHN, f"{tag}-john")[1].startswith("Orange #121#")
    time.sleep(BUDGET)
    numbers = [ALICE if n % 2 else JOHN for n in range(HOPS)]
    with ThreadPoolExecutor(HOPS) as pool:
        answers = list(pool.map(lambda n: dial(url, dialect, numbers[n], f"{tag}-{n}"),
                                range(HOPS)))
    return numbers, answers


def busy_hops(url: str, gateway: str) -> float:
    """The hops of ``gateway`` answered "busy" so far, as a scrape of the server's metrics
    counts them."""
    _, _, text = get(url + "/metrics")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("ussd_hops_total{") and 'outcome="busy"' in line
               and f'gateway="{gateway}"' in line)


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_a_hundred_hops_at_once_all_answered_within_the_budget(server, dialect):
    numbers, answers = burst(server.url, dialect, dialect.name)
    statuses = {status for status, _, _ in answers}
    assert statuses == {200}
    served = [took for (_, text, took) in answers if text.startswith("Orange #121#")]
    busy = [(numbers[n], text, took) for n, (_, text, took) in enumerate(answers)
            if text in BUSY.values()]
    assert len(served) + len(busy) == HOPS  # each answer a menu or "busy": nothing else
    assert all(text == BUSY[number] for number, text, _ in busy)  # in their own language
    assert 3 <= len(served) < HOPS / 2 and len(busy) > HOPS / 2
    slowest = max(took for _, _, took in answers)
    assert slowest < BUDGET + 0.5, slowest  # the budget, the hop in hand, and the client's


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_the_operator_sees_the_busy_hops(server, dialect):
    # Its own burst, on sessions of its own: the test holds alone (``-k``), after the others
    # and run again on the same server.
    name, tag = dialect.name, f"seen-{dialect.name}-{time.monotonic_ns()}"
    before = busy_hops(server.url, name)
    _, answers = burst(server.url, dialect, tag)
    told_busy = sum(text in BUSY.values() for _, text, _ in answers)
    assert told_busy > HOPS / 2
    assert busy_hops(server.url, name) - before == told_busy
    digests = {session_digest(name, f"{tag}-{n}") for n in range(HOPS)}
    lines = [line for line in server.output().splitlines() if " outcome=busy " in line
             and line.split(" session=", 1)[-1].split(" ", 1)[0] in digests]
    assert len(lines) == told_busy
    assert all(f" INFO ussd.hop hop gateway={name} " in line and " end=True " in line
               and " screen=busy " in line for line in lines)
