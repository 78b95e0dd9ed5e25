"""What each candidate library adds to one API request: the choice of ussd/api/'s models.

    uv venv /tmp/api-libraries && VIRTUAL_ENV=/tmp/api-libraries uv pip install \\
        flask==3.1.3 pydantic==2.14.4 flask-openapi3==4.3.2 spectree==3.0.0 \\
        flask-smorest==0.47.0 flask-limiter==4.1.1 "limits[redis]==5.8.0" redis
    /tmp/api-libraries/bin/python bench/api_libraries.py

The same two endpoints, the API's shapes, written with each candidate that makes the request
and response models and the OpenAPI document from one source: a read (a path parameter, a
response of 13 fields and 4 offers) and a write (a path parameter, a required header, a JSON
body, a 201 response). Each handler returns fixed data: what is timed is the library (parsing,
validating, serialising), not Redis. Requests are WSGI calls in this process, without a
server or a socket: every (library, request) pair in turn, 9 rounds of 2,000 calls each, the
fastest round of each pair kept (a shared machine's other load only slows a round down). The
baseline is plain Flask, the body checked and the response written by hand with pydantic.
Prints microseconds per request, and the OpenAPI version each library writes.

Then the rate limiters: a plain view, the same behind Flask-Limiter (the limit and the key
given by functions, as a per-client limit needs) and behind ``limits`` called directly (the
library Flask-Limiter wraps), each with a moving window, in memory and on a redis-server the
script starts on a free loopback port (tests/redis_servers.py).
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path
from typing import Literal

from flask import Flask, Response, request
from pydantic import BaseModel, Field, ValidationError

OFFER = {"profile": "Tigre", "current": False, "eligible": True, "reason": "approved",
         "required": 2500, "consumed": 3000}
PAGE = {"msisdn": "+2250700000001", "profile": "Novamix", "language": "fr", "month": "2026-11",
        "migrations_this_month": 0, "migrations_left": 3, "consumption_last_month": 3000,
        "offers": [OFFER] * 4}
MIGRATED = {"msisdn": "+2250700000001", "decision": "approved", "migrations_left": 2,
            "migrations_this_month": 1,
            "migration": {"from": "Novamix", "to": "Tigre", "channel": "web", "client": "portal",
                          "at": "2026-11-15T10:00:00+00:00"}}


# pydantic models: the source of the flask-openapi3 and spectree variants, and the baseline's.
class Offer(BaseModel):
    profile: str
    current: bool
    eligible: bool
    reason: str
    required: int
    consumed: int


class Page(BaseModel):
    msisdn: str
    profile: str
    language: Literal["fr", "en"]
    month: str
    migrations_this_month: int
    migrations_left: int
    consumption_last_month: int
    offers: list[Offer]


class MigrationBody(BaseModel):
    profile: str = Field(min_length=1, max_length=32)


class Migration(BaseModel):
    from_: str = Field(alias="from")
    to: str
    channel: str
    client: str | None
    at: str


class Migrated(BaseModel):
    msisdn: str
    decision: str
    migrations_left: int
    migrations_this_month: int
    migration: Migration


class SubscriberPath(BaseModel):
    msisdn: str = Field(max_length=32)


class IdempotencyHeader(BaseModel):
    idempotency_key: str = Field(alias="Idempotency-Key", max_length=128)


def baseline() -> Flask:
    app = Flask("baseline")

    @app.get("/api/v1/subscribers/<msisdn>")
    def read(msisdn):
        return Response(Page.model_validate(PAGE).model_dump_json(), mimetype="application/json")

    @app.post("/api/v1/subscribers/<msisdn>/migrations")
    def migrate(msisdn):
        if not request.headers.get("Idempotency-Key"):
            return Response("{}", 400, mimetype="application/problem+json")
        try:
            MigrationBody.model_validate_json(request.get_data())
        except ValidationError as error:
            return Response(error.json(), 400, mimetype="application/problem+json")
        return Response(Migrated.model_validate(MIGRATED).model_dump_json(by_alias=True), 201,
                        mimetype="application/json")

    return app


def flask_openapi3(header_model: bool = True) -> Flask:
    from flask_openapi3 import Info, OpenAPI

    app = OpenAPI("openapi3", info=Info(title="t", version="1"), validation_error_status=400)

    @app.get("/api/v1/subscribers/<msisdn>", responses={200: Page})
    def read(path: SubscriberPath):
        return Response(Page.model_validate(PAGE).model_dump_json(), mimetype="application/json")

    def migrate(path: SubscriberPath, body: MigrationBody, header=None):
        if not header_model and not request.headers.get("Idempotency-Key"):
            return Response("{}", 400, mimetype="application/problem+json")
        return Response(Migrated.model_validate(MIGRATED).model_dump_json(by_alias=True), 201,
                        mimetype="application/json")

    if header_model:  # its header model's JSON schema is made again on every request
        def with_header(path: SubscriberPath, header: IdempotencyHeader, body: MigrationBody):
            return migrate(path, body, header)
    else:
        def with_header(path: SubscriberPath, body: MigrationBody):
            return migrate(path, body)
    app.post("/api/v1/subscribers/<msisdn>/migrations", responses={201: Migrated})(with_header)

    app.spec_version = app.api_doc["openapi"]
    return app


def spectree() -> Flask:
    from spectree import Response as SpecResponse
    from spectree import SpecTree

    app = Flask("spectree")
    spec = SpecTree("flask", validation_error_status=400)

    @app.get("/api/v1/subscribers/<msisdn>")
    @spec.validate(path_parameter_descriptions={"msisdn": "number"},
                   resp=SpecResponse(HTTP_200=Page))
    def read(msisdn):
        return Page.model_validate(PAGE)

    @app.post("/api/v1/subscribers/<msisdn>/migrations")
    @spec.validate(json=MigrationBody, headers=IdempotencyHeader,
                   resp=SpecResponse(HTTP_201=Migrated))
    def migrate(msisdn):
        return Migrated.model_validate(MIGRATED), 201

    spec.register(app)
    with app.app_context():
        app.spec_version = spec.spec["openapi"]
    return app


def flask_smorest() -> Flask:
    import marshmallow as ma
    from flask_smorest import Api, Blueprint

    class OfferSchema(ma.Schema):
        profile = ma.fields.String(required=True)
        current = ma.fields.Boolean(required=True)
        eligible = ma.fields.Boolean(required=True)
        reason = ma.fields.String(required=True)
        required = ma.fields.Integer(required=True)
        consumed = ma.fields.Integer(required=True)

    class PageSchema(ma.Schema):
        msisdn = ma.fields.String()
        profile = ma.fields.String()
        language = ma.fields.String(validate=ma.validate.OneOf(["fr", "en"]))
        month = ma.fields.String()
        migrations_this_month = ma.fields.Integer()
        migrations_left = ma.fields.Integer()
        consumption_last_month = ma.fields.Integer()
        offers = ma.fields.List(ma.fields.Nested(OfferSchema))

    class BodySchema(ma.Schema):
        profile = ma.fields.String(required=True, validate=ma.validate.Length(1, 32))

    class HeaderSchema(ma.Schema):
        idempotency_key = ma.fields.String(data_key="Idempotency-Key", required=True)

        class Meta:
            unknown = ma.EXCLUDE

    class MigrationSchema(ma.Schema):
        from_ = ma.fields.String(data_key="from")
        to = ma.fields.String()
        channel = ma.fields.String()
        client = ma.fields.String(allow_none=True)
        at = ma.fields.String()

    class MigratedSchema(ma.Schema):
        msisdn = ma.fields.String()
        decision = ma.fields.String()
        migrations_left = ma.fields.Integer()
        migrations_this_month = ma.fields.Integer()
        migration = ma.fields.Nested(MigrationSchema)

    app = Flask("smorest")
    app.config.update(API_TITLE="t", API_VERSION="1", OPENAPI_VERSION="3.1.0")
    api = Api(app)
    blp = Blueprint("api", "api", url_prefix="/api/v1")
    migrated = {**MIGRATED, "migration": {"from_": "Novamix", **{
        k: v for k, v in MIGRATED["migration"].items() if k != "from"}}}

    @blp.get("/subscribers/<msisdn>")
    @blp.response(200, PageSchema)
    def read(msisdn):
        return PAGE

    @blp.post("/subscribers/<msisdn>/migrations")
    @blp.arguments(HeaderSchema, location="headers")
    @blp.arguments(BodySchema)
    @blp.response(201, MigratedSchema)
    def migrate(headers, body, msisdn):
        return migrated

    api.register_blueprint(blp)
    app.spec_version = api.spec.to_dict()["openapi"]
    return app


def environ(method: str, path: str, body: bytes = b"", headers: dict | None = None) -> dict:
    env = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
           "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
           "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.input_terminated": True,
           "CONTENT_LENGTH": str(len(body))}
    if body:
        env["CONTENT_TYPE"] = "application/json"
    for name, value in (headers or {}).items():
        env["HTTP_" + name.upper().replace("-", "_")] = value
    env["_body"] = body
    return env


ROUNDS = 9  # of every (app, request) pair in turn: a load on the shared machine meets them all
CALLS = 2000  # per pair and round


def caller(app: Flask, env: dict, expected: int):
    """A function making one WSGI call of ``env`` to ``app``; checked to answer ``expected``."""
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def one() -> None:
        request_env = dict(env)
        request_env["wsgi.input"] = io.BytesIO(env["_body"])
        b"".join(app.wsgi_app(request_env, start_response))

    for _ in range(500):  # warm
        one()
    assert all(s.startswith(str(expected)) for s in statuses), (app.name, statuses[-1])
    return one


def per_request_us(calls: dict) -> dict:
    """Microseconds per call of each of ``calls`` (name: function): the pairs measured in
    turn, round after round, and each one's fastest round kept (what the machine's other
    load cannot make faster, only slower)."""
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(ROUNDS):
        for name, one in calls.items():
            started = time.perf_counter()
            for _ in range(CALLS):
                one()
            best[name] = min(best[name], (time.perf_counter() - started) / CALLS * 1e6)
    return best


def main() -> None:
    read = environ("GET", "/api/v1/subscribers/0700000001")
    write = environ("POST", "/api/v1/subscribers/0700000001/migrations",
                    json.dumps({"profile": "Tigre"}).encode(), {"Idempotency-Key": "k-1"})
    bad = environ("POST", "/api/v1/subscribers/0700000001/migrations",
                  json.dumps({"profile": 7}).encode(), {"Idempotency-Key": "k-1"})
    apps = {name: make() for name, make in (
        ("baseline", baseline), ("flask-openapi3", flask_openapi3),
        ("  header by hand", lambda: flask_openapi3(header_model=False)),
        ("spectree", spectree), ("flask-smorest", flask_smorest))}
    calls = {}
    for name, app in apps.items():
        bad_status = 422 if name == "flask-smorest" else 400  # smorest's own choice
        for kind, env, status in (("read", read, 200), ("write", write, 201),
                                  ("400", bad, bad_status)):
            calls[name, kind] = caller(app, env, status)
    figures = per_request_us(calls)
    print(f"{'library':<16} {'read us':>8} {'write us':>9} {'400 us':>7}  OpenAPI")
    for name, app in apps.items():
        print(f"{name:<16} {figures[name, 'read']:>8.1f} {figures[name, 'write']:>9.1f} "
              f"{figures[name, '400']:>7.1f}  {getattr(app, 'spec_version', '-')}")


def rate_limited(kind: str, storage_uri: str) -> Flask:
    """A view behind no limiter, Flask-Limiter, or ``limits`` itself (``kind``)."""
    app = Flask(f"limits-{kind}")
    if kind == "flask-limiter":
        from flask_limiter import Limiter

        limiter = Limiter(key_func=lambda: "portal", app=app, storage_uri=storage_uri,
                          strategy="moving-window")

        @app.get("/x")
        @limiter.limit(lambda: "1000000/second", key_func=lambda: "portal")
        def limited():
            return Response("{}")

        return app
    if kind == "limits":
        from limits import parse, storage, strategies

        moving = strategies.MovingWindowRateLimiter(storage.storage_from_string(storage_uri))
        item = parse("1000000/second")

        @app.get("/x")
        def direct():
            return Response("{}") if moving.hit(item, "portal") else Response("", 429)

        return app

    @app.get("/x")
    def plain():
        return Response("{}")

    return app


def limiters() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from redis_servers import RedisServer

    kinds = ("none", "flask-limiter", "limits")
    with RedisServer({"save": "", "appendonly": "no"}) as server:
        storages = {"memory": "memory://", "redis": server.url}
        figures = per_request_us({
            (kind, storage): caller(rate_limited(kind, uri), environ("GET", "/x"), 200)
            for kind in kinds for storage, uri in storages.items()})
    print(f"\n{'rate limiter':<16} {'memory us':>10} {'redis us':>9}")
    for kind in kinds:
        print(f"{kind:<16} {figures[kind, 'memory']:>10.1f} {figures[kind, 'redis']:>9.1f}")


if __name__ == "__main__":
    main()
    limiters()
