"""The demo data set: one subscriber for every case of the rules, relative to today's month.

Its numbers are one documented block, ``+225 07 00 00 00 01`` to ``06`` (:data:`DEMO_NUMBERS`),
and it is meant for the embedded store. Against a Redis, ``ussd serve --demo`` refuses a
store that holds any key under its prefix (:func:`make_room`), so that it can never overwrite
a deployment's subscribers; ``--demo --reset`` deletes the keys of the demo numbers, and
only those, first.
"""

from __future__ import annotations

from dataclasses import replace

from .accounts import Migrated
from .errors import DemoRefusedError
from .months import month_of, previous_month
from .phone import normalize_msisdn
from .rules import Channel, Language, Policy, Profile, Reason, Standing, decide
from .service import UssdService

N, T, D, A = Profile.NOVAMIX, Profile.TIGRE, Profile.DAUPHIN, Profile.AIGLE

# msisdn, profile at the start of the month, language, credit consumed last month (F CFA;
# None: no record), migrations already made this month through the web channel, and what
# the subscriber is there to show.
DEMO_SUBSCRIBERS = (
    ("0700000001", N, Language.FR, 3000, (),
     "Tigre approved (3.000 >= 2.500), Aigle refused (< 8.000), a 4th migration hits the cap"),
    ("0700000002", T, Language.FR, 9500, (), "Aigle approved (9.500 >= 8.000)"),
    ("0700000003", N, Language.FR, 1200, (), "Tigre refused (1.200 < 2.500)"),
    ("0700000004", A, Language.FR, 20000, (N, T, D), "on Dauphin: the month's 3 migrations used"),
    ("0700000005", A, Language.EN, 12000, (), "served in English"),
    ("0700000006", N, Language.FR, None, (), "no consumption recorded: only Novamix and Dauphin"),
)


# The demo's block of numbers, first to last, as normalised numbers.
DEMO_NUMBERS = tuple(normalize_msisdn(row[0]) for row in DEMO_SUBSCRIBERS)
DEMO_RANGE = f"{DEMO_NUMBERS[0]} to {DEMO_NUMBERS[-1]}"


def make_room(service: UssdService, reset: bool) -> str:
    """Make sure the demo overwrites nothing in a Redis: with ``reset``, delete every key of
    the demo numbers (and nothing else); without, refuse a store that holds any key under the
    deployment's prefix (DemoRefusedError). Returns what was done, for the operator."""
    admin = service.store.admin
    if reset:
        deleted = admin.forget_everything_of(DEMO_NUMBERS)
        return (f"--reset: deleted the {deleted} key(s) of the demo numbers {DEMO_RANGE}; "
                "nothing else was touched")
    if admin.holds_data():
        raise DemoRefusedError(
            f"refusing --demo: this Redis already holds data under the key prefix "
            f"{service.store.keys.prefix!r}, and the demo would overwrite the subscribers "
            f"{DEMO_RANGE} there. Serve without --demo (load your own with ussd seed), or "
            f"use an empty Redis or another USSD_KEY_PREFIX, or add --reset to delete and "
            f"reload only the demo numbers.")
    return "the Redis holds no data under this prefix"


def load_demo(service: UssdService) -> int:
    """Store the demo subscribers afresh; their migrations of this month as history, each
    approved by the same rules as any migration (one they refuse under this configuration's
    figures is left out: :func:`scripted_migrations`), and none sent to billing (see
    ``Admin.put_history``): every start of the demo would otherwise bill, and text, them again."""
    now = service.clock()
    month = month_of(now, service.zone)
    numbers = list(DEMO_NUMBERS)
    service.store.admin.reset_subscribers(numbers)
    service.store.admin.put_subscribers(
        (msisdn, profile, language)
        for msisdn, (_, profile, language, *_) in zip(numbers, DEMO_SUBSCRIBERS, strict=True)
    )
    # Last month's figure, and the same for this month: a demo left running past the month's
    # end then reads the same figures (its migrations of the month start again, as the cap's).
    service.store.admin.put_consumption(
        (msisdn, each, amount)
        for msisdn, (_, _, _, amount, *_) in zip(numbers, DEMO_SUBSCRIBERS, strict=True)
        if amount is not None for each in (previous_month(month), month)
    )
    at = now.isoformat(timespec="seconds")
    for msisdn, (_, profile, _, amount, earlier, _) in zip(numbers, DEMO_SUBSCRIBERS,
                                                           strict=True):
        made, _ = scripted_migrations(profile, amount, earlier, service.policy)
        entries = [Migrated(at, source, target, Channel.WEB.value, "demo").entry()
                   for source, target in made]
        if entries:
            service.store.admin.put_history(msisdn, month, entries, made[-1][1])
    return len(numbers)


def scripted_migrations(profile: Profile, amount: int | None, earlier: tuple[Profile, ...],
                        policy: Policy) -> tuple[list[tuple[Profile, Profile]],
                                                 list[tuple[Profile, Reason]]]:
    """The migrations of this month a demo subscriber is given, each decided by the rules
    under ``policy``: those approved, made one after the other (from, to), and those refused,
    left out (to, why): under a lower cap the script stops at the cap, under a higher
    threshold the migration it refuses is passed over. The demo works whatever the figures."""
    standing = Standing(profile, 0, amount or 0)
    made: list[tuple[Profile, Profile]] = []
    left_out: list[tuple[Profile, Reason]] = []
    for target in earlier:
        decision = decide(standing, target, policy)
        if not decision.approved:
            left_out.append((target, decision.reason))
            continue
        made.append((standing.profile, target))
        standing = replace(standing, profile=target,
                           migrations_this_month=standing.migrations_this_month + 1)
    return made, left_out


def figures_note(policy: Policy) -> str | None:
    """What ``ussd serve --demo`` tells the operator when the demo runs under a cap or
    thresholds other than the defaults, which the README's table of the demo is written for;
    None under the defaults."""
    default = Policy()
    if policy.monthly_cap == default.monthly_cap and all(
            policy.required_for(each) == default.required_for(each) for each in Profile):
        return None
    said = []
    for number, profile, _, amount, earlier, _ in DEMO_SUBSCRIBERS:
        made, left_out = scripted_migrations(profile, amount, earlier, policy)
        if left_out:
            refused = ", ".join(f"{target.title} refused: {reason.value}"
                                for target, reason in left_out)
            said.append(f"{number} made {len(made)} of its {len(earlier)} scripted migrations "
                        f"of this month ({refused})")
    return ("Demo: with a cap or thresholds other than the defaults, the README's table of demo "
            "subscribers may not hold" + "".join(f"; {each}" for each in said))
