from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from service.api import create_app
from tests.api.story import TOKEN, Story, build_story


@pytest.fixture
def story(sqlite_url: str, tmp_path: Path) -> Iterator[Story]:
    built = build_story(sqlite_url, tmp_path)
    try:
        yield built
    finally:
        built.app.close()


@pytest.fixture
async def client(story: Story) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(story.context))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}
