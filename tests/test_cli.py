"""The ``ussd`` command, as an operator and a tester run it (ussd/cli.py, ussd/sim.py)."""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import fakeredis
import pytest
from click.testing import CliRunner
from conftest import ALICE, Dialler, seed_subscribers
from werkzeug.serving import make_server

from ussd.cli import main
from ussd.months import month_of, previous_month
from ussd.settings import DEFAULT_MENUS_DIR, Settings
from ussd.store import Store
from ussd.store.keys import KeySpace
from ussd.web import create_app

pytestmark = pytest.mark.real_redis

LAST_MONTH = previous_month(month_of(datetime.now(UTC), ZoneInfo("Africa/Abidjan")))
MONTH_BEFORE_LAST = previous_month(LAST_MONTH)


@pytest.fixture
def env(real_redis_url, real_redis, key_prefix):
    """The environment of a command working on the real Redis, under this test's prefix."""
    return {"REDIS_URL": real_redis_url, "USSD_REDIS_URL": None, "USSD_KEY_PREFIX": key_prefix}


def run(args, env):
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def stored_keys(real_redis, key_prefix):
    return sorted(real_redis.scan_iter(f"{key_prefix}:*"))


@pytest.fixture
def csv_files(tmp_path):
    subscribers = tmp_path / "subscribers.csv"
    subscribers.write_text("msisdn,profile,language\n0700000001,Novamix,fr\n"
                           "0700000002,Tigre,en\n0700000003,Novamix,\n")
    consumption = tmp_path / "consumption.csv"
    consumption.write_text(f"msisdn,month,amount\n0700000001,{LAST_MONTH},3000\n"
                           f"0700000003,{LAST_MONTH},1200\n")
    return subscribers, consumption


def test_seed_loads_the_files_and_reports_counts(env, csv_files, real_redis, key_prefix):
    subscribers, consumption = csv_files
    result = run(["seed", str(subscribers), str(consumption)], env)
    assert (result.exit_code, result.output) == (0, (
        f"{subscribers}: 3 subscribers row(s) loaded: 3 added, 0 already stored\n"
        f"{consumption}: 2 consumption row(s) loaded\n"))
    assert real_redis.hgetall(KeySpace(key_prefix).subscriber(ALICE)) == {
        "p": "novamix", "l": "fr", f"c:{LAST_MONTH}": "3000"
    }
    assert len(stored_keys(real_redis, key_prefix)) == 3


def test_seed_refuses_a_bad_file_and_stores_nothing(env, csv_files, tmp_path, real_redis,
                                                     key_prefix):
    subscribers, consumption = csv_files
    bad = tmp_path / "bad.csv"
    bad.write_text("msisdn,month,amount\n0700000001,2026-10,12\n0700000002,2026-13,5\n"
                   "0700000002,2026-10,-5\n")
    result = run(["seed", str(subscribers), str(consumption), str(bad)], env)
    assert result.exit_code != 0
    assert f"{bad}: 2 bad row(s), nothing loaded" in result.output
    assert "line 3: not a YYYY-MM month: '2026-13'" in result.output
    assert "line 4: amount must be a whole number of F CFA, got '-5'" in result.output
    assert "row(s) loaded" not in result.output
    assert stored_keys(real_redis, key_prefix) == []


def test_seed_names_every_bad_file_in_one_run_and_stores_nothing(env, csv_files, tmp_path,
                                                                 real_redis, key_prefix):
    """Before, the run stopped at the first bad file: the second was named only once the first
    was mended. The files are told of in the order they are read, subscribers' first."""
    subscribers, consumption = csv_files
    bad_consumption = tmp_path / "bad_consumption.csv"
    bad_consumption.write_text(f"msisdn,month,amount\n0700000001,{LAST_MONTH},12\n"
                               "0700000002,2026-13,5\n")
    bad_subscribers = tmp_path / "bad_subscribers.csv"
    bad_subscribers.write_text("msisdn,profile\n0700000004,Lion\n0700000005,Aigle\n"
                               "12345,Tigre\n")
    result = run(["seed", str(bad_consumption), str(subscribers), str(bad_subscribers),
                  str(consumption)], env)
    assert (result.exit_code, result.output) == (1, (
        f"Error: {bad_subscribers}: 2 bad row(s), nothing loaded\n"
        "  line 2: unknown profile 'Lion' (one of Novamix, Tigre, Dauphin, Aigle)\n"
        "  line 4: not a valid CI number: '12345'\n"
        f"{bad_consumption}: 1 bad row(s), nothing loaded\n"
        "  line 3: not a YYYY-MM month: '2026-13'\n"))
    assert stored_keys(real_redis, key_prefix) == []


def test_seed_says_a_subscriber_not_found_may_be_in_a_file_it_could_not_read(
        env, csv_files, tmp_path, real_redis, key_prefix):
    """Before: 'load the subscribers first', for subscribers given in the unreadable file."""
    _, consumption = csv_files
    unreadable = tmp_path / "subscribers_utf16.csv"
    unreadable.write_text("msisdn,profile\n0700000001,Tigre\n0700000003,Aigle\n",
                          encoding="utf-16")
    result = run(["seed", str(consumption), str(unreadable)], env)
    maybe = f"it may be in {unreadable}, whose rows could not be read"
    assert (result.exit_code, result.output) == (1, (
        f"Error: {unreadable}: 1 problem(s), nothing loaded\n"
        "  cannot read: 'utf-8' codec can't decode byte 0xff in position 0: invalid start "
        "byte\n"
        f"{consumption}: 2 bad row(s), nothing loaded\n"
        f"  line 2: no subscriber +2250700000001 ({maybe})\n"
        f"  line 3: no subscriber +2250700000003 ({maybe})\n"))
    assert stored_keys(real_redis, key_prefix) == []


def test_serve_names_every_bad_seed_file_before_touching_redis(tmp_path, key_prefix):
    bad_consumption = tmp_path / "bad_consumption.csv"
    bad_consumption.write_text("msisdn,month,amount\n0700000002,2026-13,5\n")
    bad_subscribers = tmp_path / "bad_subscribers.csv"
    bad_subscribers.write_text("msisdn,profile\n12345,Tigre\n")
    result = run(["serve", "--insecure", "--seed", str(bad_consumption), "--seed",
                  str(bad_subscribers)],
                 {"REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0", "USSD_REDIS_URL": None,
                  "USSD_API_CLIENTS": None, "USSD_KEY_PREFIX": key_prefix})
    assert (result.exit_code, result.output) == (1, (  # subscribers' first, as ussd seed
        f"Error: {bad_subscribers}: 1 bad row(s), nothing loaded\n"
        "  line 2: not a valid CI number: '12345'\n"
        f"{bad_consumption}: 1 bad row(s), nothing loaded\n"
        "  line 2: not a YYYY-MM month: '2026-13'\n"))


@pytest.fixture
def no_server(monkeypatch):
    """``ussd serve`` stopped short of serving: a test fails, rather than hangs, if it gets
    that far."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("ussd serve went on to serve")

    monkeypatch.setattr("ussd.server.granian_server", refuse)


SERVE_ENV = {"REDIS_URL": None, "USSD_REDIS_URL": None, "USSD_API_CLIENTS": None}


@pytest.mark.parametrize(("family", "host", "shown"), [
    (socket.AF_INET, "127.0.0.1", "127.0.0.1"),
    (socket.AF_INET6, "::1", "[::1]"),
])
def test_serve_refuses_a_port_another_server_listens_on(no_server, key_prefix, family, host,
                                                        shown):
    """As granian listens (SO_REUSEADDR and SO_REUSEPORT): a second server would share the
    port, each connection going to one or the other, rather than fail."""
    with socket.socket(family) as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind((host, 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(["serve", "--demo", "--host", host, "--port", str(port)],
                     {**SERVE_ENV, "USSD_KEY_PREFIX": key_prefix})
    assert (result.exit_code, result.output) == (1, (
        f"Error: cannot serve on {shown}:{port}: Address already in use (another server "
        "listening there?)\n"))


def test_serve_listens_on_an_ip_address_not_a_name(no_server, key_prefix):
    result = run(["serve", "--demo", "--host", "localhost"],
                 {**SERVE_ENV, "USSD_KEY_PREFIX": key_prefix})
    assert result.exit_code == 2
    assert result.output.endswith(
        "Error: Invalid value for '--host': 'localhost' is not an IP address (granian listens "
        "on an address, not a name: 127.0.0.1, ::1, 0.0.0.0, ::)\n")


def test_serve_refuses_menus_whose_confirmation_needs_ucs2_and_pages(no_server, key_prefix,
                                                                    tmp_path):
    """A curly apostrophe made the English confirmation UCS-2 (80 characters a page): served,
    "1" confirmed from page 1, which showed neither choice. Now it does not start."""
    menus = tmp_path / "menus"
    shutil.copytree(DEFAULT_MENUS_DIR, menus)
    en = menus / "texts/en.toml"
    text = en.read_text(encoding="utf-8")
    en.write_text(text.replace("{target}: free.", "{target}: it\u2019s free.", 1),
                  encoding="utf-8")
    line = text[:text.index("{target}: free.")].count("\n") + 1
    result = run(["serve", "--demo"], {**SERVE_ENV, "USSD_KEY_PREFIX": key_prefix,
                                       "USSD_MENUS_DIR": str(menus)})
    assert (result.exit_code, result.output) == (1, (
        f"Error: screens too long for one USSD message:\n  {en}:{line}: screen 'confirm' in en: "
        "a screen with choices must fit one message, and this one is 165 characters in UCS-2 "
        "('\u2019' is not in GSM 03.38), over its 80 (with the widest figures and the line "
        "'Invalid choice.')\n"))


DEMO_NOTE = ("Demo: with a cap or thresholds other than the defaults, the README's table of "
             "demo subscribers may not hold")


@pytest.mark.parametrize(("variables", "note", "shown"), [
    pytest.param({"USSD_MONTHLY_CAP": "2"}, DEMO_NOTE + "; 0700000004 made 2 of its 3 scripted "
                 "migrations of this month (Dauphin refused: monthly_limit_reached)",
                 "Votre profil: Tigre.\nMigrations restantes ce mois: 0 sur 2.", id="cap-2"),
    pytest.param({"USSD_MONTHLY_CAP": "0"}, DEMO_NOTE + "; 0700000004 made 0 of its 3 scripted "
                 "migrations of this month (Novamix refused: monthly_limit_reached, Tigre "
                 "refused: monthly_limit_reached, Dauphin refused: monthly_limit_reached)",
                 "Votre profil: Aigle.\nMigrations restantes ce mois: 0 sur 0.", id="cap-0"),
    pytest.param({"USSD_THRESHOLD_TIGRE": "30000"}, DEMO_NOTE + "; 0700000004 made 2 of its 3 "
                 "scripted migrations of this month (Tigre refused: insufficient_consumption)",
                 "Votre profil: Dauphin.\nMigrations restantes ce mois: 1 sur 3.",
                 id="tigre-30000"),
    pytest.param({"USSD_THRESHOLD_AIGLE": "10000"}, DEMO_NOTE,
                 "Votre profil: Dauphin.\nMigrations restantes ce mois: 0 sur 3.",
                 id="aigle-10000"),
])
def test_the_demo_serves_under_any_cap_and_thresholds(monkeypatch, key_prefix, variables, note,
                                                      shown):
    """Its scripted migrations used to raise RuntimeError in the worker, after "Serving":
    granian's crash loop, exit 1. Now those the figures refuse are left out, and said."""
    loaders = []

    class Server:
        def serve(self, target_loader):
            loaders.append(target_loader)

    monkeypatch.setattr("ussd.server.granian_server", lambda *args, **kwargs: Server())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run(["serve", "--demo", "--port", str(port)],
                 {**SERVE_ENV, "USSD_KEY_PREFIX": key_prefix, **variables})
    assert result.exit_code == 0, result.output
    [loader] = loaders
    app = loader("ussd.wsgi:app")  # what granian's worker does: it used to raise here
    assert Dialler(app.test_client(), "0700000004").send("2").startswith(f"CON {shown}\n")
    lines = result.output.splitlines()
    assert note in lines
    assert lines.index(note) < next(n for n, line in enumerate(lines)
                                    if line.startswith("Serving #121#"))


def test_the_demo_under_the_default_figures_says_nothing_of_them(monkeypatch, key_prefix):
    monkeypatch.setattr("ussd.server.granian_server", lambda *args, **kwargs: type(
        "Server", (), {"serve": lambda self, target_loader: None})())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run(["serve", "--demo", "--port", str(port)],
                 {**SERVE_ENV, "USSD_KEY_PREFIX": key_prefix, "USSD_THRESHOLD_TIGRE": "2500"})
    assert result.exit_code == 0, result.output
    assert "Demo: " not in result.output


def test_move_to_buckets_says_how_many_keys_it_left_and_names_no_number(env, real_redis,
                                                                       key_prefix):
    old = f"{key_prefix}:{{{ALICE}}}"
    real_redis.hset(f"{old}:sub", "p", "tigre")
    real_redis.rpush(f"{old}:history", "{}")
    real_redis.hset(f"{key_prefix}:{{+2250700000002}}:sub", "p", "aigle")
    real_redis.hset(KeySpace(key_prefix).subscriber("+2250700000002"), "p", "aigle")
    real_redis.set(f"{key_prefix}:{{+225}}:sub", "x")  # no number
    real_redis.set(f"{old}:notes", "x")  # nothing that layout wrote
    left = (f"; 1 left where a key of the new layout exists already; 2 other key(s) matching "
            f"{key_prefix}:{{+*}}:* left, not recognised (no subscriber's hash, history or "
            "session under a normalised number)\n")
    result = run(["move-to-buckets", "--dry-run"], env)
    assert (result.exit_code, result.output) == (0, "2 key(s) would move to their buckets" + left)
    result = run(["move-to-buckets"], env)
    assert (result.exit_code, result.output) == (0, "2 key(s) moved to their buckets" + left)
    assert run(["move-to-buckets"], env).output == "0 key(s) moved to their buckets" + left
    assert real_redis.hget(KeySpace(key_prefix).subscriber(ALICE), "p") == "tigre"


def test_seed_without_redis_url_says_what_to_set(csv_files, key_prefix):
    result = run(["seed", str(csv_files[0])],
                 {"REDIS_URL": None, "USSD_REDIS_URL": None, "USSD_KEY_PREFIX": key_prefix})
    assert result.exit_code == 1
    assert "REDIS_URL is not set" in result.output


def closed_port():
    with socket.socket() as probe:  # a port that was free a moment ago, and nobody listens on
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_seed_when_redis_cannot_be_reached_hides_the_password(csv_files, key_prefix):
    url = f"redis://:hunter2hunter2@127.0.0.1:{closed_port()}/9"
    result = run(["seed", str(csv_files[0])],
                 {"REDIS_URL": url, "USSD_REDIS_URL": None, "USSD_KEY_PREFIX": key_prefix})
    assert result.exit_code == 1
    assert "cannot reach Redis at redis://:***@127.0.0.1:" in result.output
    assert "hunter2" not in result.output


def test_seed_of_a_missing_file(env, tmp_path):
    result = run(["seed", str(tmp_path / "nowhere.csv")], env)
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_show_prints_what_is_stored(env, csv_files):
    assert run(["seed", *map(str, csv_files)], env).exit_code == 0
    result = run(["show", "0700000001"], env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "msisdn": ALICE, "profile": "novamix", "language": "fr",
        "consumption": {LAST_MONTH: 3000}, "migrations_by_month": {},
        "migrations_this_month": 0, "history": [],
    }


@pytest.mark.parametrize(("number", "message"), [
    ("0799999999", "no subscriber +2250799999999"),
    ("12345", "not a valid CI number"),
])
def test_show_of_an_unknown_or_bad_number(env, number, message):
    result = run(["show", number], env)
    assert result.exit_code == 1
    assert message in result.output


def test_migrate_applies_an_approved_migration(env, csv_files):
    assert run(["seed", *map(str, csv_files)], env).exit_code == 0
    result = run(["migrate", "0700000001", "Tigre", "--channel", "app"], env)
    assert result.exit_code == 0, result.output
    # The audit line on standard error, the decision on standard output.
    assert re.search(r"INFO ussd.audit migration channel=app client=cli "
                     r"msisdn=\+225\*{7}001 from=novamix to=tigre$", result.stderr, re.M)
    assert json.loads(result.stdout) == {
        "reason": "approved", "approved": True, "current": "novamix", "target": "tigre",
        "required": 2500, "consumed": 3000, "migrations_left": 2,
    }
    shown = json.loads(run(["show", "+2250700000001"], env).output)
    assert (shown["profile"], shown["migrations_this_month"]) == ("tigre", 1)
    assert [(e["from"], e["to"], e["channel"]) for e in shown["history"]] == [
        ("novamix", "tigre", "app")
    ]


@pytest.mark.parametrize(("number", "profile", "decision"), [
    ("0700000003", "tigre", {"reason": "insufficient_consumption", "required": 2500,
                             "consumed": 1200, "migrations_left": 3}),
    ("0700000002", "tigre", {"reason": "same_profile"}),
    ("0700000001", "lion", {"reason": "unknown_profile", "target": None}),
    ("0799999999", "tigre", {"reason": "unknown_subscriber"}),
])
def test_migrate_prints_a_refusal_and_exits_1(env, csv_files, number, profile, decision):
    assert run(["seed", *map(str, csv_files)], env).exit_code == 0
    result = run(["migrate", number, profile], env)
    assert result.exit_code == 1
    printed = json.loads(result.output)
    assert printed["approved"] is False
    assert printed.items() >= decision.items()


def test_migrate_for_customer_care_names_the_cli_in_the_history(env, csv_files):
    assert run(["seed", *map(str, csv_files)], env).exit_code == 0
    assert run(["migrate", "0700000001", "Dauphin", "--channel", "care"], env).exit_code == 0
    shown = json.loads(run(["show", "+2250700000001"], env).output)
    assert [(e["to"], e["channel"], e["client"]) for e in shown["history"]] == [
        ("dauphin", "care", "cli")]


def test_migrate_hits_the_cap_on_the_fourth(env, csv_files):
    assert run(["seed", *map(str, csv_files)], env).exit_code == 0
    for profile in ("dauphin", "novamix", "dauphin"):
        assert run(["migrate", "0700000001", profile], env).exit_code == 0
    result = run(["migrate", "0700000001", "novamix"], env)
    assert result.exit_code == 1
    assert json.loads(result.output)["reason"] == "monthly_limit_reached"


def test_prune_deletes_the_months_before_last_and_says_how_many(env, csv_files, tmp_path):
    older = tmp_path / "older.csv"
    older.write_text(f"msisdn,month,amount\n0700000001,{MONTH_BEFORE_LAST},800\n"
                     f"0700000002,{MONTH_BEFORE_LAST},900\n0700000002,2020-01,5\n")
    assert run(["seed", *map(str, csv_files), str(older)], env).exit_code == 0
    result = run(["prune", "--dry-run"], env)
    assert result.exit_code == 0, result.output
    assert result.output == (f"months before {LAST_MONTH}: would delete 3 field(s) of "
                             "2 subscriber(s); 3 subscriber(s) visited\n")
    assert json.loads(run(["show", "0700000002"], env).output)["consumption"] == {
        "2020-01": 5, MONTH_BEFORE_LAST: 900}
    result = run(["prune"], env)
    assert result.exit_code == 0, result.output
    assert result.output == (f"months before {LAST_MONTH}: deleted 3 field(s) of "
                             "2 subscriber(s); 3 subscriber(s) visited\n")
    assert json.loads(run(["show", "0700000001"], env).output)["consumption"] == {
        LAST_MONTH: 3000}
    assert json.loads(run(["show", "0700000002"], env).output)["consumption"] == {}


def test_prune_can_keep_more_months_but_never_last_month(env, csv_files, tmp_path):
    older = tmp_path / "older.csv"
    older.write_text(f"msisdn,month,amount\n0700000001,{MONTH_BEFORE_LAST},800\n")
    assert run(["seed", *map(str, csv_files), str(older)], env).exit_code == 0
    result = run(["prune", "--keep-months", "2"], env)
    assert result.output.startswith(f"months before {MONTH_BEFORE_LAST}: deleted 0 field(s)")
    assert json.loads(run(["show", "0700000001"], env).output)["consumption"] == {
        MONTH_BEFORE_LAST: 800, LAST_MONTH: 3000}
    result = run(["prune", "--keep-months", "0"], env)
    assert result.exit_code == 2
    assert "0 is not in the range 1<=x<=120" in result.output


# --- the handset simulator --------------------------------------------------------------------


@pytest.fixture
def serve():
    """``serve(wsgi_app)`` runs it on a free port of 127.0.0.1 in a thread; returns its URL."""
    servers = []

    def start(app):
        server = make_server("127.0.0.1", 0, app)
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def server_url(serve, key_prefix):
    client = fakeredis.FakeRedis(decode_responses=True)
    settings = Settings(key_prefix=key_prefix)
    seed_subscribers(Store(client, prefix=key_prefix))
    clock = lambda: datetime(2026, 11, 15, 10, 0, tzinfo=UTC)  # noqa: E731
    return serve(create_app(settings, redis_client=client, clock=clock))


def sim(url, *inputs, msisdn="0700000001", dial=None):
    args = ["sim", "--url", url, "--msisdn", msisdn]
    args += ["--dial", dial] if dial else []
    for text in inputs:
        args += ["--input", text]
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_sim_plays_the_inputs_and_prints_every_screen(server_url):
    result = sim(server_url, "1", "2", "1")
    assert result.exit_code == 0, result.output
    assert result.output == (
        "+---------------------------- CON\n"
        "| Orange #121#\n| 1. Changer de profil\n| 2. Mon profil\n| 3. Conditions de migration\n"
        "| 4. Language / Langue\n"
        "+----------------------------\n"
        "> 1\n"
        "+---------------------------- CON\n"
        "| Choisissez votre nouveau profil:\n| 1. Novamix (actuel)\n| 2. Tigre\n| 3. Dauphin\n"
        "| 4. Aigle\n| 0 Retour | 00 Accueil\n"
        "+----------------------------\n"
        "> 2\n"
        "+---------------------------- CON\n"
        "| Migration vers Tigre: gratuite. Il vous restera 2 migration(s) ce mois. Vos avantages"
        " en cours sont conservés.\n| 1. Confirmer\n| 2. Annuler\n| 0 Retour | 00 Accueil\n"
        "+----------------------------\n"
        "> 1\n"
        "+---------------------------- END\n"
        "| Votre profil est désormais Tigre. Vous gardez vos avantages en cours dans la limite"
        " de leur validité. Migrations restantes ce mois: 2.\n"
        "+----------------------------\n"
    )


def test_sim_dials_a_chained_code(server_url):
    result = sim(server_url, dial="*121*1*4#")
    assert result.exit_code == 0, result.output
    assert "CON" in result.output.splitlines()[0]
    assert "| Migration vers Aigle impossible" in result.output


def test_sim_fails_when_inputs_remain_after_end(server_url):
    result = sim(server_url, "1", "2", "1", "2", "3")
    assert result.exit_code == 1
    assert "| Votre profil est désormais Tigre." in result.output
    assert "error: the session ended with 2 input(s) unused" in result.output


def misbehaving(status="200 OK", body=b"CON Bonjour", content_type="text/plain"):
    def app(environ, start_response):
        start_response(status, [("Content-Type", content_type),
                                ("Content-Length", str(len(body)))])
        return [body]
    return app


@pytest.mark.parametrize(("app", "error"), [
    (misbehaving(body=b"Bonjour"), "reply starts with neither CON nor END: 'Bonjour'"),
    (misbehaving(body=b""), "reply starts with neither CON nor END"),
    (misbehaving(status="500 INTERNAL SERVER ERROR", body=b"oops"), "HTTP 500"),
    (misbehaving(content_type="text/html"), "reply is text/html, not text/plain"),
    (misbehaving(body=("CON " + "x" * 183).encode()), "screen of 183 characters exceeds 182"),
    (misbehaving(body=("END " + "ê" * 81).encode()), "screen of 81 characters exceeds 80"),
])
def test_sim_fails_when_the_server_misbehaves(serve, app, error):
    result = sim(serve(app), "1")
    assert result.exit_code == 1
    assert f"error: {error}" in result.output


def test_sim_fails_when_no_server_listens():
    port = closed_port()
    result = sim(f"http://127.0.0.1:{port}", "1")
    assert result.exit_code == 1
    assert f"error: cannot reach http://127.0.0.1:{port}/ussd/africastalking" in result.output


def test_seed_dry_run_checks_and_stores_nothing(env, csv_files, real_redis, key_prefix):
    subscribers, consumption = csv_files
    result = run(["seed", "--dry-run", str(subscribers), str(consumption)], env)
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"{subscribers}: 3 subscribers row(s) checked, nothing stored (--dry-run): 3 would be "
        "added, 0 already stored\n"
        f"{consumption}: 2 consumption row(s) checked, nothing stored (--dry-run)\n")
    assert stored_keys(real_redis, key_prefix) == []


def test_seed_refuses_consumption_of_an_unknown_subscriber_or_a_month_to_come(
        env, tmp_path, real_redis, key_prefix):
    consumption = tmp_path / "consumption.csv"
    next_month = month_of(datetime.now(UTC) + timedelta(days=40), ZoneInfo("Africa/Abidjan"))
    consumption.write_text(f"msisdn,month,amount\n0700000001,{LAST_MONTH},3000\n"
                           f"0700000001,{next_month},10\n")
    result = run(["seed", str(consumption)], env)
    assert result.exit_code == 1
    assert f"line 3: month {next_month} has not begun" in result.output
    consumption.write_text(f"msisdn,month,amount\n0700000001,{LAST_MONTH},3000\n")
    result = run(["seed", str(consumption)], env)
    assert result.output == (f"Error: {consumption}: 1 bad row(s), nothing loaded\n"
                             "  line 2: no subscriber +2250700000001 (load the subscribers "
                             "first)\n")
    assert stored_keys(real_redis, key_prefix) == []


def test_seed_dry_run_names_an_unknown_subscriber_with_the_other_bad_rows(env, tmp_path,
                                                                          real_redis, key_prefix):
    """Before, line 2 was named only on a second run, once line 3 was mended."""
    seed_subscribers(Store(real_redis, prefix=key_prefix))
    consumption = tmp_path / "consumption.csv"
    consumption.write_text(f"msisdn,month,amount\n0700000099,{LAST_MONTH},5\n"
                           f"0700000001,{LAST_MONTH},abc\n")
    before = stored_keys(real_redis, key_prefix)
    result = run(["seed", "--dry-run", str(consumption)], env)
    assert (result.exit_code, result.output) == (1, (
        f"Error: {consumption}: 2 bad row(s), nothing loaded\n"
        "  line 2: no subscriber +2250700000099 (load the subscribers first)\n"
        "  line 3: amount must be a whole number of F CFA, got 'abc'\n"))
    assert stored_keys(real_redis, key_prefix) == before


# --- seeding again ----------------------------------------------------------------------------

KEPT = "left as they are (--replace overwrites their profile and language)"


def choose_english(real_redis, key_prefix, msisdn):
    """The subscriber switches to English from the menu (4 Language / Langue, 2 English)."""
    app = create_app(Settings(key_prefix=key_prefix), redis_client=real_redis)
    session = Dialler(app.test_client(), msisdn)
    session.dial()
    session.send("4")
    assert session.send("2").startswith("CON Your language is now English.")


@pytest.fixture
def reseeded(env, csv_files, tmp_path, real_redis, key_prefix):
    """The files seeded, 0700000001 migrated to Tigre by ``ussd migrate``, 0700000003 gone
    English in the menu; then a subscribers file without a language column, which says
    Novamix for both, French for both, and adds 0700000004."""
    result = run(["seed", *map(str, csv_files)], env)
    assert result.exit_code == 0, result.output
    assert run(["migrate", "0700000001", "Tigre"], env).exit_code == 0
    choose_english(real_redis, key_prefix, "+2250700000003")
    again = tmp_path / "again.csv"
    again.write_text("msisdn,profile\n0700000001,Novamix\n0700000003,Novamix\n"
                     "0700000004,Dauphin\n")
    return again


def shown(env, msisdn):
    record = json.loads(run(["show", msisdn], env).output)
    return (record["profile"], record["language"], record["migrations_this_month"],
            [(entry["from"], entry["to"]) for entry in record["history"]])


def test_seed_again_leaves_a_migration_and_a_language_chosen_as_they_are(env, reseeded):
    """Before, seeding the file again put 0700000001 back on Novamix (its history still saying
    novamix -> tigre, one migration this month) and 0700000003 back to French, and said only
    "3 subscribers row(s) loaded"."""
    result = run(["seed", "--dry-run", str(reseeded)], env)
    assert (result.exit_code, result.output) == (0, (
        f"{reseeded}: 3 subscribers row(s) checked, nothing stored (--dry-run): 1 would be "
        f"added, 2 already stored would be {KEPT}\n"))
    result = run(["seed", str(reseeded)], env)
    assert (result.exit_code, result.output) == (0, (
        f"{reseeded}: 3 subscribers row(s) loaded: 1 added, 2 already stored and {KEPT}\n"))
    assert shown(env, "0700000001") == ("tigre", "fr", 1, [("novamix", "tigre")])
    assert shown(env, "0700000003") == ("novamix", "en", 0, [])
    assert shown(env, "0700000004") == ("dauphin", "fr", 0, [])
    result = run(["seed", str(reseeded)], env)
    assert result.output == (
        f"{reseeded}: 3 subscribers row(s) loaded: 0 added, 3 already stored and {KEPT}\n")


def test_seed_replace_overwrites_the_stored_subscribers_and_says_so(env, reseeded):
    result = run(["seed", "--replace", "--dry-run", str(reseeded)], env)
    assert result.output == (
        f"{reseeded}: 3 subscribers row(s) checked, nothing stored (--dry-run): 1 would be "
        "added, 2 already stored would be overwritten (--replace)\n")
    assert shown(env, "0700000001")[:2] == ("tigre", "fr")
    result = run(["seed", "--replace", str(reseeded)], env)
    assert (result.exit_code, result.output) == (0, (
        f"{reseeded}: 3 subscribers row(s) loaded: 1 added, 2 already stored and overwritten "
        "(--replace)\n"))
    # What --replace is for: the file's word, whatever happened since (the history stays).
    assert shown(env, "0700000001") == ("novamix", "fr", 1, [("novamix", "tigre")])
    assert shown(env, "0700000003") == ("novamix", "fr", 0, [])


def serve_seeding(env, *args):
    """``ussd serve --seed ...`` on the test's Redis, stopped where it would start serving."""
    result = CliRunner().invoke(main, ["serve", "--insecure", "--port", str(closed_port()),
                                       *args], env={**env, "USSD_API_CLIENTS": None})
    assert isinstance(result.exception, AssertionError), result.output
    assert str(result.exception) == "ussd serve went on to serve"
    return [line for line in result.output.splitlines() if "row(s)" in line]


def test_serve_seed_at_every_start_leaves_the_stored_subscribers_as_they_are(no_server, env,
                                                                             reseeded):
    """A service definition with --seed seeds at every start: before, every restart put
    every subscriber back on the file's profile and language."""
    assert serve_seeding(env, "--seed", str(reseeded)) == [
        f"{reseeded}: 3 subscribers row(s) loaded: 1 added, 2 already stored and {KEPT}"]
    assert shown(env, "0700000001") == ("tigre", "fr", 1, [("novamix", "tigre")])
    assert shown(env, "0700000003") == ("novamix", "en", 0, [])
    assert serve_seeding(env, "--seed", str(reseeded), "--replace") == [
        f"{reseeded}: 3 subscribers row(s) loaded: 0 added, 3 already stored and overwritten "
        "(--replace)"]
    assert shown(env, "0700000001")[:2] == ("novamix", "fr")
    assert shown(env, "0700000003")[:2] == ("novamix", "fr")


def test_serve_refuses_replace_without_seed(no_server, env):
    result = run(["serve", "--insecure", "--replace"], env)
    assert result.exit_code == 2
    assert result.output.endswith("Error: --replace goes with --seed (it overwrites the "
                                  "subscribers stored already with the files')\n")
