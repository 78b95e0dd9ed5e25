"""Phone numbers: validated, normalised, and masked for logs (ussd/phone.py)."""

from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ussd.errors import InvalidMsisdnError
from ussd.phone import _quick_e164, international_number, mask_msisdn, normalize_msisdn


@pytest.mark.parametrize("raw", [
    "+2250700000001",
    "2250700000001",  # gateways often drop the +
    "002250700000001",
    "0700000001",  # the local 10-digit form
    " 0700000001 ",
    "07 00 00 00 01",
    "+225 07 00 00 00 01",
    "07-00-00-00-01",
])
def test_every_way_of_writing_a_number_gives_one_e164(raw):
    assert normalize_msisdn(raw) == "+2250700000001"


@pytest.mark.parametrize(("raw", "e164"), [
    ("0102030405", "+2250102030405"),  # Moov
    ("0555443322", "+2250555443322"),  # MTN
])
def test_other_ivorian_numbers(raw, e164):
    assert normalize_msisdn(raw) == e164


@pytest.mark.parametrize("raw", [
    "+33612345678",  # France
    "0033612345678",
    "+12025550100",  # USA
    "+2250700000001234",  # too long
    "070000000",  # 9 digits: too short
    "07000000011",  # 11 digits: too long
    "225070000000",  # 12 digits after the country code: neither form
    "+225",
    "12345",
    "0700000001x",  # letters are never part of an MSISDN
    "07000000ab",
    "O700000001",  # a letter O for a zero
    "0700000001 ext. 5",
    "tel:+2250700000001",
    "",
    "   ",
    "+" + "0" * 40,
])
def test_refuses_what_is_not_an_ivorian_mobile_number(raw):
    with pytest.raises(InvalidMsisdnError):
        normalize_msisdn(raw)


def test_refuses_none():
    with pytest.raises(InvalidMsisdnError):
        normalize_msisdn(None)


def test_mask_shows_the_country_code_and_last_three_digits():
    assert mask_msisdn("+2250700000001") == "+225*******001"
    assert mask_msisdn("+2250701020304") == "+225*******304"


@given(st.from_regex(r"\A0[157][0-9]{8}\Z"))
def test_mask_never_shows_more_of_a_subscriber_number(local):
    e164 = normalize_msisdn(local)
    masked = mask_msisdn(e164)
    assert len(masked) == len(e164)
    assert masked.startswith("+225")
    assert masked[-3:] == e164[-3:]
    assert re.fullmatch(r"\+225\*{7}[0-9]{3}", masked)


@pytest.mark.parametrize("short", ["", "+225", "+22507"])
def test_mask_hides_a_short_value_entirely(short):
    assert mask_msisdn(short) == "*" * len(short)


# The short way for "+225...": it must build exactly the number phonenumbers.parse builds, so
# that every check after it (validity for the region, the E.164 form) answers as before.
_DIGITS = st.one_of(
    st.text("0123456789", min_size=1, max_size=19),
    st.from_regex(r"\A0{1,12}[0-9]{0,8}\Z"),  # leading zeros, which parse counts
    st.from_regex(r"\A0[0-9]{9}\Z"),  # the shape of every Ivorian number
)


@settings(max_examples=2000)
@given(_DIGITS)
@example("0700000001")
@example("0012345678")
@example("0000000000")
@example("0")
@example("00")
def test_the_short_way_builds_what_phonenumbers_parse_builds(digits):
    text = "+225" + digits
    number = international_number(text, "CI")
    try:
        parsed = phonenumbers.parse(text, "CI")
    except phonenumbers.NumberParseException:
        parsed = None
    if number is not None:  # when it does not know, parse decides
        assert number == parsed
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == text


@pytest.mark.parametrize("text", [
    "0700000001", "2250700000001", "+225 07 00 00 00 01", "+22507-00", "+225",
    "+33612345678", "+2250700000001x", "+225٠٧٠٠٠٠٠٠٠١",
])
def test_the_short_way_leaves_any_other_writing_to_phonenumbers(text):
    assert international_number(text, "CI") is None


def test_the_short_way_is_not_taken_where_parse_strips_a_national_prefix():
    assert international_number("+33612345678", "FR") is None
    assert normalize_msisdn("+33612345678", "FR") == "+33612345678"


def _by_phonenumbers(text: str) -> str:
    """What phonenumbers alone says of ``text``: the E.164 form, or that it is not valid."""
    try:
        number = phonenumbers.parse(text, "CI")
    except phonenumbers.NumberParseException:
        return "unparsable"
    if not phonenumbers.is_valid_number_for_region(number, "CI"):
        return "invalid"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@settings(max_examples=3000)
@given(st.sampled_from(["+225", "", "+2250", "0", "07", "01", "05", "27", "21", "25"]),
       st.text(alphabet="0123456789", max_size=13))
@example("+225", "0700000001")
@example("", "0700000001")
@example("", "2721000000")
@example("+225", "2721000000")
@example("", "2250700000")
def test_the_quick_validity_check_agrees_with_phonenumbers(prefix, digits):
    """``_quick_e164`` (ussd seed's fast path) answers only for valid numbers, with what
    phonenumbers' parse, validity check and E.164 formatting give."""
    text = prefix + digits
    quick = _quick_e164(text, "CI")
    if quick is not None:
        assert quick == _by_phonenumbers(text)
    elif (text.startswith("+225") and text[4:].isdigit()) or (len(text) == 10 and text.isdigit()):
        assert _by_phonenumbers(text) in ("unparsable", "invalid")  # no valid number missed
