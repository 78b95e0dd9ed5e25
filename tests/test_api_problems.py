"""Every error of the API is an RFC 9457 problem (ussd/api/problems.py): paths and methods no
route takes, the API off, a store out of reach, a bug; and each problem type described where
its ``type`` points."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from api_calls import API_TOKENS, ApiCaller
from conftest import ALICE

from ussd.api.problems import PROBLEM_TYPES
from ussd.web import create_app

NOT_FOUND = {"type": "about:blank", "title": "Not Found", "status": 404,
             "detail": "The requested URL was not found on the server. If you entered the URL "
                       "manually please check your spelling and try again."}


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/", "/api/v2/subscribers/0700000001",
                                  "/api/v1/subscribers/", "/api/v1/subscribers/a/b/c",
                                  "/api/v1/subscribers/%2F"])
def test_a_path_of_no_route_is_a_404_problem(api, path):
    response = api.get(path)
    assert (response.status_code, response.mimetype) == (404, "application/problem+json")
    assert response.get_json() == NOT_FOUND


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("DELETE", f"/api/v1/subscribers/{ALICE}", "GET, HEAD"),
    ("PUT", f"/api/v1/subscribers/{ALICE}/migrations", "GET, HEAD, POST"),
    ("OPTIONS", f"/api/v1/subscribers/{ALICE}/migrations", "GET, HEAD, POST"),
    ("POST", "/api/v1/openapi.json", "GET, HEAD"),
])
def test_a_method_no_route_takes_is_a_405_problem_with_allow(api, method, path, allowed):
    response = api.call(method, path)
    assert (response.status_code, response.headers["Allow"]) == (405, allowed)
    assert response.get_json() == {"type": "about:blank", "title": "Method Not Allowed",
                                   "status": 405,
                                   "detail": "The method is not allowed for the requested URL."}


@pytest.mark.parametrize(("method", "path", "status", "allow"), [
    ("GET", "/nope", 404, None),
    ("GET", "/ussd/hubtel/x/y", 404, None),
    ("GET", "/ussd/africastalking", 405, "OPTIONS, POST"),
    ("POST", "/ussd/flares", 405, "GET, HEAD, OPTIONS"),
])
def test_other_paths_no_route_takes_get_one_plain_line(client, method, path, status, allow):
    """Not problems (those are the API's), nor an HTML page: a gateway's log or an engineer's
    curl reads it."""
    response = client.open(path, method=method)
    assert (response.status_code, response.mimetype) == (status, "text/plain")
    assert response.headers.get("Allow") == allow
    assert response.get_data(as_text=True) == {
        404: "404 Not Found: The requested URL was not found on the server. If you entered "
             "the URL manually please check your spelling and try again.\n",
        405: "405 Method Not Allowed: The method is not allowed for the requested URL.\n",
    }[status]


def test_with_no_clients_the_api_is_off_and_says_404(client, caplog, settings, redis_client):
    for path in (f"/api/v1/subscribers/{ALICE}", "/api/v1/openapi.json"):
        response = client.get(path, headers={"Authorization": "Bearer anything"})
        assert (response.status_code, response.get_json()) == (404, NOT_FOUND)
    caplog.set_level(logging.WARNING, logger="ussd.api")
    create_app(settings, redis_client=redis_client)
    assert "api off: no clients (USSD_API_CLIENTS names no file)" in caplog.messages


def test_a_bug_is_a_500_problem_logged_without_its_message(api, api_app, monkeypatch, caplog):
    def broken(msisdn):
        raise RuntimeError(f"no such key ussd:{{{msisdn}}}:sub")

    monkeypatch.setattr(api_app.extensions["ussd.api"].accounts, "page", broken)
    # Not through the document's check: a 500 is no answer the document promises.
    response = api.http.get(f"/api/v1/subscribers/{ALICE}",
                            headers={"Authorization": f"Bearer {API_TOKENS['portal']}"})
    assert (response.status_code, response.get_json()) == (500, {
        "type": "about:blank", "title": "Internal Server Error", "status": 500,
        "detail": "An error on our side; it is logged."})
    line = next(r.getMessage() for r in caplog.records if r.name == "ussd.api")
    assert line.startswith("api GET /api/v1/subscribers/<msisdn> failed: RuntimeError at ")
    assert "broken" in line and ALICE not in line


@pytest.mark.parametrize("name", list(PROBLEM_TYPES))
def test_each_problem_type_is_described_where_its_type_points(api, name):
    kind = PROBLEM_TYPES[name]
    response = api.get(kind.uri, client=None)  # public, as the document is
    assert response.get_json() == {"type": kind.uri, "title": kind.title,
                                   "status": kind.status, "description": kind.description}


def test_an_unknown_problem_type_is_404(api):
    response = api.get("/api/v1/problems/nothing", client=None)
    assert (response.status_code, response.get_json()) == (404, NOT_FOUND)


def test_the_store_out_of_reach_is_a_503_problem_for_every_endpoint(settings, clients_file,
                                                                    api_document):
    from ussd.settings import Settings
    from ussd.store import connect

    dead = connect(Settings(redis_url="redis://127.0.0.1:1/0", redis_timeout=0.2))
    api = ApiCaller(create_app(replace(settings, api_clients=clients_file),
                               redis_client=dead).test_client(), api_document)
    for response in (api.get(f"/api/v1/subscribers/{ALICE}"),
                     api.get(f"/api/v1/subscribers/{ALICE}/migrations"),
                     api.migrate(ALICE, "Tigre")):
        assert (response.status_code, response.headers["Retry-After"]) == (503, "1")
        assert response.get_json()["retry_after"] == 1
