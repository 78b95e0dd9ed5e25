"""The ``Idempotency-Key`` header of a migration request, and how a replayed answer says so.

A key names one request of one client about one subscriber, for 24 hours: sent again with the
same body, the request gets the first answer (status and body) and applies nothing again, the
answer marked ``Idempotent-Replayed: true``; with another body, a ``422``. The header is read
as the IETF draft writes it, a structured-field string (``"8e03978e-..."``), or bare as most
clients send it (``8e03978e-...``): both name the same key. What a key was answered is kept in
the store, written in the migration's own atomic step (``ussd/accounts.py``).
"""

from __future__ import annotations

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"


def key_of(value: str) -> str | None:
    """The key a header value names, or None when it names none (an empty or broken quoted
    string). The value is visible ASCII already (``models.MigrationHeaders``)."""
    if not value.startswith('"'):
        return value
    if len(value) < 3 or not value.endswith('"'):
        return None
    key, escaped = [], False
    for char in value[1:-1]:
        if escaped:
            if char not in '"\\':
                return None
            key.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            return None  # a quote inside must be escaped
        else:
            key.append(char)
    return None if escaped else "".join(key)


def replay_headers(replayed: bool) -> dict[str, str]:
    """The header a replayed answer carries (none for a first answer)."""
    return {REPLAYED: "true"} if replayed else {}
