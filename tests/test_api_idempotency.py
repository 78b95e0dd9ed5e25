"""The Idempotency-Key header as read (ussd/api/idempotency.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis.strategies import from_regex

from ussd.api.idempotency import key_of, replay_headers
from ussd.api.models import IDEMPOTENCY_KEY_PATTERN


@pytest.mark.parametrize(("value", "key"), [
    ("8e03978e-40d5-43e8-bc93-6894a57f9324", "8e03978e-40d5-43e8-bc93-6894a57f9324"),
    ('"8e03978e-40d5"', "8e03978e-40d5"),
    ('"a\\"b"', 'a"b'),
    ('"a\\\\b"', "a\\b"),
    ("a\"b", 'a"b'),  # not quoted: taken as it is
    ('""', None), ('"', None), ('"abc', None), ('"a"b"', None), ('"a\\b"', None),
    ('"a\\"', None),
])
def test_a_header_value_names_its_key(value, key):
    assert key_of(value) == key


def test_only_a_replay_says_so():
    assert replay_headers(True) == {"Idempotent-Replayed": "true"}
    assert replay_headers(False) == {}


@given(value=from_regex(IDEMPOTENCY_KEY_PATTERN, fullmatch=True))
def test_every_header_the_document_allows_names_a_key(value):
    assert key_of(value)
