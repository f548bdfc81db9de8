"""A real OpenID Connect provider for the sign-in tests: ``oidc-provider-mock`` (PyPI).

It is a complete provider (discovery, authorization endpoint with a sign-in form, token
endpoint, RS256-signed ID tokens, JWKS, userinfo, dynamic client registration) served over
HTTP by werkzeug in a thread on a free port. Our client is registered like a real one (RFC
7591), so the provider checks its secret and redirect URI.

The package does not check PKCE itself; ``_PkceGate`` in front of it does what a real provider
does: it remembers each code's ``code_challenge`` and refuses a token request whose
``code_verifier`` does not hash to it (RFC 7636, S256 only). ``verified`` counts the codes
redeemed with a matching verifier, so a test can tell the client really used PKCE.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import oidc_provider_mock
import werkzeug.serving

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


@dataclass
class Provider:
    issuer: str
    client_id: str
    client_secret: str
    verified: list[str] = field(default_factory=list)

    def set_user(self, sub: str, claims: dict[str, Any]) -> None:
        httpx.put(f"{self.issuer}/users/{sub}", json=claims, timeout=10).raise_for_status()


class _PkceGate:
    def __init__(self, app: Any, verified: list[str]) -> None:
        self.app = app
        self.verified = verified
        self.challenges: dict[str, str] = {}  # code → code_challenge
        self.lock = threading.Lock()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/oauth2/authorize" and environ["REQUEST_METHOD"] == "POST":
            return self._authorize(environ, start_response)
        if path == "/oauth2/token":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            if form.get("grant_type") == "authorization_code":
                with self.lock:
                    challenge = self.challenges.pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "")
                digest = hashlib.sha256(verifier.encode()).digest()
                expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
                if challenge is None or not verifier or expected != challenge:
                    return _json(start_response, "400 Bad Request", {"error": "invalid_grant"})
                self.verified.append(form["code"])
        return self.app(environ, start_response)  # type: ignore[no-any-return]

    def _authorize(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return _json(start_response, "400 Bad Request", {"error": "invalid_request"})

        def remember(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            for name, value in headers:
                if name.lower() == "location":
                    code = parse_qs(urlsplit(value).query).get("code", [""])[0]
                    if code:
                        with self.lock:
                            self.challenges[code] = query["code_challenge"]
            return start_response(status, headers, *rest)

        return self.app(environ, remember)  # type: ignore[no-any-return]


def _json(start_response: StartResponse, status: str, doc: dict[str, str]) -> list[bytes]:
    body = json.dumps(doc).encode()
    start_response(status, [("Content-Type", "application/json")])
    return [body]


@contextmanager
def running_provider(redirect_uri: str) -> Iterator[Provider]:
    """Start the provider on a free port, register our client, stop the provider after."""
    verified: list[str] = []
    flask_app = oidc_provider_mock.app(require_client_registration=True, require_nonce=True)
    server = werkzeug.serving.make_server(
        "localhost", 0, _PkceGate(flask_app, verified), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        issuer = f"http://localhost:{server.server_port}"
        registered = httpx.post(
            f"{issuer}/oauth2/clients", json={"redirect_uris": [redirect_uri]}, timeout=10
        )
        registered.raise_for_status()
        doc = registered.json()
        yield Provider(issuer, doc["client_id"], doc["client_secret"], verified)
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
