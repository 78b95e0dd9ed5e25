"""Phone numbers: validated and normalised by ``phonenumbers`` (Google's libphonenumber)."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

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
    if any(char.isalpha() for char in text):
        # phonenumbers reads "0700000001x" or "... ext. 5" as the number: a typo, not an MSISDN.
        raise InvalidMsisdnError(f"not a phone number: {raw!r}")
    if text.startswith("00"):
        text = "+" + text[2:]
    elif text.startswith("225") and len(text) == 13:
        text = "+" + text  # gateways often drop the +
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidMsisdnError(f"not a phone number: {raw!r}") from None
    # Only the operator's own country: a foreign number cannot hold one of its profiles.
    if not phonenumbers.is_valid_number_for_region(number, region):
        raise InvalidMsisdnError(f"not a valid {region} number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_msisdn(msisdn: str) -> str:
    """A number fit for logs: country code and last three digits (``+225*******304``)."""
    if len(msisdn) <= 7:
        return "*" * len(msisdn)
    return msisdn[:4] + "*" * (len(msisdn) - 7) + msisdn[-3:]
