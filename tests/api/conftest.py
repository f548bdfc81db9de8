from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from service.api import create_app
from tests.api.story import TOKEN, Story


@pytest.fixture
async def client(story: Story) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(story.context))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}
