"""The demo's billing stub (ussd/billing/stubs.py, ``ussd stub-billing``): what it prints lets a
newcomer see each event reach billing once, under the same id on every retry."""

from __future__ import annotations

import httpx

from ussd.billing.stubs import BillingStub

EVENT = {"id": "ev-1", "msisdn": "+2250700000001", "from": "novamix", "to": "tigre",
         "channel": "ussd", "client": "africastalking"}


def test_the_billing_stub_says_what_it_refused_applied_and_saw_again():
    lines: list[str] = []
    with BillingStub(echo=lines.append) as billing:
        def send() -> int:
            return httpx.post(f"{billing.url}events", json=EVENT,
                              headers={"Idempotency-Key": "ev-1"}).status_code

        billing.go_down(60)
        assert send() == 503
        billing.go_down(0)
        assert (send(), send()) == (200, 200)
    assert lines == ["billing: down, 503 to ev-1",
                     "billing: applied ev-1: +2250700000001 novamix -> tigre "
                     "(ussd, africastalking)",
                     "billing: duplicate ev-1: applied before, not again"]
    assert billing.applied == [EVENT]
