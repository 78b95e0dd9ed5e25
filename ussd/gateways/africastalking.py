"""Africa's Talking: form ``POST``, cumulative ``text``, ``text/plain`` ``CON``/``END`` reply.

Source: Africa's Talking USSD docs. Every hop carries ``sessionId, serviceCode, phoneNumber,
networkCode, text``, where ``text`` joins with ``*`` every input since the dial (empty on the
first hop). Because it is cumulative, a retried hop resends the same ``text`` and is
recognised by its input count. At the end of a session (an ``END`` shown, the subscriber gone,
the network lost) the gateway may call the events URL with ``status``
(``Success``/``Incomplete``/``Failed``), ``durationInMillis``, ``errorMessage``...: that
closes the session, changes no subscriber, and is answered with an empty ``200``;
``Incomplete`` and ``Failed`` are a dialogue broken before its end (a drop: it may be resumed on
a redial), ``Success`` one that reached our ``END``. The gateway is given a URL only, so its
secret is a token in the path (``/ussd/africastalking/<token>``).

A first hop's ``text`` may already hold the inputs chained in the dialled code (``serviceCode``
``*121*1*4#`` with ``text`` ``1*4``): they are walked once (``contract.chained_once``). A hop
whose ``text`` is empty is a dial: on a session id the gateway has ended, a new session.
"""

from __future__ import annotations

from types import MappingProxyType

from ..contract import End, EndKind, Hop, Reply, Route, WireReply, WireRequest
from ..errors import MalformedReplyError
from ..phone import normalize_msisdn
from .fields import SERVICE_CODES, ServiceCodes, check_answer, field, split_inputs, text_field

EVENTS = "/events"
NETWORK = "61203"  # Orange Côte d'Ivoire's MCC and MNC, as the gateway names the network
_ACKNOWLEDGED = WireReply(200, "text/plain", "")
_STATUS = {EndKind.COMPLETED: "Success", EndKind.HANG_UP: "Incomplete",
           EndKind.TIME_OUT: "Incomplete"}
# Each status, in any letter case: its spelling here (as end_meanings and the metrics name
# it), and whether it is a drop (True) or an end (False).
_STATUSES = {"success": ("Success", False), "incomplete": ("Incomplete", True),
             "failed": ("Failed", True)}


class AfricasTalking:
    """The Africa's Talking dialect, both halves."""

    name = "africastalking"
    # Its words for how a session ended (metrics): None, the service ended it itself.
    end_meanings = MappingProxyType({"Success": None, "Incomplete": "abandoned",
                                     "Failed": "failed"})
    routes = (Route("", ("POST",)), Route(EVENTS, ("POST",)))
    body = "form"
    token_in_path = True
    numbers_hops = True

    def parse(self, request: WireRequest, codes: ServiceCodes = SERVICE_CODES) -> Hop | End:
        """The hop a callback's form describes, or the End an event reports.

        Raises BadRequestError or InvalidMsisdnError on a bad field, number or service code.
        """
        form = request.form
        if request.suffix == EVENTS:
            said = field(form, "status")
            status, dropped = _STATUSES.get(said.lower() if isinstance(said, str) else "",
                                            (said if isinstance(said, str) else "unknown", None))
            return End(self.name, field(form, "sessionId"), field(form, "phoneNumber"), status,
                       dropped)
        inputs = split_inputs(text_field(form, "text", required=False))
        return Hop(
            gateway=self.name,
            session_id=text_field(form, "sessionId"),
            msisdn=normalize_msisdn(text_field(form, "phoneNumber")),
            inputs=inputs,
            cumulative=True,
            sequence=len(inputs),
            dialled=codes.split(text_field(form, "serviceCode")),
            opens=not inputs,
        )

    def msisdn_field(self, request: WireRequest) -> object:
        """The number a request names, unchecked (for the refusal's language)."""
        return field(request.form, "phoneNumber")

    def wire(self, reply: Reply, request: WireRequest) -> WireReply:
        """A reply in the dialect: ``CON `` to continue, ``END `` to close."""
        return WireReply(200, "text/plain", ("END " if reply.end else "CON ") + reply.text)

    def acknowledge(self, end: End, request: WireRequest) -> WireReply:
        """An event is answered with an empty ``200``."""
        return _ACKNOWLEDGED

    # --- the client half: what the gateway sends, and how it reads our answers -------------

    def dial(self, session_id: str, msisdn: str, code: str) -> WireRequest:
        """The first hop's callback: ``text`` empty."""
        return self.hop(session_id, msisdn, code, ())

    def hop(self, session_id: str, msisdn: str, code: str,
            inputs: tuple[str, ...]) -> WireRequest:
        """A callback: every input since the dial, joined with ``*``, in ``text``."""
        return WireRequest("POST", form={
            "sessionId": session_id, "serviceCode": code, "phoneNumber": msisdn,
            "networkCode": NETWORK, "text": "*".join(inputs)})

    def end(self, session_id: str, msisdn: str, code: str, inputs: tuple[str, ...],
            kind: EndKind) -> WireRequest:
        """The end-of-session event: ``Success`` after an ``END``, else ``Incomplete``."""
        return WireRequest("POST", EVENTS, form={
            "sessionId": session_id, "serviceCode": code, "phoneNumber": msisdn,
            "networkCode": NETWORK, "status": _STATUS[kind], "durationInMillis": "0",
            "errorMessage": "session timed out" if kind is EndKind.TIME_OUT else "",
            "input": "*".join(inputs)})

    def read_reply(self, answer: WireReply) -> Reply:
        """The screen a ``CON``/``END`` answer shows; MalformedReplyError for any other."""
        check_answer(answer, "text/plain")
        body = answer.body
        if not body.startswith(("CON ", "END ")):
            raise MalformedReplyError(f"reply starts with neither CON nor END: {body[:80]!r}")
        return Reply(body[4:], body.startswith("END "))

    def check_acknowledgement(self, answer: WireReply, request: WireRequest) -> None:
        """MalformedReplyError unless an event is answered ``200`` (its body is not read)."""
        if answer.status != 200:
            raise MalformedReplyError(f"an event got HTTP {answer.status}")


DIALECT = AfricasTalking()
