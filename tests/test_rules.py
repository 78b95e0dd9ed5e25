"""The migration rules, case by case (ussd/rules.py)."""

from __future__ import annotations

import pytest

from ussd.rules import Decision, Policy, Profile, Reason, Standing, decide

N, T, D, A = Profile.NOVAMIX, Profile.TIGRE, Profile.DAUPHIN, Profile.AIGLE
POLICY = Policy()


@pytest.mark.parametrize(
    ("current", "used", "consumed", "target", "reason", "required", "left"),
    [
        # Novamix and Dauphin are unconditional.
        (T, 0, 0, N, Reason.APPROVED, 0, 2),
        (A, 2, 0, N, Reason.APPROVED, 0, 0),
        (N, 0, 0, D, Reason.APPROVED, 0, 2),
        # Tigre needs 2.500 F CFA consumed last month: at least, not more than.
        (N, 0, 2500, T, Reason.APPROVED, 2500, 2),
        (N, 0, 2499, T, Reason.INSUFFICIENT_CONSUMPTION, 2500, 3),
        (N, 1, 0, T, Reason.INSUFFICIENT_CONSUMPTION, 2500, 2),
        # Aigle needs 8.000.
        (N, 0, 8000, A, Reason.APPROVED, 8000, 2),
        (T, 0, 7999, A, Reason.INSUFFICIENT_CONSUMPTION, 8000, 3),
        (N, 0, 3000, A, Reason.INSUFFICIENT_CONSUMPTION, 8000, 3),
        # At most 3 migrations a month; the third is still allowed.
        (N, 2, 9000, A, Reason.APPROVED, 8000, 0),
        (N, 3, 9000, A, Reason.MONTHLY_LIMIT_REACHED, 8000, 0),
        (N, 3, 0, D, Reason.MONTHLY_LIMIT_REACHED, 0, 0),
        (N, 7, 0, D, Reason.MONTHLY_LIMIT_REACHED, 0, 0),
        # The profile one has: refused, whatever the count, and nothing is used up.
        (T, 0, 9000, T, Reason.SAME_PROFILE, 2500, 3),
        (T, 3, 9000, T, Reason.SAME_PROFILE, 2500, 0),
        # The cap is checked before consumption: the reason given is the one that blocks.
        (N, 3, 0, A, Reason.MONTHLY_LIMIT_REACHED, 8000, 0),
    ],
)
def test_decision_table(current, used, consumed, target, reason, required, left):
    decision = decide(Standing(current, used, consumed), target, POLICY)
    assert decision == Decision(
        reason=reason, target=target, current=current, required=required,
        consumed=consumed, migrations_used=used, migrations_left=left,
    )
    assert decision.approved is (reason is Reason.APPROVED)


@pytest.mark.parametrize("name", ["Tigre", "TIGRE", " tigre ", "tigre"])
def test_target_given_by_name(name):
    assert decide(Standing(N, 0, 2500), name, POLICY).reason is Reason.APPROVED


@pytest.mark.parametrize("name", ["Lion", "", "2", "novamix2"])
def test_unknown_profile(name):
    decision = decide(Standing(N, 0, 0), name, POLICY)
    assert decision.reason is Reason.UNKNOWN_PROFILE
    assert decision.target is None
    assert not decision.approved


def test_unknown_subscriber():
    assert decide(None, T, POLICY) == Decision(Reason.UNKNOWN_SUBSCRIBER, T)


def test_thresholds_and_cap_are_configuration():
    policy = Policy(monthly_cap=1, thresholds={D: 1000, T: 100})
    assert decide(Standing(N, 0, 999), D, policy).reason is Reason.INSUFFICIENT_CONSUMPTION
    assert decide(Standing(N, 0, 1000), D, policy).reason is Reason.APPROVED
    assert decide(Standing(N, 0, 100), T, policy).reason is Reason.APPROVED
    assert decide(Standing(N, 0, 0), A, policy).reason is Reason.APPROVED  # no threshold left
    assert decide(Standing(N, 1, 5000), D, policy).reason is Reason.MONTHLY_LIMIT_REACHED


@pytest.mark.parametrize("bad", [
    {"monthly_cap": -1},
    {"thresholds": {T: -5}},
    {"thresholds": {"tigre": 100}},
])
def test_policy_refuses_nonsense(bad):
    with pytest.raises(ValueError):
        Policy(**bad)


def test_profiles_are_in_the_fixed_order():
    assert [p.title for p in Profile] == ["Novamix", "Tigre", "Dauphin", "Aigle"]
