"""The OpenAPI document says how to authenticate and which problem responses each operation really gives.

:func:`document` completes FastAPI's generated document from the access table (``gateway/access.py``
:data:`~smart_trader.gateway.access.ROUTES`, one :class:`~smart_trader.gateway.access.Rule` per method and path
template), so the document and the checks the gateway runs come from the same place:

- the two credential schemes (OAuth2 password flow with bearer tokens, and the ``X-API-Key`` header), required by
  every operation whose rule is not public; public operations (registration, login, health...) require none;
- 401 on every non-public operation; 403 where not every role may call it; 404 where the path names an account or
  another resource (path parameters); 400 (unparsable) and 413 (``MAX_BODY_BYTES``) where there is a request body;
  422 where there is a body or parameters to validate; 429 for every rate-limit class except the operational
  routes; and any 4xx the route declares itself (a 409, ``/metrics``' 401/403, a public route's own 401 or 404);
- every one of them as ``application/problem+json`` with the shared ``Problem`` schema (RFC 9457: ``type``,
  ``title``, ``status``, ``detail``, ``instance``; validation problems add ``errors``), which replaces FastAPI's
  ``HTTPValidationError``.
"""

from __future__ import annotations

import json
from typing import Any, Final

from fastapi import FastAPI

from smart_trader.gateway.access import ALL_ROLES, rule_for
from smart_trader.gateway.problems import PROBLEM_JSON

TOKEN_URL: Final = "/api/v1/auth/token"
SECURITY_SCHEMES: Final[dict[str, Any]] = {
    "OAuth2PasswordBearer": {"type": "oauth2", "flows": {"password": {"tokenUrl": TOKEN_URL, "scopes": {}}}},
    "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
SECURITY: Final[list[dict[str, list[str]]]] = [{"OAuth2PasswordBearer": []}, {"APIKeyHeader": []}]
PROBLEM_REF: Final = "#/components/schemas/Problem"
PROBLEM_SCHEMAS: Final[dict[str, Any]] = {
    "Problem": {
        "title": "Problem",
        "description": "An error, as RFC 9457 problem details (application/problem+json).",
        "type": "object",
        "required": ["type", "title", "status", "detail", "instance"],
        "properties": {
            "type": {"type": "string", "description": "a URI naming the kind of problem"},
            "title": {"type": "string", "description": "the status's short name"},
            "status": {"type": "integer", "description": "the HTTP status"},
            "detail": {"type": "string", "description": "what was wrong, in words"},
            "instance": {"type": "string", "description": "the request's path"},
            "errors": {
                "type": "array",
                "description": "validation problems only: each invalid field",
                "items": {"$ref": "#/components/schemas/ProblemFieldError"},
            },
        },
    },
    "ProblemFieldError": {
        "title": "ProblemFieldError",
        "type": "object",
        "required": ["loc", "msg", "type"],
        "properties": {
            "loc": {"type": "array", "items": {"type": "string"}, "description": "where: body, query, path..."},
            "msg": {"type": "string"},
            "type": {"type": "string"},
        },
    },
}
DESCRIPTIONS: Final = {
    "400": "Bad request: the body could not be parsed as its content type",
    "401": "Not authenticated: no credentials, or an invalid, expired or revoked token or API key",
    "403": "Forbidden: none of the caller's roles may use this operation",
    "404": "Not found: no such resource, or not one the caller may see (existence is not revealed)",
    "413": "Payload too large: the request body is over the server's MAX_BODY_BYTES",
    "422": "Unprocessable content: invalid fields (``errors`` lists each), or a rule the request breaks",
    "429": "Too many requests: over a rate limit; Retry-After says when to try again",
}
RETRY_AFTER: Final = {
    "Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "integer"}},
}
_REPLACED_SCHEMAS: Final = ("HTTPValidationError", "ValidationError")
_METHODS: Final = frozenset({"get", "put", "post", "delete", "patch", "options", "head", "trace"})


def document(app: FastAPI) -> None:
    """Make ``app.openapi()`` return FastAPI's document completed by :func:`annotate` (built once, then cached)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        annotate(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def annotate(schema: dict[str, Any]) -> None:
    """Add the security schemes and requirements and the problem responses (module docstring) to ``schema``, an
    OpenAPI document FastAPI generated, in place. Operations without an access rule are left as they are
    (:func:`~smart_trader.gateway.access.check_routes` keeps such routes from being served)."""
    components = schema.setdefault("components", {})
    components["securitySchemes"] = SECURITY_SCHEMES
    components.setdefault("schemas", {}).update(PROBLEM_SCHEMAS)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            rule = rule_for(method.upper(), path)
            if rule is None:
                continue
            if rule.public:
                operation.pop("security", None)
            else:
                operation["security"] = SECURITY
            responses: dict[str, Any] = operation.setdefault("responses", {})
            has_body = "requestBody" in operation
            has_params = bool(operation.get("parameters"))
            wanted = {
                "400": has_body,
                "401": not rule.public,
                "403": not rule.public and rule.allowed != ALL_ROLES,
                "404": rule.account or rule.own_resource or "{" in path,
                "413": has_body,
                "422": has_body or has_params or "422" in responses,
                "429": rule.rate != "ops",
            }
            for status, needed in wanted.items():
                if needed:
                    responses.setdefault(status, {"description": DESCRIPTIONS[status]})
            for status, response in responses.items():
                if status.startswith("4"):
                    _as_problem(status, response)
    _drop_unused(components["schemas"], schema)


def _as_problem(status: str, response: dict[str, Any]) -> None:
    if response.get("description") in (None, "", "Validation Error"):
        response["description"] = DESCRIPTIONS.get(status, "Problem")
    response["content"] = {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
    if status == "429":
        response.setdefault("headers", {}).update(RETRY_AFTER)


def _drop_unused(schemas: dict[str, Any], document: dict[str, Any]) -> None:
    """Remove FastAPI's validation-error schemas once nothing refers to them any more (the first refers to the
    second, so in that order)."""
    for name in _REPLACED_SCHEMAS:
        if name in schemas and f'"#/components/schemas/{name}"' not in json.dumps(document):
            del schemas[name]
