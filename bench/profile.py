"""Profile the hop path: whole dialogues through the service's WSGI app, under pyinstrument.

    python bench/profile.py [--dialogues 2000]      (pip install -e '.[bench]' for pyinstrument)

The app is the one ``ussd serve`` runs (its Flask app, the Africa's Talking endpoint with its
gateway secret, the hop log line at INFO) on a throw-away redis-server, sent the load's requests
(``load.dialogue``); the WSGI callable is called directly, so no HTTP server or load generator
shows in the profile. Prints the call tree of the hops, then the app's CPU time per hop.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))

import load
from redis_servers import RedisServer

from ussd.logs import LOG_FORMAT, LineHandler, LogFormatter
from ussd.months import month_of, previous_month
from ussd.settings import Settings
from ussd.web import create_app

TOKEN = "profile-token-0123456789"


def environ(method: str, target: str, headers: dict[str, str], body: bytes) -> dict:
    """A WSGI environ for one gateway request (one of ``load.http``'s)."""
    path, _, query = target.partition("?")
    return {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "HTTP_AUTHORIZATION": f"Bearer {TOKEN}",
        "CONTENT_TYPE": headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,  # as granian, which hands over the whole body
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dialogues", type=int, default=2000, help="dialogues to play")
    args = parser.parse_args()
    from pyinstrument import Profiler

    with open(os.devnull, "w") as devnull, RedisServer({"save": ""}) as server:
        # As ussd serve logs: one INFO line per hop, through its handler and format (so the hop
        # line takes its short way, ussd.logs.LineLogger), here to /dev/null.
        handler = LineHandler(devnull)
        handler.setFormatter(LogFormatter(LOG_FORMAT))
        logging.basicConfig(level=logging.INFO, handlers=[handler])
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
        settings = Settings.from_env({"REDIS_URL": server.url, "USSD_KEY_PREFIX": "profile",
                                      "USSD_GATEWAYS": "africastalking",
                                      "USSD_AFRICASTALKING_TOKEN": TOKEN})
        app = create_app(settings)
        store = app.extensions["ussd"].store
        load.seed(store, args.dialogues, previous_month(month_of(datetime.now(UTC),
                                                                 settings.zone)))
        hops = [load.http(request) for n in range(args.dialogues)
                for request in load.dialogue(n, f"profile-{n}")]
        profiler = Profiler(interval=0.0005)
        cpu = time.process_time()
        profiler.start()
        for hop in hops:
            b"".join(app(environ(*hop), lambda status, headers, exc_info=None: None))
        profiler.stop()
        cpu = time.process_time() - cpu
    print(profiler.output_text(unicode=False, color=False))
    print(f"{len(hops)} hops, {cpu / len(hops) * 1e6:.0f} us of CPU per hop "
          f"(under the profiler, which adds to it)")


if __name__ == "__main__":
    main()
