"""The OpenAPI document of the customer and operator APIs (served by sanic-ext at
/docs/openapi.json).

Every route behind @auth.customer (or the operator API's @operator) is marked as
needing the bearer token, so the document says which calls need a login without
each handler repeating it. Every route that reads a JSON body declares its schema
with @body (tests/security/test_api_fuzz.py checks both, and fuzzes from them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SCHEME = "bearer"


def describe_api() -> None:
    try:
        from sanic_ext.extensions.openapi.builders import SpecificationBuilder
    except ImportError:  # sanic-ext missing: the portal still runs, without /docs
        return
    spec = SpecificationBuilder()
    spec.describe("ispedge customer API", version="1",
                  description="JSON in and out under /customer/api/. Log in with POST "
                              "/customer/api/login, then send `Authorization: Bearer <token>`. "
                              "Every call acts on the token's own subscriber only.")
    spec.add_security_scheme(SCHEME, "http", scheme="bearer", bearer_format="JWT",
                             description="the token from POST /customer/api/login")


def obj(required: tuple[str, ...] = (), **properties: dict[str, Any]) -> dict[str, Any]:
    """A JSON object schema: obj(("a",), a=STRING) -> {"type": "object", ...}."""
    return {"type": "object", "properties": properties, "required": list(required)}


STRING: dict[str, Any] = {"type": "string"}
INTEGER: dict[str, Any] = {"type": "integer"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}


def body(schema: dict[str, Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare the JSON body a handler reads. Put it above @auth.customer / @operator
    (it must mark the handler the router registers)."""
    def mark(handler: Callable[..., Any]) -> Callable[..., Any]:
        try:
            from sanic_ext.extensions.openapi.builders import OperationStore
        except ImportError:
            return handler
        OperationStore()[handler].body({"application/json": schema}, required=True)
        return handler

    return mark


def secured(handler: Callable[..., Any]) -> Callable[..., Any]:
    try:
        from sanic_ext.extensions.openapi.builders import OperationStore
    except ImportError:
        return handler
    OperationStore()[handler].secured(SCHEME)
    return handler


def operation(summary: str, description: str, body: dict[str, Any] | None = None,
              responses: dict[int, str] | None = None
              ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Describe a route in the OpenAPI document: summary, description, JSON body schema
    and the statuses it answers. Put it right under the route decorator (it documents
    the handler the route registers)."""
    def mark(handler: Callable[..., Any]) -> Callable[..., Any]:
        try:
            from sanic_ext.extensions.openapi.builders import OperationStore
        except ImportError:
            return handler
        op = OperationStore()[handler]
        op.describe(summary, description)
        if body is not None:
            op.body({"application/json": body}, required=True)
        for status, text in (responses or {}).items():
            op.response(status, {"application/json": {"type": "object"}}, text)
        return handler
    return mark
