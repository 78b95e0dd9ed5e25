"""Key and field names (ussd/store/keys.py)."""

from __future__ import annotations

import pytest

from ussd.store.keys import consumption_field, migrations_field, month_of_field


@pytest.mark.parametrize(("field", "month"), [
    (consumption_field("2026-10"), "2026-10"),
    (migrations_field("2025-01"), "2025-01"),
    ("p", None),
    ("l", None),
    ("c:2026", None),
    ("c:2026-13", None),
    ("m:2026-10\n", None),
    ("x:2026-10", None),
    ("c2026-10", None),
    ("note", None),
])
def test_the_month_of_a_field(field, month):
    assert month_of_field(field) == month


def test_no_lua_script_writes_a_field_name_of_its_own():
    # keys.py names every field; the scripts are given the names through ARGV, so that a
    # renamed field cannot leave a script writing the old one.
    from ussd.store import keys, queue_scripts, scripts

    names = {keys.PROFILE_FIELD, keys.LANGUAGE_FIELD, *keys.ENTRY_FIELDS.values(),
             *keys.DEAD_FIELDS}
    lua = {name: text for module in (scripts, queue_scripts) for name, text in vars(module).items()
           if name.endswith("_SCRIPT") and isinstance(text, str)}
    assert {"MIGRATE_SCRIPT", "SAVE_SCRIPT", "BURY_SCRIPT"} <= set(lua)
    written = {(script, name) for script, text in lua.items() for name in names
               if f"'{name}'" in text or f'"{name}"' in text}
    assert not written
