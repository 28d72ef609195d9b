"""Refusals: 4xx answers {"error": reason_code, "message": "中文 / English"} that change nothing.

Routes and dependencies raise `Refused`; `install_handlers` answers it (and FastAPI's own 404,
405 and validation errors) in that shape, and records the reason code for the log line. A
refusal on a page a person opens (`PageRefused`) is answered as an HTML page instead.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from launch.wechat.errors import BAD_APPID, BAD_SIGNATURE, STALE_TIMESTAMP, TOO_LARGE, UNDECRYPTABLE, PushRejected

# Staff-route refusals of ours (the link module's codes come from launch.app.links).
TOKEN_IN_QUERY = "token-in-query"
UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type"

# Refusals of the push routes that are ours, not the protocol module's.
PLAINTEXT_REFUSED = "plaintext-refused"
APPID_MISMATCH = "appid-mismatch"
REPLAYED = "replayed-nonce"

_STATUS_BY_REASON = {
    TOO_LARGE: 413,
    BAD_SIGNATURE: 401,
    STALE_TIMESTAMP: 401,
    BAD_APPID: 403,
    UNDECRYPTABLE: 400,
}


class Refused(Exception):
    """A refusal answered as {"error": code, "message": "中文 / English"} with a 4xx status."""

    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


class PageRefused(Exception):
    """A refusal on a page a person opens: answered with an HTML error page (launch.receiver.pages)."""

    def __init__(self, refused: Refused, title: str | None = None, *, www_authenticate: bool = False):
        super().__init__(refused.code)
        self.refused = refused
        self.title = title
        self.www_authenticate = www_authenticate


def from_push(exc: PushRejected) -> Refused:
    return Refused(_STATUS_BY_REASON.get(exc.reason_code, 400), exc.reason_code, exc.message)


def replayed() -> Refused:
    return Refused(409, REPLAYED, "nonce 或签名已使用过 / nonce or signature already seen: replay refused")


def refusal(request: Request, status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    request.scope["weapp_reason"] = code
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status,
                        headers={"Cache-Control": "no-store"})


def install_handlers(app: FastAPI) -> None:
    from launch.receiver.pages import error_page

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused):
        return refusal(request, exc.status, exc.code, exc.message, **exc.extra)

    @app.exception_handler(PageRefused)
    async def _page_refused(request: Request, exc: PageRefused):
        request.scope["weapp_reason"] = exc.refused.code
        response = error_page(exc.refused.message, exc.refused.status, exc.title)
        if exc.www_authenticate:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        codes = {404: ("not-found", "没有这个地址 / no such route"),
                 405: ("method-not-allowed", "不支持的请求方法 / method not allowed")}
        code, message = codes.get(exc.status_code, ("http-error", "请求无效 / invalid request"))
        return refusal(request, exc.status_code, code, message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return refusal(request, 400, "bad-request", "请求无效 / invalid request")
