"""The API's description, public: ``/openapi.json`` and a plain ``/docs`` page.

The OpenAPI document describes routes, parameters and models; it holds no secret, no patient
data and no configuration, so it needs no sign-in (the routes it describes still do, and say
which role). ``/docs`` lists the same operations as server-rendered HTML: the usual
interactive pages (Swagger UI, ReDoc) load their scripts from a CDN, which a hospital network
may block and which the pages' Content-Security-Policy forbids.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from service.api.web_routes import render

router = APIRouter(include_in_schema=False)

METHODS = ("get", "post", "put", "patch", "delete")


@router.get("/openapi.json")
def openapi_document(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


def operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per (path, method), grouped by tag in the order of the document."""
    found = []
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = [
                {
                    "name": p.get("name", ""),
                    "where": p.get("in", ""),
                    "required": bool(p.get("required")),
                    "description": p.get("description", ""),
                }
                for p in op.get("parameters", [])
            ]
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            ref = body.get("schema", {}).get("$ref", "")
            found.append(
                {
                    "tag": (op.get("tags") or ["other"])[0],
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "parameters": params,
                    "body": ref.rsplit("/", 1)[-1] if ref else "",
                }
            )
    found.sort(key=lambda o: o["tag"])
    return found


@router.get("/docs")
def docs_page(request: Request) -> Response:
    document = request.app.openapi()
    return render(
        request,
        "docs.html",
        {"info": document.get("info", {}), "operations": operations(document)},
    )
