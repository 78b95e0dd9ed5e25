"""The core stays pure: rules, menus, rendering, the engine, text and months do no I/O, so
they import neither Flask nor Redis (STYLE.md §2). Checked in a fresh interpreter, where
nothing else has imported them yet."""

from __future__ import annotations

import subprocess
import sys

import pytest

CORE = ("ussd.rules", "ussd.menu", "ussd.render", "ussd.engine", "ussd.text", "ussd.months",
        "ussd.contract", "ussd.outcomes")
IO_LIBRARIES = ("flask", "werkzeug", "redis", "fakeredis", "prometheus_client", "click")


def imported_after(*modules: str) -> set[str]:
    """The top-level packages loaded in a fresh interpreter by importing ``modules``."""
    code = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in modules)
        + "print('\\n'.join(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    return set(result.stdout.split())


def test_the_core_imports_neither_flask_nor_redis():
    loaded = imported_after(*CORE)
    assert "ussd" in loaded  # the check ran on the real modules
    assert loaded.isdisjoint(IO_LIBRARIES), sorted(loaded & set(IO_LIBRARIES))


@pytest.mark.parametrize("module", CORE)
def test_each_core_module_alone_imports_no_shell(module):
    # A core module must not pull a shell in through the package either.
    assert imported_after(module).isdisjoint(IO_LIBRARIES)


def test_the_check_would_see_a_shell():
    # The same probe on a shell module finds what it imports: the test above can fail.
    assert {"flask", "redis"} <= imported_after("ussd.web")
