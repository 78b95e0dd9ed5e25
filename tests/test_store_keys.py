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
