"""The image's install steps, outside Docker (no registry to pull a base image from here).

As the Dockerfile does: the locked dependencies installed with their hashes into a fresh
virtual environment outside the repository, the wheel built from the repository installed on
top without dependencies, ``pip check``; then, as a non-root user and from a folder holding
nothing of ours, ``ussd serve --demo`` and a whole dialogue dialled through it with the
installed ``ussd sim``. Needs PyPI (the wheel's build backend and the locked packages).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import pytest
from served import Served

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534  # nobody:nogroup on Debian, as the image's user is not root
SYSTEM_PYTHON = "/usr/bin/python3"
# The Dockerfile's COPY lines (and .dockerignore's exceptions): the image's build context.
IMAGE_SOURCES = ("requirements.lock", "pyproject.toml", "README.md", "ussd", "menus")


def run(*command: str | Path, cwd: Path | None = None, env: dict | None = None) -> str:
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed():
    """A scratch virtual environment with the lock and the repository's wheel installed."""
    scratch = Path(tempfile.mkdtemp(prefix="ussd-install-"))
    scratch.chmod(0o755)  # readable by the non-root user that serves from it
    try:
        # What the Dockerfile copies into its build stage, and nothing else: the wheel is
        # built there, so the repository is left as it was (no build/, no egg-info).
        source = scratch / "src"
        source.mkdir()
        for name in IMAGE_SOURCES:
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, source / name,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(ROOT / name, source / name)
        venv = scratch / "venv"
        run(base_python(), "-m", "venv", venv)
        pip = [venv / "bin" / "python", "-m", "pip", "--disable-pip-version-check"]
        run(*pip, "install", "-q", "--require-hashes", "--only-binary", ":all:",
            "-r", source / "requirements.lock", env=clean_env())
        run(*pip, "wheel", "-q", "--no-deps", "--wheel-dir", scratch / "wheels", source,
            env=clean_env())
        wheels = list((scratch / "wheels").glob("ussd121-*.whl"))
        assert len(wheels) == 1, wheels
        run(*pip, "install", "-q", "--no-deps", wheels[0], env=clean_env())
        run(*pip, "check", env=clean_env())
        (scratch / "work").mkdir(mode=0o777)
        (scratch / "work").chmod(0o777)
        yield venv, wheels[0], scratch / "work"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def base_python() -> str:
    """The interpreter the scratch environment is made from.

    Run as root, the server is served as ``nobody``, who must be able to run it: the
    system's Python, as the image's comes with its OS (a Python under root's home, as
    pyenv installs it, is out of nobody's reach).
    """
    if os.geteuid() != 0:
        return sys.executable
    assert Path(SYSTEM_PYTHON).exists(), f"{SYSTEM_PYTHON} is needed (.ci/run installs it)"
    return SYSTEM_PYTHON


def clean_env() -> dict[str, str]:
    """The environment of a fresh shell: nothing that points at this repository."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "HOME")
    return {name: os.environ[name] for name in keep if name in os.environ}


def as_user() -> list[str]:
    """The prefix that runs a command as a non-root user when the tests run as root."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def process_uid(pid: int) -> int:
    """The real user id a process runs as."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for process {pid}")


def test_the_wheel_holds_the_package_and_its_menus(installed):
    venv, wheel, _ = installed

    names = zipfile.ZipFile(wheel).namelist()
    assert "ussd/menus/menu.toml" in names
    assert {"ussd/menus/texts/fr.toml", "ussd/menus/texts/en.toml"} <= set(names)
    assert {f"ussd/simulator/static/{name}" for name in ("index.html", "simulator.css",
                                                          "simulator.js")} <= set(names)
    assert not [name for name in names if name.startswith(("tests/", "bench/"))]
    # Installed, not linked back to the repository: the menus are the site-packages copy.
    where = run(venv / "bin" / "python", "-c",
                "from ussd.settings import DEFAULT_MENUS_DIR; print(DEFAULT_MENUS_DIR)",
                cwd=Path(tempfile.gettempdir()), env=clean_env())
    assert "site-packages/ussd/menus" in where
    assert str(ROOT) not in where


def test_the_installed_wheel_serves_the_demo_dialogue_as_a_non_root_user(installed, tmp_path):
    venv, _, work = installed
    ussd = [*as_user(), str(venv / "bin" / "ussd")]
    env = clean_env() | {"HOME": str(work)}
    with Served(["--demo"], env=env, log=tmp_path / "serve.log", command=ussd, cwd=work) as server:
        owner = process_uid(server.proc.pid)
        dialogue = run(*ussd, "sim", "--url", server.url, "--msisdn", "0700000001",
                       "--input", "1", "--input", "2", "--input", "1", cwd=work, env=env)
        english = run(*ussd, "sim", "--url", server.url, "--gateway", "hubtel",
                      "--msisdn", "0700000005", "--input", "1", cwd=work, env=env)
        with urllib.request.urlopen(f"{server.url}/simulator/static/simulator.js",
                                    timeout=10) as script:
            assert b"api/move" in script.read()  # the browser simulator, from the wheel
    assert "| 1. Changer de profil" in dialogue
    assert "| Votre profil est désormais Tigre." in dialogue
    assert "+---------------------------- END" in dialogue
    assert "| 1. Change profile" in english
    assert "| Choose your new profile:" in english
    assert owner == (NOBODY if os.geteuid() == 0 else os.geteuid())
