"""Sending again a write whose outcome is unknown (ussd/settle.py), on scripted writes."""

from __future__ import annotations

import pytest

from ussd.errors import OutcomeUnknownError, StoreUnavailableError
from ussd.settle import Settled, settle

UNKNOWN, DOWN = OutcomeUnknownError("no answer"), StoreUnavailableError("refused")


class Script:
    """A write that raises or answers, one step per call, on a clock it moves by ``step``."""

    def __init__(self, *steps, step: float = 0.4):
        self.steps = list(steps)
        self.calls = 0
        self.now = 0.0
        self.step = step

    def __call__(self):
        self.calls += 1
        self.now += self.step
        result = self.steps.pop(0)
        if isinstance(result, Exception):
            raise result
        return result

    def clock(self) -> float:
        return self.now


@pytest.mark.parametrize(("steps", "settled", "calls"), [
    (["ok"], Settled("ok", resent=False), 1),
    ([UNKNOWN, "ok"], Settled("ok", resent=True), 2),
    ([UNKNOWN, UNKNOWN, "ok"], Settled("ok", resent=True), 3),
    ([UNKNOWN, DOWN, "ok"], Settled("ok", resent=True), 3),  # Redis back within the wait
])
def test_an_answer_within_the_wait_is_the_outcome(steps, settled, calls):
    write = Script(*steps)
    assert settle(write, 1.0, clock=write.clock) == settled
    assert write.calls == calls


def test_no_answer_within_the_wait_stays_unknown():
    write = Script(UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, "too late")
    with pytest.raises(OutcomeUnknownError):
        settle(write, 1.0, clock=write.clock)
    assert write.calls == 4  # the first at 0.4 s; again at 0.8, 1.2 and 1.6 (< 0.4 + 1.0)


def test_unknown_then_unreachable_is_still_unknown():
    """The first copy may be applied: Redis refusing the next ones does not make it a failure."""
    write = Script(UNKNOWN, *[DOWN] * 10, step=0.3)
    with pytest.raises(OutcomeUnknownError):
        settle(write, 0.5, clock=write.clock)


def test_a_write_never_sent_is_not_sent_again():
    """Refused before it went out: nothing applied, and the failure is said as it is."""
    write = Script(DOWN, "ok")
    with pytest.raises(StoreUnavailableError) as failure:
        settle(write, 1.0, clock=write.clock)
    assert not isinstance(failure.value, OutcomeUnknownError)
    assert write.calls == 1


def test_no_wait_means_no_second_copy():
    write = Script(UNKNOWN, "ok")
    with pytest.raises(OutcomeUnknownError):
        settle(write, 0.0, clock=write.clock)
    assert write.calls == 1
