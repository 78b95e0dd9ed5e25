"""What each candidate library adds to one API request: the choice of ussd/api/'s models.

    uv venv /tmp/api-libraries && VIRTUAL_ENV=/tmp/api-libraries uv pip install \\
        flask==3.1.3 pydantic==2.14.4 flask-openapi3==4.3.2 spectree==3.0.0 flask-smorest==0.47.0
    /tmp/api-libraries/bin/python bench/api_libraries.py

The same two endpoints, the API's shapes, written with each candidate that makes the request
and response models and the OpenAPI document from one source: a read (a path parameter, a
response of 13 fields and 4 offers) and a write (a path parameter, a required header, a JSON
body, a 201 response). Each handler returns fixed data: what is timed is the library (parsing,
validating, serialising), not Redis. Requests are WSGI calls in this process, without a
server or a socket; the median of 7 runs of 4,000 calls each, after 1,000 of warm-up. The
baseline is plain Flask, the body checked and the response written by hand with pydantic.
Prints microseconds per request, and the OpenAPI version each library writes.
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import time
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


def per_request_us(app: Flask, env: dict, expected: int, calls: int = 4000) -> float:
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def one() -> None:
        request_env = dict(env)
        request_env["wsgi.input"] = io.BytesIO(env["_body"])
        b"".join(app.wsgi_app(request_env, start_response))

    for _ in range(1000):
        one()
    assert all(s.startswith(str(expected)) for s in statuses), (app.name, statuses[-1])
    runs = []
    for _ in range(7):
        started = time.perf_counter()
        for _ in range(calls):
            one()
        runs.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(runs)


def main() -> None:
    read = environ("GET", "/api/v1/subscribers/0700000001")
    write = environ("POST", "/api/v1/subscribers/0700000001/migrations",
                    json.dumps({"profile": "Tigre"}).encode(), {"Idempotency-Key": "k-1"})
    bad = environ("POST", "/api/v1/subscribers/0700000001/migrations",
                  json.dumps({"profile": 7}).encode(), {"Idempotency-Key": "k-1"})
    print(f"{'library':<16} {'read us':>8} {'write us':>9} {'400 us':>7}  OpenAPI")
    for name, make in (("baseline", baseline), ("flask-openapi3", flask_openapi3),
                       ("  header by hand", lambda: flask_openapi3(header_model=False)),
                       ("spectree", spectree), ("flask-smorest", flask_smorest)):
        app = make()
        bad_status = 400 if name != "flask-smorest" else 422  # smorest's own choice
        print(f"{name:<16} {per_request_us(app, read, 200):>8.1f} "
              f"{per_request_us(app, write, 201):>9.1f} "
              f"{per_request_us(app, bad, bad_status):>7.1f}  "
              f"{getattr(app, 'spec_version', '-')}")


if __name__ == "__main__":
    main()
