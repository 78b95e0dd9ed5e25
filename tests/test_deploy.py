"""What an operator deploys: the compose file, the image's recipe and the lock.

The compose file is checked by Compose's own parser (Debian's ``docker-compose``, which .ci/run
installs: unknown or misplaced options are refused) and then read for what must hold: no
``--demo`` against the durable Redis, restart policies, the app's healthcheck, the gateway
port published by nginx only (deploy/nginx.conf in front of the app, its upstream the app's
port, the app told of one proxy), the metrics port only on loopback, the seed folder mounted.
tests/promises/test_front_proxy.py runs that nginx configuration itself. No image can
be built here (no registry): tests/test_install.py runs the image's install steps instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"


@pytest.fixture(scope="module")
def compose() -> dict:
    """The compose file as Compose resolves it (variables substituted, defaults applied)."""
    if shutil.which("docker-compose") is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing: .ci/run installs Debian's")
        pytest.skip("docker-compose not installed (apt-get install docker-compose)")
    env = {"PATH": os.environ["PATH"], "USSD_AFRICASTALKING_TOKEN": "t" * 24}
    result = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_refuses_what_it_does_not_know(tmp_path):
    # The check above can fail: an option Compose does not know is refused.
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose not installed")
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("    restart:", "    restarts:", 1))
    result = subprocess.run(["docker-compose", "-f", str(broken), "config", "-q"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "restarts" in result.stderr


def test_the_app_never_starts_the_demo_against_the_durable_redis(compose):
    app = compose["services"]["app"]
    assert "--demo" not in app["command"]
    assert app["command"][:2] == ["ussd", "serve"]
    assert app["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert "redis-data:/data:rw" in compose["services"]["redis"]["volumes"]


def test_both_services_restart_and_the_app_checks_its_readiness(compose):
    for name in ("app", "redis"):
        assert compose["services"][name]["restart"] == "unless-stopped"
    check = compose["services"]["app"]["healthcheck"]
    assert "http://127.0.0.1:8000/readyz" in " ".join(check["test"])
    assert compose["services"]["app"]["depends_on"]["redis"]["condition"] == "service_healthy"


def published(port: dict | str) -> tuple[str | None, str, int]:
    """(host address or None, host port(s), container port) of a ``ports`` entry, in either
    of the forms Compose writes back (``{published, target, host_ip}`` or ``ip:host:target``)."""
    if isinstance(port, dict):
        return port.get("host_ip"), str(port["published"]), int(port["target"])
    parts = port.split("/")[0].split(":")
    address = parts[0] if len(parts) == 3 else None
    return address, parts[-2], int(parts[-1])


def test_the_gateway_port_is_nginx_s_and_metrics_only_on_loopback(compose):
    app = compose["services"]["app"]
    ports = {target: (address, host) for address, host, target in map(published, app["ports"])}
    metrics_port = int(app["environment"]["USSD_METRICS_PORT"])
    assert ports == {metrics_port: ("127.0.0.1", "9100-9109")}  # the app's port unpublished
    nginx = compose["services"]["nginx"]
    ports = {target: (address, host) for address, host, target in map(published, nginx["ports"])}
    assert ports == {8000: (None, "8000")} or ports == {8000: ("0.0.0.0", "8000")}


def test_nginx_fronts_the_app_with_the_checked_configuration(compose):
    nginx, app = compose["services"]["nginx"], compose["services"]["app"]
    assert nginx["image"].startswith("nginx:")
    assert nginx["restart"] == "unless-stopped"
    assert nginx["depends_on"]["app"]["condition"] == "service_healthy"
    mounts = {}
    for volume in nginx["volumes"]:
        source, target, *mode = volume.split(":") if isinstance(volume, str) else (
            volume["source"], volume["target"], "ro" if volume.get("read_only") else "rw")
        mounts[target] = (source, mode)
    assert mounts["/etc/nginx/nginx.conf"] == (str(ROOT / "deploy" / "nginx.conf"), ["ro"])
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    # Its upstream is the app's port, where the app listens; it listens on the published one.
    port = app["command"][app["command"].index("--port") + 1]
    assert re.search(rf"^\s*server app:{port};", conf, re.MULTILINE)
    assert re.search(r"^\s*listen 8000;", conf, re.MULTILINE)
    for directive in ("client_body_timeout 2s;", "client_header_timeout 2s;",
                      "client_max_body_size 16k;", "proxy_request_buffering on;",
                      "proxy_http_version 1.1;", "proxy_set_header X-Forwarded-For"):
        assert directive in conf, directive
    # One proxy in front: the app reads the gateway's address from what nginx sets.
    assert app["environment"]["USSD_PROXY_HOPS"] == "1"


def test_seed_files_have_a_volume_for_the_documented_command(compose):
    app = compose["services"]["app"]
    mounts = {}
    for volume in app["volumes"]:
        source, target, *mode = volume.split(":") if isinstance(volume, str) else (
            volume["source"], volume["target"], "ro" if volume.get("read_only") else "rw")
        mounts[target] = (source, mode)
    assert mounts["/seed"] == (str(ROOT / "seed"), ["ro"])
    readme = (ROOT / "README.md").read_text()
    assert "docker compose run --rm app ussd seed /seed/" in readme


def test_no_secret_has_a_default_in_the_compose_file(compose):
    env = compose["services"]["app"]["environment"]
    for name in env:
        if name.endswith(("_TOKEN", "_BASIC_AUTH")) or name == "USSD_LOG_KEY":
            given = "t" * 24 if name == "USSD_AFRICASTALKING_TOKEN" else ""
            assert env[name] == given, name


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def test_the_image_is_multi_stage_non_root_locked_and_checks_readiness():
    instructions = dockerfile_instructions()
    stages = [arguments for kind, arguments in instructions if kind == "FROM"]
    assert len(stages) == 2 and stages[0].endswith("AS build")
    final = instructions[[kind for kind, _ in instructions].index("FROM", 1):]
    user = [arguments for kind, arguments in final if kind == "USER"]
    assert user == ["ussd"]
    runs = " ".join(arguments for kind, arguments in instructions if kind == "RUN")
    assert "--require-hashes" in runs and "requirements.lock" in runs
    assert not re.search(r"pip install[^&]* -e ", runs)  # no editable install
    health = [arguments for kind, arguments in final if kind == "HEALTHCHECK"]
    assert len(health) == 1 and "/readyz" in health[0]


def test_the_lock_pins_every_dependency_with_hashes():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = (ROOT / "requirements.lock").read_text()
    pinned = {match.group(1).lower().replace("_", "-")
              for match in re.finditer(r"^([A-Za-z0-9_.-]+)==", lock, re.MULTILINE)}
    for requirement in project["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower().replace("_", "-")
        assert name in pinned, f"{name} is not in requirements.lock: refresh it (README)"
    entries = re.findall(r"^[A-Za-z0-9_.-]+==\S+(?: ;[^\\\n]*)? \\\n((?:\s+--hash=\S+(?: \\)?\n)+)",
                         lock, re.MULTILINE)
    # Every pin has its hashes; a package may be pinned twice, one version per Python range
    # (the universal lock's markers: deprecated, which limits needs, differs from 3.12 on).
    pins = re.findall(r"^[A-Za-z0-9_.-]+==", lock, re.MULTILINE)
    assert len(entries) == len(pins)
