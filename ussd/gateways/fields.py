"""What every dialect shares: reading a request's text fields and the dialled code (the server
half), and the checks every gateway makes of an answer (the client half). Pure: no Flask.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..contract import WireReply
from ..errors import BadRequestError, MalformedReplyError, UnknownServiceCodeError

SERVICE_CODE = "121"
MAX_FIELD = 512  # longer ids and codes are not a gateway's: refused politely
MAX_INPUT = 182  # one USSD message: no handset sends more in one hop

# #121#, *121#, and the same with chained inputs: #121*1#, *121*1*2#...
_DIALLED = re.compile(r"^[*#]?" + SERVICE_CODE + r"((?:\*[0-9]{1,3})*)#?$")


def parse_service_code(code: str) -> tuple[str, ...]:
    """The inputs chained in a dialled code (``*121*1*2#`` -> ``("1", "2")``)."""
    match = _DIALLED.match((code or "").strip())
    if not match:
        raise UnknownServiceCodeError(f"unknown service code {code[:40]!r}")
    return tuple(part for part in match.group(1).split("*") if part)


def text_field(fields: Mapping, name: str, required: bool = True, limit: int = MAX_FIELD) -> str:
    """The text of field ``name``; BadRequestError if missing, oversized or not printable text."""
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise BadRequestError(f"missing {name}")
        return ""
    if not isinstance(value, str):
        raise BadRequestError(f"{name} is not text")
    if len(value) > limit:
        raise BadRequestError(f"{name} longer than {limit} characters")
    if not value.isprintable():
        raise BadRequestError(f"{name} holds control characters")
    return value


def split_inputs(text: str) -> tuple[str, ...]:
    """Inputs typed at once, chained with ``*`` (``1*2``), one by one; none for ``""``."""
    return tuple(text.split("*")) if text else ()


def bare_code(code: str) -> str:
    """The dialled code without its signs, as operators' gateways pass it (``121*1``)."""
    return code.strip().lstrip("*#").rstrip("#")


def check_answer(answer: WireReply, mimetype: str) -> None:
    """MalformedReplyError unless ``answer`` is a ``200`` of media type ``mimetype``."""
    if answer.status != 200:
        raise MalformedReplyError(f"HTTP {answer.status}: {answer.body[:80]!r}")
    if answer.mimetype != mimetype:
        raise MalformedReplyError(f"reply is {answer.mimetype or 'untyped'}, not {mimetype}: "
                                  f"{answer.body[:80]!r}")
