"""The demo data set: one subscriber for every case of the rules, relative to today's month."""

from __future__ import annotations

from .months import month_of, previous_month
from .phone import normalize_msisdn
from .rules import Channel, Language, Profile
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


def load_demo(service: UssdService) -> int:
    """Store the demo subscribers afresh, through the same rules as any migration."""
    last_month = previous_month(month_of(service.clock(), service.zone))
    numbers = [normalize_msisdn(row[0]) for row in DEMO_SUBSCRIBERS]
    service.store.admin.reset_subscribers(numbers)
    service.store.admin.put_subscribers(
        (msisdn, profile, language)
        for msisdn, (_, profile, language, *_) in zip(numbers, DEMO_SUBSCRIBERS, strict=True)
    )
    service.store.admin.put_consumption(
        (msisdn, last_month, amount)
        for msisdn, (_, _, _, amount, *_) in zip(numbers, DEMO_SUBSCRIBERS, strict=True)
        if amount is not None
    )
    for msisdn, (number, *_, earlier, _) in zip(numbers, DEMO_SUBSCRIBERS, strict=True):
        for target in earlier:
            decision = service.migrate(msisdn, target, Channel.WEB, "demo")
            if not decision.approved:
                raise RuntimeError(f"demo migration of {number} to {target} refused: {decision}")
    return len(numbers)
