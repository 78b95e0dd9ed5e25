"""The Flask shell (ussd/web.py): health, readiness, metrics, and a malformed query string."""

from __future__ import annotations

import re

from conftest import ALICE


def counter(client, name: str, **labels: str) -> float:
    """The value of one series of ``/metrics`` (0 when it is not there yet)."""
    text = client.get("/metrics").get_data(as_text=True)
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    match = re.search(rf"^{name}\{{{re.escape(wanted)}\}} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_health_and_readiness_answer_json(client):
    health = client.get("/healthz")
    assert (health.status_code, health.get_json()) == (200, {"status": "ok"})
    ready = client.get("/readyz")
    assert (ready.status_code, ready.get_json()) == (200, {"status": "ready"})


def test_metrics_count_each_hop_by_gateway_outcome_and_end(client, dialler):
    labels = {"gateway": "africastalking", "outcome": "ok"}
    before = (counter(client, "ussd_hops_total", end="false", **labels),
              counter(client, "ussd_hops_total", end="true", **labels))
    session = dialler(ALICE)
    session.dial()
    session.send("1")
    session.send("2")
    session.send("1")  # confirmed: the success screen ends the session
    after = (counter(client, "ussd_hops_total", end="false", **labels),
             counter(client, "ussd_hops_total", end="true", **labels))
    assert (after[0] - before[0], after[1] - before[1]) == (3, 1)


def test_a_query_string_of_raw_bytes_reaches_the_dialect_as_text(client):
    # A stray non-ASCII byte in a GET hop's query is an input like any other (not the
    # dialled code, so a wrong choice), never a 500 from werkzeug's strict UTF-8 decoding.
    response = client.get("/ussd/flares", environ_overrides={
        "QUERY_STRING": f"SessionID=s1&MSISDN=%2B{ALICE[1:]}&input=\xff"})
    assert (response.status_code, response.headers["Freeflow"]) == (200, "FC")
    assert response.get_data(as_text=True) == (
        "Choix invalide.\nOrange #121#\n1. Changer de profil\n2. Mon profil\n"
        "3. Conditions de migration")
