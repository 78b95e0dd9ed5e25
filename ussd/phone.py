"""Phone numbers: validated and normalised by ``phonenumbers`` (Google's libphonenumber)."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumber

from .errors import InvalidMsisdnError

DEFAULT_REGION = "CI"  # Côte d'Ivoire: +225 and 10 digits


# Every hop of a session sends the same number: parsing it with phonenumbers was a tenth of a
# hop's CPU. A refused number raises, and exceptions are not cached.
@lru_cache(maxsize=32768)
def normalize_msisdn(raw: str, region: str = DEFAULT_REGION) -> str:
    """``raw`` in E.164 (``+2250701020304``); InvalidMsisdnError unless valid in ``region``."""
    text = (raw or "").strip()
    if not text or len(text) > 32:
        raise InvalidMsisdnError(f"not a phone number: {raw!r}")
    quick = _quick_e164(text, region)  # the usual writings: no letter to look for
    if quick is not None:
        return quick
    if any(char.isalpha() for char in text):
        # phonenumbers reads "0700000001x" or "... ext. 5" as the number: a typo, not an MSISDN.
        raise InvalidMsisdnError(f"not a phone number: {raw!r}")
    if text.startswith("00"):
        text = "+" + text[2:]
    elif text.startswith("225") and len(text) == 13:
        text = "+" + text  # gateways often drop the +
    quick = _quick_e164(text, region)
    if quick is not None:
        return quick
    try:
        number = international_number(text, region) or phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidMsisdnError(f"not a phone number: {raw!r}") from None
    # Only the operator's own country: a foreign number cannot hold one of its profiles.
    if not phonenumbers.is_valid_number_for_region(number, region):
        raise InvalidMsisdnError(f"not a valid {region} number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def international_number(text: str, region: str) -> PhoneNumber | None:
    """``phonenumbers.parse(text, region)`` for a number written as gateways send it, ``+``,
    the region's country code and the national digits, in a sixth of its time; None for
    any other writing, left to ``parse``.

    The number is built as ``parse`` builds it (its leading zeros kept as it keeps them):
    tests/test_phone.py checks that the two agree on every kind of digit string. Regions
    whose national prefix ``parse`` would strip are always left to it.
    """
    prefix = _country_prefix(region)
    if prefix is None or not text.startswith(prefix):
        return None
    digits = text[len(prefix):]
    if not 2 <= len(digits) <= 17 or not (digits.isascii() and digits.isdigit()):
        return None
    number = PhoneNumber(country_code=int(prefix[1:]), national_number=int(digits))
    if digits[0] == "0":  # as phonenumberutil._set_italian_leading_zeros_for_phone_number
        number.italian_leading_zero = True
        zeros = 1
        while zeros < len(digits) - 1 and digits[zeros] == "0":
            zeros += 1
        if zeros != 1:
            number.number_of_leading_zeros = zeros
    return number


def _quick_e164(text: str, region: str) -> str | None:
    """The E.164 form of a number written ``+<country code><national digits>`` or as the
    region's national digits alone, when valid, without ``parse``: None for anything else, left
    to ``parse`` and its errors.

    ``ussd seed`` validates every number of a file: phonenumbers' parse and validity check took
    two thirds of its time (11,500 rows/s). The check here is phonenumbers' own
    (``_number_type_helper``: the general pattern, then any number type's, lengths first), on
    its own metadata; tests/test_phone.py pins the two to the same answers.
    """
    valid, prefix = _national_validator(region), _country_prefix(region)
    if valid is None or prefix is None:
        return None
    if text.startswith(prefix):
        digits = text[len(prefix):]
        if digits.isascii() and digits.isdigit() and valid(digits):
            return text
    elif len(text) == _NATIONAL_LENGTH.get(region) and text.isascii() and text.isdigit() \
            and valid(text):
        return prefix + text
    return None


_NATIONAL_LENGTH = {"CI": 10}  # the national digits a subscriber's number is written with
_NUMBER_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager",
                 "uan", "voicemail", "fixed_line", "mobile")


@lru_cache(maxsize=16)
def _national_validator(region: str) -> Callable[[str], bool] | None:
    """``is_valid_number_for_region`` on national significant digits, from the metadata."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        return None

    def desc(number_desc):
        if number_desc is None or not number_desc.national_number_pattern:
            return None
        return tuple(number_desc.possible_length), re.compile(number_desc.national_number_pattern)

    general = desc(metadata.general_desc)
    types = [d for d in (desc(getattr(metadata, name)) for name in _NUMBER_TYPES) if d]

    def matches(number_desc, digits: str) -> bool:
        lengths, pattern = number_desc
        return (not lengths or len(digits) in lengths) and pattern.fullmatch(digits) is not None

    if general is None:
        return None
    return lambda digits: matches(general, digits) and any(matches(t, digits) for t in types)


@lru_cache(maxsize=16)
def _country_prefix(region: str) -> str | None:
    """``+`` and the region's country code, when ``parse`` needs nothing but that."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.national_prefix_for_parsing or metadata.national_prefix:
        return None
    return f"+{metadata.country_code}"


def mask_msisdn(msisdn: str) -> str:
    """A number fit for logs: country code and last three digits (``+225*******304``)."""
    if len(msisdn) <= 7:
        return "*" * len(msisdn)
    return msisdn[:4] + "*" * (len(msisdn) - 7) + msisdn[-3:]
