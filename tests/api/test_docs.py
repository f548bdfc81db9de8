"""The API's description is public and self-contained: /openapi.json and a script-free /docs."""

from __future__ import annotations

import re

import httpx

from tests.api.story import ACK_SECRET, TOKEN


async def test_openapi_document_is_public_and_holds_no_secret(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert "/api/v1/dead-letters/reprocess" in document["paths"]
    assert "/api/v1/alerts/{alert_id}/ack" in document["paths"]
    assert TOKEN not in response.text and ACK_SECRET not in response.text


async def test_docs_page_lists_every_operation_without_scripts(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    page = await client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text.lower()
    external = [u for u in re.findall(r'(?:src|href)="([^"]+)"', page.text) if "//" in u]
    assert external == [], "nothing loaded from another site"
    for path, item in document["paths"].items():
        for method in item:
            assert f"<strong>{method.upper()}</strong> <code>{path}</code>" in page.text
