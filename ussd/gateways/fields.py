"""What every dialect shares: reading a request's fields and the dialled code (the server
half), and the checks every gateway makes of an answer (the client half). Pure: no Flask.

Gateways and the operators who configure them spell things variously: a field's name is
found in any letter case (``sessionId``, ``sessionID``, ``SessionId``), and a service code
with or without its signs (``*121#``, ``#121#``, ``121``). The codes answered are
configuration (``USSD_SERVICE_CODES``), read into :class:`ServiceCodes`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ..contract import WireReply
from ..errors import BadRequestError, ConfigError, MalformedReplyError, UnknownServiceCodeError
from ..settings import DEFAULT_SERVICE_CODES

MAX_FIELD = 512  # longer ids and codes are not a gateway's: refused politely
MAX_INPUT = 182  # one USSD message: no handset sends more in one hop

_CODE = re.compile(r"^[*#]?([0-9]+(?:\*[0-9]+)*)#?$")


class ServiceCodes:
    """The USSD codes this service answers, and the inputs chained after one when dialled.

    ``ServiceCodes(["*121#", "#121#", "*384*1234#"])``: each code is matched without its signs
    (gateways pass ``121`` as well as ``*121#``), so ``*121#`` and ``#121#`` are one code;
    ``split("*384*1234*1*2#")`` gives ``("1", "2")``. ConfigError for a code that is not one.
    """

    def __init__(self, codes: Iterable[str] = DEFAULT_SERVICE_CODES):
        bases = []
        for code in codes:
            match = _CODE.match(code.strip())
            if not match:
                raise ConfigError(f"not a USSD service code: {code!r} (e.g. *121# or *384*1234#)")
            bases.append(match.group(1))
        if not bases:
            raise ConfigError("no USSD service code to answer")
        self.codes = tuple(dict.fromkeys(bases))  # the bare codes, in the order given
        # The longest first: *384*1234 before *384, so the chained inputs are what follows it.
        alternatives = "|".join(re.escape(base) for base in sorted(self.codes, key=len,
                                                                   reverse=True))
        self._dialled = re.compile(rf"^[*#]?(?:{alternatives})((?:\*[0-9]{{1,3}})*)#?$")

    def __repr__(self) -> str:
        return f"ServiceCodes({list(self.codes)!r})"

    def split(self, code: str) -> tuple[str, ...]:
        """The inputs chained in a dialled code (``*121*1*2#`` -> ``("1", "2")``);
        UnknownServiceCodeError for a code this service does not answer."""
        match = self._dialled.match((code or "").strip())
        if not match:
            raise UnknownServiceCodeError(f"unknown service code {code[:40]!r}")
        return tuple(part for part in match.group(1).split("*") if part)

    def base(self, code: str) -> str:
        """The service code a dialled code starts with, bare (``*121*1#`` -> ``121``); the
        whole bare code when it starts with none of them."""
        bare = bare_code(code)
        for base in sorted(self.codes, key=len, reverse=True):
            if bare == base or bare.startswith(base + "*"):
                return base
        return bare


SERVICE_CODES = ServiceCodes()  # the default: what a dialect parses with unless told


def parse_service_code(code: str, codes: ServiceCodes = SERVICE_CODES) -> tuple[str, ...]:
    """The inputs chained in a dialled code (``*121*1*2#`` -> ``("1", "2")``)."""
    return codes.split(code)


def field(fields: Mapping, name: str) -> object:
    """Field ``name`` of a request, its name in any letter case (None if absent).

    The exact spelling is looked up first (one dict lookup on every hop); only a request
    spelling it otherwise (``sessionID``, ``mobile``, ``INPUT``) pays for a scan.
    """
    value = fields.get(name)
    if value is None:
        wanted = name.lower()
        for key, candidate in fields.items():
            if isinstance(key, str) and key.lower() == wanted:
                return candidate
    return value


def text_field(fields: Mapping, name: str, required: bool = True, limit: int = MAX_FIELD) -> str:
    """The text of field ``name``; BadRequestError if missing, oversized or not printable text."""
    value = field(fields, name)
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
