"""The API's OpenAPI document (ussd/api/openapi.py, from ussd/api/models.py): valid OpenAPI 3.1
by openapi-spec-validator, describing every endpoint, answer and header; and the check every
test's answers go through (tests/api_calls.py) catches an answer it does not describe."""

from __future__ import annotations

import json
import typing

import pytest
from api_calls import check_against_document
from hypothesis import given
from hypothesis.strategies import from_regex
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from schemathesis.core.failures import FailureGroup
from werkzeug.test import EnvironBuilder, TestResponse
from werkzeug.wrappers import Response

from ussd.api.models import (
    MSISDN_PATH_PATTERN,
    Migration,
    Offer,
    RefusalReason,
    SubscriberPage,
)
from ussd.phone import normalize_msisdn
from ussd.rules import PROFILES_IN_ORDER, Channel, Reason

OPERATIONS = {
    ("get", "/api/v1/subscribers/{msisdn}"): "getSubscriber",
    ("get", "/api/v1/subscribers/{msisdn}/migrations"): "listMigrations",
    ("post", "/api/v1/subscribers/{msisdn}/migrations"): "createMigration",
    ("post", "/api/v1/consumption"): "feedConsumption",  # the billing issue's
    ("get", "/api/v1/openapi.json"): "openapi",
    ("get", "/api/v1/problems/{name}"): "getProblemType",
}


@pytest.fixture(scope="module")
def document(api_document) -> dict:
    return json.loads(api_document)


def test_the_document_is_valid_openapi_3_1(document):
    validate(document, cls=OpenAPIV31SpecValidator)
    assert document["openapi"] == "3.1.0"


def test_the_validator_would_see_a_broken_document(document):
    broken = json.loads(json.dumps(document))
    broken["paths"]["/api/v1/subscribers/{msisdn}"]["get"]["responses"]["200"] = {"x": 1}
    with pytest.raises(Exception, match="description"):
        validate(broken, cls=OpenAPIV31SpecValidator)


def test_every_endpoint_is_described_with_its_answers(document):
    found = {(method, path): operation["operationId"]
             for path, operations in document["paths"].items()
             for method, operation in operations.items()}
    assert found == OPERATIONS
    answers = {operation["operationId"]: sorted(operation["responses"])
               for operations in document["paths"].values()
               for operation in operations.values()}
    client_errors = ["400", "401", "403", "404", "429", "503"]
    assert answers == {
        "getSubscriber": sorted(["200", *client_errors]),
        "listMigrations": sorted(["200", *client_errors]),
        "createMigration": sorted(["201", "202", "408", "413", "415", "422", *client_errors]),
        "feedConsumption": sorted(["200", "408", "413", "415", *client_errors]),
        "openapi": ["200"], "getProblemType": ["200", "404"],
    }


def test_errors_are_problem_documents_and_their_headers_are_described(document):
    for (method, path), operation_id in OPERATIONS.items():
        operation = document["paths"][path][method]
        for status, answer in operation["responses"].items():
            media = list(answer["content"])
            assert media == (["application/json"] if status < "400"
                             else ["application/problem+json"]), (operation_id, status)
        headers = {status: sorted(answer.get("headers", {}))
                   for status, answer in operation["responses"].items()}
        expected = {"401": ["WWW-Authenticate"], "429": ["Retry-After"], "503": ["Retry-After"]}
        if method == "post":
            expected |= {"201": ["Idempotent-Replayed"], "422": ["Idempotent-Replayed"]}
        if operation_id == "createMigration":
            expected |= {"202": ["Retry-After"]}
        assert {s: h for s, h in headers.items() if h} == {
            s: h for s, h in expected.items() if s in operation["responses"]}


def test_the_client_endpoints_need_a_bearer_token_and_the_document_does_not(document):
    assert document["components"]["securitySchemes"] == {"bearer": {
        "type": "http", "scheme": "bearer",
        "description": "A client's token, from the server's clients file (only its SHA-256 is "
                       "kept there)."}}
    security = {operation_id: document["paths"][path][method].get("security")
                for (method, path), operation_id in OPERATIONS.items()}
    assert security == {"getSubscriber": [{"bearer": []}], "listMigrations": [{"bearer": []}],
                        "createMigration": [{"bearer": []}], "feedConsumption": [{"bearer": []}],
                        "openapi": None,
                        "getProblemType": None}


def test_a_migration_needs_its_idempotency_key_and_a_json_body(document):
    operation = document["paths"]["/api/v1/subscribers/{msisdn}/migrations"]["post"]
    header = next(p for p in operation["parameters"] if p["in"] == "header")
    assert (header["name"], header["required"]) == ("Idempotency-Key", True)
    assert operation["requestBody"] == {"content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/MigrationRequest"}}}, "required": True}
    body = document["components"]["schemas"]["MigrationRequest"]
    assert (body["required"], body["additionalProperties"]) == (["profile"], False)


def test_the_models_name_what_the_rules_name():
    profiles = typing.get_args(SubscriberPage.model_fields["profile"].annotation)
    assert list(profiles) == [profile.title for profile in PROFILES_IN_ORDER]
    assert Offer.model_fields["reason"].annotation is Reason
    assert Migration.model_fields["channel"].annotation is Channel
    refusals = {reason.value for reason in Reason} - {"approved", "unknown_subscriber"}
    assert {reason.value for reason in RefusalReason} == refusals | {"idempotency_key_reused"}


def answer(status: int, body: object, media_type: str = "application/json") -> TestResponse:
    response = Response(json.dumps(body), status, mimetype=media_type)
    request = EnvironBuilder(path="/api/v1/subscribers/+2250700000001").get_request()
    return TestResponse(response.response, response.status, response.headers, request=request)


@pytest.mark.parametrize(("status", "body", "media_type"), [
    (200, {"msisdn": "+2250700000001"}, "application/json"),  # fields missing
    (418, {}, "application/json"),  # an undocumented status
    (404, {"type": "about:blank", "title": "x", "status": 404, "detail": "x"},
     "application/json"),  # a problem as plain JSON
    (200, {}, "text/html"),  # never HTML
])
def test_the_check_of_every_answer_catches_one_the_document_does_not_describe(
        document, api_document, status, body, media_type):
    with pytest.raises((AssertionError, FailureGroup)):
        check_against_document(document, api_document, "GET",
                               "/api/v1/subscribers/+2250700000001",
                               answer(status, body, media_type))


@given(number=from_regex(MSISDN_PATH_PATTERN, fullmatch=True))
def test_every_number_the_document_allows_in_a_path_is_read(number):
    assert normalize_msisdn(number).startswith("+2250")
