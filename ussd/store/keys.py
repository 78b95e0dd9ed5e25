"""The key space: every Redis key and hash field name the service uses, built here only.

Every subscriber falls in one of 256 **buckets** (``BUCKETS``), two hex digits taken from a
CRC-32 of its MSISDN, fixed for ever: a Redis Cluster hashes only what is between ``{}``, so
all the keys of a bucket, its subscribers' and its outbox streams, live in one slot, and one
Lua script can migrate a subscriber and append the billing event in the same atomic step::

    <prefix>:{<bb>}<msisdn>:sub                 hash: the subscriber (fields below)
    <prefix>:{<bb>}<msisdn>:history             list: one JSON entry per migration, oldest first
    <prefix>:{<bb>}<msisdn>:session:<digest>    string: a live USSD session record, with its TTL
    <prefix>:{<bb>}<msisdn>:session:<digest>:closed   the same record once the gateway has
                                                reported the session ended, until its TTL runs
                                                out: a late copy of a hop is answered from it
    <prefix>:{<bb>}<msisdn>:request:<digest>    string: what an API client's migration request
                                                (its ``Idempotency-Key``) was answered, for 24 h
    <prefix>:{<bb>}<msisdn>:increments:<YYYY-MM>   set: the ids of the consumption increments
                                                counted in that month (each counted once)
    <prefix>:{<bb>}<msisdn>:dropped             string: the subscriber's latest dialogue not yet
                                                at a result, "<digest> <record>", kept for the
                                                session TTL plus the resume window
                                                (ussd/resume.py)
    <prefix>:limits:LIMITER/<client>/...        the API clients' rate limits (the ``limits``
                                                library names what follows the prefix)
    <prefix>:probe:<n>                          string: written by readiness (/readyz), 10 s
                                                TTL (on a cluster, one per master)

    <prefix>:{<bb>}:events                      stream: the outbox, one entry per applied
                                                migration of the bucket's subscribers, until
                                                billing has acknowledged it (consumer group
                                                ``relay``)
    <prefix>:{<bb>}:events:dead                 stream: events billing refused, or that failed
                                                too often, with the reason (``ussd events``)
    <prefix>:{<bb>}:events:tries                hash: attempts and last error of a waiting event
    <prefix>:{<bb>}:sms, :sms:dead, :sms:tries  the same three for the subscriber's SMS receipt

``<bb>`` is ``00`` to ``ff``. 256 buckets spread the subscribers over 256 slots, so over up to
256 masters, while a relay reads 256 streams (one command on one server; one per stream,
pipelined per master, on a cluster). The tag is two characters where the MSISDN was 14 (the
layout before the outbox), so no key grew: same allocator size classes, same memory per
subscriber and per session (bench/README.md). Changing ``BUCKETS`` moves every key.

The layout before the buckets tagged each subscriber's keys with its MSISDN;
``ussd move-to-buckets`` moves the first two to their keys above::

    <prefix>:{<msisdn>}:sub, <prefix>:{<msisdn>}:history, <prefix>:{<msisdn>}:session:<digest>

The subscriber hash's fields: ``p`` the profile, ``l`` the language (``fr``, ``en``: chosen in the
menu or loaded from CSV, read by every channel), ``c:<YYYY-MM>`` the credit
consumed that month (F CFA), ``m:<YYYY-MM>`` the successful migrations of that month. A Lua
script gets the names of the fields it touches as arguments (``ARGV``), never spelled in it.

Nothing a gateway or an API client sends is put in a key as it is: the MSISDN is validated and
normalised first (digits after a ``+``), and a gateway's session id and an API client's
idempotency key are hashed, so no input can steer a key name. A request's record sits in the
subscriber's slot, so that the migration script writes it in the same atomic step as the
migration, on a cluster too.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from functools import lru_cache

from ..months import MONTH_PATTERN

PROFILE_FIELD = "p"
LANGUAGE_FIELD = "l"
CONSUMPTION_PREFIX = "c:"  # + YYYY-MM: credit consumed that month
MIGRATIONS_PREFIX = "m:"  # + YYYY-MM: migrations made that month
_MSISDN = re.compile(r"\+[1-9][0-9]{6,14}")  # whole: fullmatch ($ lets a final newline by)
_OLD_SESSION = re.compile(r"session:[0-9a-f]{20}(:closed)?")  # after the layout's {+msisdn}:
BUCKETS = 256  # fixed: changing it moves every key (see above)
EVENTS = "events"  # the queue of billing events: the outbox
SMS = "sms"  # the queue of SMS receipts
QUEUES = (EVENTS, SMS)
RELAY_GROUP = "relay"  # the consumer group every relay reads the queues with
# The field each queue's entries are written under (the migration script writes the events').
ENTRY_FIELDS = {EVENTS: "event", SMS: "sms"}
# A dead letter's fields beside its entry's: why it was given up, after how many attempts, when.
DEAD_FIELDS = ("reason", "attempts", "at")


@lru_cache(maxsize=65536)  # a hop names four keys of its subscriber: one CRC-32, not four
def bucket_of(msisdn: str) -> str:
    """The bucket of a normalised MSISDN: ``00`` to ``ff``, the same for ever."""
    return f"{zlib.crc32(msisdn.encode()) % BUCKETS:02x}"


ALL_BUCKETS = tuple(f"{number:02x}" for number in range(BUCKETS))


def consumption_field(month: str) -> str:
    """Field of the subscriber hash with the credit consumed in ``month`` (``YYYY-MM``)."""
    return CONSUMPTION_PREFIX + month


def migrations_field(month: str) -> str:
    """Field of the subscriber hash counting the successful migrations of ``month``."""
    return MIGRATIONS_PREFIX + month


def month_of_field(field: str) -> str | None:
    """The ``YYYY-MM`` month of a consumption or migration-count field; None for any other."""
    for prefix in (CONSUMPTION_PREFIX, MIGRATIONS_PREFIX):
        if field.startswith(prefix) and MONTH_PATTERN.fullmatch(month := field[len(prefix):]):
            return month
    return None


@lru_cache(maxsize=65536)  # every hop of a session names it, for its key and its log line
def session_digest(gateway: str, session_id: str) -> str:
    """20 hex digits naming a gateway's session (in its key, and in logs), whatever its id."""
    text = f"{gateway}\0{session_id}".encode(errors="surrogatepass")
    return hashlib.blake2b(text, digest_size=10).hexdigest()


def request_digest(client: str, idempotency_key: str) -> str:
    """32 hex digits naming an API client's request by its idempotency key (in its key, and in
    logs): two clients choosing the same key name two requests."""
    text = f"{client}\0{idempotency_key}".encode(errors="surrogatepass")
    return hashlib.blake2b(text, digest_size=16).hexdigest()


class KeySpace:
    """The key names of one deployment, under its prefix; ValueError for a bad prefix.

    Every method taking an ``msisdn`` wants it normalised (``+`` and digits), and raises
    ValueError otherwise.
    """

    def __init__(self, prefix: str = "ussd"):
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", prefix):
            raise ValueError(f"key prefix must be 1-32 letters, digits, '_', '.', '-': {prefix!r}")
        self.prefix = prefix

    def _tag(self, msisdn: str) -> str:
        if not _MSISDN.fullmatch(msisdn):
            raise ValueError(f"not a normalised MSISDN: {msisdn!r}")
        return f"{self.prefix}:{{{bucket_of(msisdn)}}}{msisdn}"

    def subscriber(self, msisdn: str) -> str:
        """The subscriber's hash (fields: see the module's docstring)."""
        return f"{self._tag(msisdn)}:sub"

    def history(self, msisdn: str) -> str:
        """The subscriber's migration history (a list of JSON entries)."""
        return f"{self._tag(msisdn)}:history"

    def session(self, msisdn: str, gateway: str, session_id: str) -> str:
        """A live session of the subscriber, as one gateway names it (its id is hashed)."""
        return f"{self._tag(msisdn)}:session:{session_digest(gateway, session_id)}"

    def request(self, msisdn: str, client: str, idempotency_key: str) -> str:
        """The record of an API client's migration request about the subscriber, by its
        idempotency key (hashed with the client's name)."""
        return f"{self._tag(msisdn)}:request:{request_digest(client, idempotency_key)}"

    def rate_limits(self) -> str:
        """The prefix of the API clients' rate-limit keys (what follows is the library's)."""
        return f"{self.prefix}:limits"

    def closed_session(self, session_key: str) -> str:
        """Where a session's record goes (from its key) when the gateway reports it ended."""
        return f"{session_key}:closed"

    def dropped_session(self, msisdn: str) -> str:
        """The subscriber's dropped-session marker: the dialogue a redial may resume."""
        return f"{self._tag(msisdn)}:dropped"

    def beside_session(self, session_key: str) -> tuple[str, str]:
        """The dropped-session marker and the subscriber hash of a session's subscriber, from
        the session's key (a hop's write names them from the key its read built)."""
        tag = session_key[:session_key.index(":", session_key.index("}"))]
        return f"{tag}:dropped", f"{tag}:sub"

    def increments(self, msisdn: str, month: str) -> str:
        """The ids of the consumption increments counted in ``month`` (``YYYY-MM``)."""
        return f"{self._tag(msisdn)}:increments:{month}"

    def probe(self, number: int = 0) -> str:
        """A key the readiness probe writes, with a short TTL (a cluster: one per master)."""
        return f"{self.prefix}:probe:{number}"

    def subscriber_pattern(self) -> str:
        """A SCAN pattern matching every subscriber hash."""
        return f"{self.prefix}:{{??}}+*:sub"

    def every_key_pattern(self) -> str:
        """A SCAN pattern matching every key of this deployment (its prefix)."""
        return f"{self.prefix}:*"

    def old_layout_pattern(self) -> str:
        """A SCAN pattern matching every key of the layout before the buckets (``{+...}``)."""
        return f"{self.prefix}:{{+*}}:*"

    def old_layout_key(self, key: str) -> tuple[str, str] | None:
        """``(msisdn, "sub")`` for a subscriber hash of the layout before the buckets,
        ``(msisdn, "history")`` for a history, ``(msisdn, "session")`` for a session, live or
        closed; None for any other key (a key of today's, another prefix's, a tag that is no
        normalised MSISDN, a name that layout never wrote)."""
        head = f"{self.prefix}:{{"
        msisdn, closed, name = key[len(head):].partition("}:")
        kind = ("session" if _OLD_SESSION.fullmatch(name)
                else name if name in ("sub", "history") else None)
        if not key.startswith(head) or not closed or kind is None or not _MSISDN.fullmatch(msisdn):
            return None
        return msisdn, kind

    def subscriber_keys_pattern(self, msisdn: str) -> str:
        """A SCAN pattern matching every key of one subscriber: profile, history, sessions."""
        return f"{self._tag(msisdn)}:*"

    def msisdn_of(self, key: str) -> str:
        """The MSISDN inside one of our key names; ValueError if it names none."""
        start = key.index("}") + 1
        end = key.index(":", start)
        if start == end:
            raise ValueError(f"no subscriber in {key!r}")
        return key[start:end]

    def queue(self, queue: str, bucket: str) -> str:
        """The stream of a queue (``EVENTS``, ``SMS``) in one bucket."""
        return f"{self.prefix}:{{{bucket}}}:{queue}"

    def dead(self, queue: str, bucket: str) -> str:
        """The dead letters of a queue in one bucket."""
        return f"{self.prefix}:{{{bucket}}}:{queue}:dead"

    def tries(self, queue: str, bucket: str) -> str:
        """The attempts and last error of each waiting entry of a queue in one bucket."""
        return f"{self.prefix}:{{{bucket}}}:{queue}:tries"

    def bucket_of_key(self, key: str) -> str:
        """The bucket in one of our key names."""
        return key[key.index("{") + 1:key.index("}")]


def digest_of(session_key: str) -> str:
    """The session digest a session key ends with (what a dropped-session marker names)."""
    return session_key.rsplit(":", 1)[1]
