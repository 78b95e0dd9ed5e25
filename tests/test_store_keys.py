"""Key and field names (ussd/store/keys.py)."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest

from ussd.store.keys import EVENTS, KeySpace, consumption_field, migrations_field, month_of_field


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


def test_the_pattern_of_the_layout_before_the_buckets():
    assert KeySpace("ussd").old_layout_pattern() == "ussd:{+*}:*"
    assert KeySpace("t-1.x").old_layout_pattern() == "t-1.x:{+*}:*"


@pytest.mark.parametrize(("key", "found"), [
    ("ussd:{+2250700000001}:sub", ("+2250700000001", "sub")),
    ("ussd:{+2250700000001}:history", ("+2250700000001", "history")),
    ("ussd:{+2250700000001}:session:0123456789abcdef0123", ("+2250700000001", "session")),
    ("ussd:{+2250700000001}:session:0123456789abcdef0123:closed",
     ("+2250700000001", "session")),
    ("ussd:{+2250700000001}:session:0123456789abcdef012", None),  # no digest of ours
    ("ussd:{+2250700000001}:session", None),
    ("ussd:{+2250700000001}:sub:closed", None),
    ("ussd:{+2250700000001}:dropped", None),  # today's layout only
    ("ussd:{+225}:session:0123456789abcdef0123", None),
    ("ussd:{+2250700000001}", None),
    ("ussd:{+225}:sub", None),  # not an MSISDN
    ("ussd:{+2250700000001\n}:sub", None),
    ("other:{+2250700000001}:sub", None),  # another deployment's
    ("ussdx:{+2250700000001}:sub", None),
    ("ussd:x:{+2250700000001}:sub", None),
    (KeySpace("ussd").subscriber("+2250700000001"), None),  # today's layout
    (KeySpace("ussd").history("+2250700000001"), None),
    (KeySpace("ussd").queue(EVENTS, "0a"), None),
    (KeySpace("ussd").probe(), None),
])
def test_a_key_of_the_layout_before_the_buckets_is_read_back(key, found):
    assert KeySpace("ussd").old_layout_key(key) == found


def test_what_the_old_layout_names_is_what_its_pattern_matches():
    keys = KeySpace("ussd")
    old = "ussd:{+2250700000001}:sub"
    assert fnmatchcase(old, keys.old_layout_pattern())
    assert keys.old_layout_key(old) is not None
    assert not fnmatchcase(keys.subscriber("+2250700000001"), keys.old_layout_pattern())


@pytest.mark.parametrize("msisdn", ["+2250700000001\n", "2250700000001", "+0250700000001",
                                    "+225 0700000001", "+225070000000112345"])
def test_a_key_is_never_named_after_what_is_not_a_normalised_msisdn(msisdn):
    """A key names the number whole: no line end, space or missing sign slips into a key."""
    with pytest.raises(ValueError, match="not a normalised MSISDN"):
        KeySpace("t").subscriber(msisdn)
