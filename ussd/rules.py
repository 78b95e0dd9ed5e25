"""The migration rules: one pure function decides every migration, whatever the channel.

Nothing here does I/O. The USSD engine, the web customer area and the mobile app all call
:func:`decide` with what they know of the subscriber and get back a :class:`Decision`: a
reason code and the figures behind it, so each channel can word the answer its own way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class Profile(StrEnum):
    """The four tariff profiles, in the fixed order the menus number them (1 to 4)."""

    NOVAMIX = "novamix"
    TIGRE = "tigre"
    DAUPHIN = "dauphin"
    AIGLE = "aigle"

    @property
    def title(self) -> str:
        """The profile's name as subscribers read it."""
        return self.value.capitalize()

    @classmethod
    def parse(cls, name: str) -> Profile | None:
        """The profile called ``name`` (any case), or None."""
        try:
            return cls(name.strip().lower())
        except ValueError:
            return None


PROFILES_IN_ORDER: tuple[Profile, ...] = tuple(Profile)


class Language(StrEnum):
    """The languages a subscriber can be served in; French is the default."""

    FR = "fr"
    EN = "en"


# The languages as the menu's language list numbers them (1 French, 2 English).
LANGUAGES_IN_ORDER: tuple[Language, ...] = tuple(Language)


# The members by their stored value, for code that reads one on every hop: a dict lookup,
# where calling the enum (``Language("fr")``) costs about 1 us.
PROFILE_BY_VALUE: Mapping[str, Profile] = {profile.value: profile for profile in Profile}
LANGUAGE_BY_CODE: Mapping[str, Language] = {language.value: language for language in Language}


class Channel(StrEnum):
    """Where a migration was asked for: USSD, the web customer area, the app, customer care."""

    USSD = "ussd"
    WEB = "web"
    APP = "app"
    CARE = "care"


class Reason(StrEnum):
    """Why a migration was approved or refused."""

    APPROVED = "approved"
    SAME_PROFILE = "same_profile"
    MONTHLY_LIMIT_REACHED = "monthly_limit_reached"
    INSUFFICIENT_CONSUMPTION = "insufficient_consumption"
    UNKNOWN_PROFILE = "unknown_profile"
    UNKNOWN_SUBSCRIBER = "unknown_subscriber"


# The source document conditions Tigre and Aigle only; Novamix and Dauphin are free.
DEFAULT_THRESHOLDS: Mapping[Profile, int] = MappingProxyType(
    {Profile.TIGRE: 2500, Profile.AIGLE: 8000}
)
# The largest amount (F CFA) a month's consumption is given as, by a seed file or the API.
MAX_AMOUNT = 10**12


@dataclass(frozen=True)
class Policy:
    """The configurable figures of the rules: the monthly cap and the consumption thresholds."""

    monthly_cap: int = 3
    thresholds: Mapping[Profile, int] = field(default_factory=lambda: DEFAULT_THRESHOLDS)

    def __post_init__(self) -> None:
        if self.monthly_cap < 0:
            raise ValueError(f"monthly cap must be >= 0, got {self.monthly_cap}")
        for profile, amount in self.thresholds.items():
            if not isinstance(profile, Profile) or amount < 0:
                raise ValueError(f"bad threshold {profile!r}: {amount!r}")
        object.__setattr__(self, "thresholds", MappingProxyType(dict(self.thresholds)))
        # Hashed by value (the renderer's cache keys on it), worked out once.
        object.__setattr__(self, "_hash", hash((self.monthly_cap,
                                                frozenset(self.thresholds.items()))))

    def __hash__(self) -> int:
        return self._hash

    def required_for(self, profile: Profile) -> int:
        """Credit (F CFA) that must have been consumed last month to migrate to ``profile``."""
        return self.thresholds.get(profile, 0)


@dataclass(frozen=True)
class Standing:
    """What the rules need to know about a subscriber at the moment of asking."""

    profile: Profile
    migrations_this_month: int = 0
    consumed_last_month: int = 0


@dataclass(frozen=True)
class Decision:
    """The answer to "may this subscriber migrate to that profile now?", with its figures.

    ``migrations_left`` counts what remains this month once the decision takes effect: one
    less than now when approved, unchanged when refused.
    """

    reason: Reason
    target: Profile | None
    current: Profile | None = None
    required: int = 0
    consumed: int = 0
    migrations_used: int = 0
    migrations_left: int = 0

    @property
    def approved(self) -> bool:
        """True when the migration may go ahead."""
        return self.reason is Reason.APPROVED


def decide(standing: Standing | None, target: Profile | str, policy: Policy) -> Decision:
    """Decide whether a subscriber in ``standing`` may migrate to ``target`` under ``policy``."""
    profile = target if isinstance(target, Profile) else Profile.parse(str(target))
    if standing is None:
        return Decision(Reason.UNKNOWN_SUBSCRIBER, profile)
    used = standing.migrations_this_month
    left_now = max(policy.monthly_cap - used, 0)
    figures = {
        "current": standing.profile,
        "consumed": standing.consumed_last_month,
        "migrations_used": used,
        "migrations_left": left_now,
    }
    if profile is None:
        return Decision(Reason.UNKNOWN_PROFILE, None, **figures)
    figures["required"] = policy.required_for(profile)
    # Same profile first: it is refused without using up a migration, whatever the count.
    if profile is standing.profile:
        return Decision(Reason.SAME_PROFILE, profile, **figures)
    if used >= policy.monthly_cap:
        return Decision(Reason.MONTHLY_LIMIT_REACHED, profile, **figures)
    if standing.consumed_last_month < figures["required"]:
        return Decision(Reason.INSUFFICIENT_CONSUMPTION, profile, **figures)
    figures["migrations_left"] = left_now - 1
    return Decision(Reason.APPROVED, profile, **figures)


def offers(standing: Standing, policy: Policy) -> tuple[Decision, ...]:
    """What every profile would be decided now, in the fixed order: a "Mon profil" page."""
    return tuple(decide(standing, profile, policy) for profile in PROFILES_IN_ORDER)
