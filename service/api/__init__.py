"""The HTTP side of LabSentinel: /metrics, health, the JSON API and the clinician web pages.

Stack: FastAPI on Starlette, served by uvicorn inside the daemon's event loop.

- Starlette is the ASGI toolkit underneath (routing, forms, static files, Jinja2 templates,
  test transport); uvicorn is its reference server and can be driven from our own loop
  (``uvicorn.Server(config).serve()`` with signal handling left to the daemon).
- FastAPI adds what the JSON API needs and Starlette alone does not give: an
  OpenAPI document generated from the same typed models that validate requests, and the
  bearer security scheme declared once as a dependency. It is maintained by the same
  ecosystem (it *is* Starlette plus pydantic, which the settings already use), so it costs
  one small package, not a second framework.
- Database work is synchronous SQLAlchemy; endpoints that touch the database are plain
  ``def`` functions, which FastAPI runs in its worker threads so the consumer and dispatcher
  sharing the loop never wait on a query.

Modules: ``context`` (what the routes need), ``app`` (the factory), ``auth`` (bearer tokens,
session cookie), ``views`` (read models, one module per page or resource), ``api_routes``
(JSON), ``web_routes`` (pages), ``chart`` (SVG), ``server`` (the daemon component). Imports
run one way: app → routes → views → context.
"""

from service.api.app import create_app
from service.api.context import ApiContext, Readiness

__all__ = ["ApiContext", "Readiness", "create_app"]
