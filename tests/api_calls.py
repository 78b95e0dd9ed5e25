"""The HTTP API as its clients call it, every answer checked against the API's own OpenAPI
document: its status documented for the operation, its media type the one documented for that
status, its body valid against that schema (schemathesis' response validation, jsonschema
underneath), and any answer under /api/ a JSON or problem document, never HTML.

The tests' API clients are written to a clients file as an operator writes one (token digests
only); ``API_TOKENS`` holds their tokens.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path

import schemathesis

# name: token, scopes, channel, rate limit (None: none)
API_CLIENTS = {
    "portal": ("portal-token-4f1c9a2e", ["subscribers:read", "migrations:write"], "web", None),
    "mobile": ("mobile-token-8b2e7d51", ["subscribers:read", "migrations:write"], "app", None),
    "care": ("care-token-6d0a3f97", ["subscribers:read", "migrations:write",
                                     "consumption:write"], "care", None),
    "reader": ("reader-token-2c9e5180", ["subscribers:read"], "web", None),
    "writer": ("writer-token-0a7c33d4", ["migrations:write"], "web", None),
    "limited": ("limited-token-7e4b08f2", ["subscribers:read", "migrations:write"], "web",
                "3/minute"),
}
API_TOKENS = {name: spec[0] for name, spec in API_CLIENTS.items()}


def write_clients_file(path: Path, clients: dict = API_CLIENTS) -> Path:
    """A clients file as an operator writes it: each client's token kept as its SHA-256."""
    tables = []
    for name, (token, scopes, channel, rate_limit) in clients.items():
        table = (f"[clients.{name}]\n"
                 f'token_sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"\n'
                 f"scopes = [{', '.join(f'{s!r}' for s in scopes)}]\n"
                 f'channel = "{channel}"\n')
        if rate_limit:
            table += f'rate_limit = "{rate_limit}"\n'
        tables.append(table)
    path.write_text("\n".join(tables))
    return path


@cache
def _schema(document_text: str):
    import json

    return schemathesis.openapi.from_dict(json.loads(document_text))


def _operation_of(document: dict, method: str, path: str) -> tuple[str, dict] | None:
    """The document's operation answering ``method path`` (its template and definition)."""
    for template, operations in document["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in operations:
            return template, operations[method.lower()]
    return None


def check_against_document(document: dict, document_text: str, method: str, path: str,
                           response) -> None:
    """Fail unless ``response`` to ``method path`` is what the document says it can be."""
    media_type = response.mimetype
    if path.startswith("/api/"):
        assert media_type in ("application/json", "application/problem+json"), (
            f"{method} {path}: {response.status_code} {media_type}")
    found = _operation_of(document, method, path)
    if found is None:  # no operation: a path or method of no route, answered about:blank
        assert media_type == "application/problem+json"
        assert response.get_json()["type"] == "about:blank"
        return
    template, operation = found
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, (
        f"{method} {template}: {response.status_code} not in the document "
        f"({', '.join(operation['responses'])})")
    assert media_type in documented.get("content", {}), (
        f"{method} {template} {response.status_code}: {media_type} not documented")
    _schema(document_text)[template][method.upper()].validate_response(response)


class ApiCaller:
    """A Flask test client calling the API as a named client (``API_TOKENS``), every answer
    checked against the document (``check_against_document``)."""

    def __init__(self, test_client, document_text: str):
        import json

        self.http = test_client
        self.document_text = document_text
        self.document = json.loads(document_text)

    def call(self, method: str, path: str, client: str | None = "portal",
             headers: dict | None = None, **options):
        """``method path`` as ``client`` (None: no Authorization header)."""
        sent = dict(headers or {})
        if client is not None:
            sent.setdefault("Authorization", f"Bearer {API_TOKENS[client]}")
        response = self.http.open(path, method=method, headers=sent, **options)
        check_against_document(self.document, self.document_text, method, path.split("?")[0],
                               response)
        return response

    def get(self, path: str, client: str | None = "portal", **options):
        return self.call("GET", path, client, **options)

    def migrate(self, msisdn: str, profile, key: str | None = "key-1",
                client: str | None = "portal", headers: dict | None = None, **options):
        """POST a migration request of ``profile`` (a JSON body ``{"profile": ...}`` unless
        ``options`` give another) under the idempotency ``key`` (None: no header)."""
        sent = dict(headers or {})
        if key is not None:
            sent["Idempotency-Key"] = key
        if "data" not in options and "json" not in options:
            options["json"] = {"profile": profile}
        return self.call("POST", f"/api/v1/subscribers/{msisdn}/migrations", client, sent,
                         **options)
