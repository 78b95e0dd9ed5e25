"""Billing in and out: the relay that hands each migration's event to billing, then the
subscriber's SMS receipt to the SMS provider, at least once and never lost.

One module per job::

    delivery.py  what a call's answer means (delivered, retry, refused), the back-off
    client.py    billing's HTTP client: POST the event, Idempotency-Key: its id
    sms.py       Africa's Talking's SMS client: POST the receipt
    receipt.py   the receipt of an event: its text from menus/, in the subscriber's language
    relay.py     the relay: reads the outbox's queues, delivers, retries, dead-letters
    metrics.py   the relay's metrics: deliveries by outcome, and the queues as Redis holds them
    stubs.py     a billing server and an SMS provider on loopback, for the demo and the tests

The queues themselves (streams, holds, acknowledgements) are ``ussd.store.outbox``'s.
"""
