"""The API documentation (Swagger UI at ``/docs``), served with no internet access.

FastAPI's own ``/docs`` loads Swagger UI from a CDN. Here the page is FastAPI's (``get_swagger_ui_html``) pointed at
Swagger UI's JavaScript, CSS and icon from the ``fastapi-offline`` package, mounted under ``/static``. Each page gets
a Content-Security-Policy allowing exactly what it needs: scripts, styles and images from this origin (Swagger UI's
CSS inlines its icons as ``data:`` images), ``fetch`` to this origin (``/openapi.json`` and "Try it out"), and the
page's one inline script by its SHA-256 hash (computed from the generated page, so a FastAPI upgrade that changes the
script changes the hash with it). No ``'unsafe-inline'``, no ``'unsafe-eval'``. ReDoc is not served (its bundle
injects styles and workers that would need a looser policy).
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Final

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

DOCS_PATH: Final = "/docs"
OAUTH2_REDIRECT_PATH: Final = "/docs/oauth2-redirect"
STATIC_PATH: Final = "/static"
ASSETS_PACKAGE: Final = ("fastapi_offline", "static")
SWAGGER_JS: Final = "swagger-ui-bundle.js"
SWAGGER_CSS: Final = "swagger-ui.css"
FAVICON: Final = "favicon.png"
# nothing the page asks for leaves this server: no online validator badge
SWAGGER_UI_PARAMETERS: Final = {"validatorUrl": None}

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def inline_script_hashes(html: str) -> list[str]:
    """CSP source expressions (``'sha256-...'``) of every inline ``<script>`` of ``html``."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    ]


def docs_csp(html: str) -> str:
    """The Content-Security-Policy of the Swagger UI page ``html``."""
    scripts = " ".join(["'self'", *inline_script_hashes(html)])
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


def redirect_csp(html: str) -> str:
    """The Content-Security-Policy of the OAuth2 redirect page ``html`` (its inline script only)."""
    scripts = " ".join(inline_script_hashes(html)) or "'none'"
    return f"default-src 'none'; script-src {scripts}; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def install(app: FastAPI) -> None:
    """Serve ``/docs``, ``/docs/oauth2-redirect`` and the assets under ``/static`` on ``app`` (built with
    ``docs_url=None, redoc_url=None``)."""
    app.mount(STATIC_PATH, StaticFiles(packages=[ASSETS_PACKAGE]), name="static")
    pages: dict[str, tuple[bytes, str]] = {}  # by root path (a proxy's prefix): the page and its policy

    def page(root: str) -> tuple[bytes, str]:
        known = pages.get(root)
        if known is None:
            static = root + STATIC_PATH
            html = get_swagger_ui_html(
                openapi_url=root + (app.openapi_url or "/openapi.json"),
                title=app.title + " - Swagger UI",
                swagger_js_url=f"{static}/{SWAGGER_JS}",
                swagger_css_url=f"{static}/{SWAGGER_CSS}",
                swagger_favicon_url=f"{static}/{FAVICON}",
                oauth2_redirect_url=root + OAUTH2_REDIRECT_PATH,
                init_oauth=app.swagger_ui_init_oauth,
                swagger_ui_parameters={**SWAGGER_UI_PARAMETERS, **(app.swagger_ui_parameters or {})},
            ).body
            known = pages[root] = (bytes(html), docs_csp(bytes(html).decode()))
        return known

    redirect = bytes(get_swagger_ui_oauth2_redirect_html().body)
    redirect_policy = redirect_csp(redirect.decode())

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> Response:
        html, policy = page(str(request.scope.get("root_path", "")).rstrip("/"))
        return HTMLResponse(html, headers={"content-security-policy": policy})

    @app.get(OAUTH2_REDIRECT_PATH, include_in_schema=False)
    async def swagger_ui_redirect() -> Response:
        return HTMLResponse(redirect, headers={"content-security-policy": redirect_policy})
