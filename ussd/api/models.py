"""The API's requests and answers as pydantic models: what the views read and write, and what
``/api/v1/openapi.json`` describes (``openapi.py`` makes the document from these very models).

Profiles are written as subscribers read them (``"Tigre"``); reasons, channels and languages as
the rules store them (``"insufficient_consumption"``, ``"web"``, ``"fr"``); amounts in F CFA.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic_core import PydanticCustomError

from ..rules import Channel, Language, Reason

ProfileName = Literal["Novamix", "Tigre", "Dauphin", "Aigle"]  # PROFILES_IN_ORDER's titles
# The forms of a subscriber's number in a path, as the document gives them: +225, 225 or
# nothing, then a mobile number's 10 digits. Every number of this form is read (a test draws
# from it); the server reads more (spaces, 00225...), the document promises these.
MSISDN_PATH_PATTERN = r"^(\+225|225)?0[157][0-9]{8}$"
Msisdn = Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$", examples=["+2250700000001"],
                              description="E.164")]
Month = Annotated[str, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", examples=["2026-11"])]
Amount = Annotated[int, Field(ge=0, description="F CFA")]
# An Idempotency-Key: visible ASCII not starting with a quote, or an RFC 8941 string (quoted,
# not empty, with \" and \\ as its only escapes): every value of it names a key (idempotency.py).
IDEMPOTENCY_KEY_PATTERN = r'^(?:[!#-~][!-~]*|"(?:[!#-\[\]-~]|\\["\\])+")$'
IDEMPOTENCY_KEY_RULE = ("must be 1 to 255 visible ASCII characters (no space), bare or as an "
                        "RFC 8941 string in double quotes")
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
Count = Annotated[int, Field(ge=0)]


class Offer(BaseModel):
    """What the rules would decide now for one profile."""

    profile: ProfileName
    current: bool = Field(description="the subscriber's profile now")
    eligible: bool = Field(description="a migration to it would be approved now")
    reason: Reason = Field(description="the rules' reason code")
    required: Amount = Field(description="credit to have consumed last month for it")
    consumed: Amount = Field(description="credit the subscriber consumed last month")


class SubscriberPage(BaseModel):
    """What a "Mon profil" page shows."""

    msisdn: Msisdn
    profile: ProfileName
    language: Language
    month: Month = Field(description="this month, in the operator's time zone")
    migrations_this_month: Count
    migrations_left: Count
    monthly_cap: Count = Field(description="migrations a month, every channel together")
    consumption_last_month: Amount
    offers: list[Offer] = Field(description="every profile, in the fixed order "
                                            "Novamix, Tigre, Dauphin, Aigle")


class MigrationRequest(BaseModel):
    """A migration asked for: the profile wanted, by its name in any case."""

    model_config = ConfigDict(extra="forbid")

    profile: str = Field(min_length=1, max_length=32, examples=["Tigre"],
                         description="Novamix, Tigre, Dauphin or Aigle, in any case")


class MigrationHeaders(BaseModel):
    """The headers a migration request needs."""

    idempotency_key: str = Field(
        alias="Idempotency-Key", min_length=1, max_length=255, pattern=IDEMPOTENCY_KEY_PATTERN,
        examples=["0b6f3c52-5a4e-4bd3-9a57-2d0c8ff2f1a4"],
        description="Names this request, for 24 h, for this client and subscriber: sent again "
                    "with the same body, it gets the first answer and applies nothing again. "
                    "Visible ASCII, bare or as a quoted string (RFC 8941), which names its "
                    "content.")

    @field_validator("idempotency_key", mode="wrap")
    @classmethod
    def _said_plainly(cls, value: object, checked: ValidatorFunctionWrapHandler) -> str:
        """A value the pattern refuses is named by the rule, not by pydantic's words: the
        pattern itself, or "at least 1 character" for a key with a byte that is not ASCII,
        which granian hands over as "" (a WSGI server such as werkzeug's, as latin-1 text)."""
        try:
            return checked(value)
        except ValidationError:
            if isinstance(value, str) and not _IDEMPOTENCY_KEY.fullmatch(value):
                raise PydanticCustomError("idempotency_key", IDEMPOTENCY_KEY_RULE) from None
            raise  # too long, of visible ASCII: pydantic's words say it


class Migration(BaseModel):
    """One migration: when, from, to, through which channel, and who asked (the API client's
    name, the USSD gateway's, ``cli``; null when not recorded)."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    at: str = Field(json_schema_extra={"format": "date-time"},
                    examples=["2026-11-15T10:00:00+00:00"], description="ISO 8601, with offset")
    from_: ProfileName = Field(alias="from")
    to: ProfileName
    channel: Channel
    client: str | None


class MigrationApplied(BaseModel):
    """A migration approved by the rules and applied."""

    msisdn: Msisdn
    reason: Literal["approved"] = Field(description="the rules' decision")
    migration: Migration
    required: Amount
    consumed: Amount
    migrations_this_month: Count = Field(description="this one included")
    migrations_left: Count


class MigrationPending(BaseModel):
    """A migration sent and not answered in time (the store slow or cut off): it may be applied,
    at most once. The same request again, under the same `Idempotency-Key`, after
    `retry_after` seconds, learns what happened: `201` if it was applied (and the subscriber
    gets its SMS), else it is decided and applied then, still once at most."""

    msisdn: Msisdn
    reason: Literal["pending"] = Field(description="the outcome is not known yet")
    detail: str
    retry_after: int = Field(ge=1)


class History(BaseModel):
    """A subscriber's migrations, newest first, every channel."""

    msisdn: Msisdn
    migrations: list[Migration]


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str = Field(description="/api/v1/problems/<name>, or about:blank")
    title: str
    status: int
    detail: str


class InvalidField(BaseModel):
    """One part of a request that cannot be read."""

    location: Literal["path", "header", "body"]
    name: str
    message: str


class InvalidRequest(Problem):
    """A malformed request: each bad part named."""

    errors: list[InvalidField]


class MissingScope(Problem):
    """A call the client has no scope for."""

    scope: str


class NotFound(Problem):
    """No subscriber holds this number (or no such path)."""

    reason: Literal["unknown_subscriber"] | None = None
    msisdn: Msisdn | None = None


class RefusalReason(StrEnum):
    """Why a migration request was refused: the rules' reason, or a reused key."""

    SAME_PROFILE = Reason.SAME_PROFILE.value
    MONTHLY_LIMIT_REACHED = Reason.MONTHLY_LIMIT_REACHED.value
    INSUFFICIENT_CONSUMPTION = Reason.INSUFFICIENT_CONSUMPTION.value
    UNKNOWN_PROFILE = Reason.UNKNOWN_PROFILE.value
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"


class Refusal(Problem):
    """A migration refused, with the rules' figures (none for an unknown profile or a reused
    key)."""

    reason: RefusalReason
    profile: ProfileName | None = None
    current: ProfileName | None = None
    required: Amount | None = None
    consumed: Amount | None = None
    migrations_this_month: Count | None = None
    migrations_left: Count | None = None


class RetryLater(Problem):
    """Too many requests, or the store out of reach: retry after ``retry_after`` seconds."""

    retry_after: int = Field(ge=1)


class ProblemTypeInfo(BaseModel):
    """What a problem ``type`` of this API means."""

    type: str
    title: str
    status: int
    description: str


class OpenApiDocument(RootModel[dict[str, Any]]):
    """This document."""


# The models answered as application/problem+json (openapi.py marks them so).
PROBLEM_MODELS = (Problem, InvalidRequest, MissingScope, NotFound, Refusal, RetryLater)
