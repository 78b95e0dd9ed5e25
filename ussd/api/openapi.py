"""The OpenAPI 3.1 document and the request checks, both from ``models.py``: spectree.

Each view is declared with ``spec.validate(...)``: its body and header models, checked before
the view runs (a ``400`` problem naming every bad part), and its answers by status, from which
spectree writes the document. :func:`document` then says what spectree cannot: problems are
``application/problem+json``, the headers some answers carry, and the forms of a number in a
path (spectree reads a path parameter's type from Flask's converter only).

Why spectree (pydantic models), by bench/api_libraries.py (us added to a read, a migration):
spectree 30, 46; flask-smorest (marshmallow) 53, 106; flask-openapi3 6, 172, for it makes its
header model's JSON schema again on every request; with the Idempotency-Key read by hand
instead, 6, 13, but then the header is outside the models and the document. spectree is the
cheapest that keeps the header in the one source, and it decorates plain Flask views, so the
app stays a Flask app (flask-openapi3 needs its own app class).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from typing import Any

from flask import g, request
from pydantic import BaseModel, ValidationError
from spectree import SecurityScheme, SecuritySchemeData, SpecTree

from ..errors import InvalidMsisdnError
from ..phone import normalize_msisdn
from .models import MSISDN_PATH_PATTERN, PROBLEM_MODELS, InvalidRequest
from .problems import PROBLEM_JSON, fail

TITLE = "#121# profile change"
DESCRIPTION = (
    "The web customer area, the Orange et Moi app and customer care read a subscriber's "
    "profile and the profiles open to them, ask for migrations and read the history, under "
    "the same rules and the same monthly cap as USSD. Authenticate with `Authorization: "
    "Bearer <token>`; a client's scopes, channel and rate limit are the server's "
    "configuration. Errors are RFC 9457 problem details.")


def check_request(*checked: tuple[type[BaseModel], str]) -> Callable[..., None]:
    """The hook spectree calls once it has checked a request, before the view.

    It reads the subscriber's number in the path (normalised into ``g.msisdn``), and answers a
    ``400`` problem naming every bad part of the request: the number, and each model of
    ``checked`` (a model and where it is read, ``body`` or ``header``) checked again when
    spectree found one bad, since it stops at the first. A body the app could not read as JSON
    (a member given twice in it included: :func:`unread_body`) spectree reads as ``{}``: a
    model that takes ``{}`` must check it itself (``consumption.check_entries``). Nothing of it
    is logged (it may hold a number or a token).
    """

    def hook(req: Any, resp: Any, error: Exception | None, instance: Any,
             model_adapter: Any) -> None:
        errors: list[dict] = []
        number = (request.view_args or {}).get("msisdn")
        if number is not None:
            try:
                g.msisdn = normalize_msisdn(number)
            except InvalidMsisdnError:
                errors.append({"location": "path", "name": "msisdn", "message":
                               "not a Côte d'Ivoire mobile number (+225 and 10 digits, or "
                               "the 10 digits alone)"})
        for model, location in checked if error is not None else ():
            if location == "body":
                source = request.get_json(silent=True)
                if source is None:
                    errors.extend(unread_body(request.get_data()))
                    continue
            else:
                source = dict(request.headers)
            errors.extend(model_errors(model, source, location))
        if error is not None and not errors:  # spectree's own reading found more
            errors.append({"location": "body", "name": "", "message": "malformed"})
        if errors:
            shown = "; ".join(" ".join(filter(None, (e["location"], e["name"])))
                              + f": {e['message']}" for e in errors)
            fail("invalid-request", f"The request is malformed: {shown}.", errors=errors)

    return hook


def unread_body(data: bytes) -> list[dict]:
    """What is wrong with a body that is not JSON as the app reads it (``web.py``'s
    ``RequestJSONProvider``): each member given more than once, or else that it is none."""
    return repeated_members(data) or [{"location": "body", "name": "", "message":
                                       "not a JSON object" if data else "no body"}]


def repeated_members(data: bytes) -> list[dict]:
    """The ``errors`` naming each member of the JSON text ``data`` given more than once in its
    object (``months.0.amount``: the names and indexes from the top), once each, in the order
    of the text; none when it is not JSON. Only on a body the app refused: it reads the body
    again, keeping every member."""
    try:
        top = json.loads(data, object_pairs_hook=_Members)
    except (ValueError, RecursionError):
        return []
    errors = []
    stack: list[tuple[tuple, object, bool]] = [((), top, False)]
    while stack:  # not recursive: as deep as the parser went
        path, value, repeated = stack.pop()
        if repeated:
            errors.append({"location": "body", "name": ".".join(map(str, path)),
                           "message": "given more than once"})
        if isinstance(value, _Members):
            counts: dict[str, int] = {}
            inside = []
            for name, item in value:
                counts[name] = counts.get(name, 0) + 1
                inside.append(((*path, name), item, counts[name] == 2))
        elif isinstance(value, list):
            inside = [((*path, index), item, False) for index, item in enumerate(value)]
        else:
            continue
        stack.extend(reversed(inside))
    return errors


class _Members(list):
    """A JSON object's members, every one kept, in their order (name, value)."""


def model_errors(model: type[BaseModel], source: object, location: str) -> list[dict]:
    """What is wrong with ``source`` read as ``model`` (at ``location``, ``body`` or
    ``header``): the ``errors`` of a ``400`` problem, every one pydantic finds."""
    try:
        model.model_validate(source)
    except ValidationError as found:
        return [{"location": location, "name": ".".join(str(part) for part in item["loc"]),
                 "message": item["msg"]} for item in found.errors()]
    return []


def _quiet(*_: Any) -> None:
    """No log of a request or response spectree checked: they hold numbers and tokens."""


spec = SpecTree(
    "flask", mode="strict", title=TITLE, version="1", description=DESCRIPTION,
    openapi_version="3.1.0", page_templates={}, annotations=True,
    validation_error_status=400, validation_error_model=InvalidRequest,
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda _parent, child: child,
    security_schemes=[SecurityScheme(name="bearer", data=SecuritySchemeData(
        type="http", scheme="bearer",
        description="A client's token, from the server's clients file (only its SHA-256 is "
                    "kept there)."))],
    before=check_request(), after=_quiet,
)

# The operations with no request to check: no 400.
_NOTHING_TO_CHECK = {"openapi", "getProblemType"}
# The headers answers carry, by status, in the document.
_HEADERS = {
    "202": {"Retry-After": "seconds to wait before sending the same request again, to learn "
                           "the outcome"},
    "401": {"WWW-Authenticate": "Bearer realm=\"ussd-api\""},
    "429": {"Retry-After": "seconds to wait before the next request"},
    "503": {"Retry-After": "seconds to wait before trying again"},
}
_REPLAYED = {"Idempotent-Replayed": "`true` when this is the answer given before to the same "
                                    "request (same Idempotency-Key and body)"}


@functools.cache
def document_text() -> str:
    """:func:`document` as the JSON served, made once a process (every app has the same)."""
    return json.dumps(document(), ensure_ascii=False)


def document() -> dict:
    """The OpenAPI document of the API (spectree's, for the app of the current request, with
    the problems' media type and the answers' headers)."""
    finished = copy.deepcopy(spec.spec)
    problems = {f"#/components/schemas/{model.__name__}" for model in PROBLEM_MODELS}
    for operations in finished["paths"].values():
        for method, operation in operations.items():
            if operation["operationId"] in _NOTHING_TO_CHECK:  # spectree lists a 400 for all
                operation["responses"].pop("400", None)
            for parameter in operation.get("parameters", ()):
                if parameter["name"] == "msisdn":  # spectree knows only Flask's converter
                    parameter["schema"] = {"type": "string", "pattern": MSISDN_PATH_PATTERN,
                                           "examples": ["0700000001", "+2250700000001"]}
            for status, answer in operation["responses"].items():
                content = answer.get("content", {})
                if content.get("application/json", {}).get("schema", {}).get("$ref") in problems:
                    content[PROBLEM_JSON] = content.pop("application/json")
                headers = dict(_HEADERS.get(status, {}))
                if method == "post" and status in ("201", "422"):
                    headers.update(_REPLAYED)
                if headers:
                    answer["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                                         for name, text in headers.items()}
    return finished
