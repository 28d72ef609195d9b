"""One safe log line per request, and a 500 of our own for anything unexpected."""

from __future__ import annotations

import json
import logging
import time

log = logging.getLogger("weapp_launch.api")


class LogMiddleware:
    """One safe log line per request: method, path (never the query), status, reason, ms."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:  # noqa: BLE001 - answer 500 ourselves: no traceback with SQL parameters in logs
            log.error("internal error on %s: %s", scope.get("path", "")[:120], type(exc).__name__)
            if not status.get("started"):
                status["code"] = 500
                body = json.dumps({"error": "internal",
                                   "message": "服务器内部错误，请稍后重试 / internal error, try again later"},
                                  ensure_ascii=False).encode("utf-8")
                await send({"type": "http.response.start", "status": 500,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
        finally:
            if log.isEnabledFor(logging.INFO):
                path = scope.get("path", "")
                if path.startswith("/gates/") or path.startswith("/wechat/"):
                    path = path[:120]
                log.info(
                    "%s %s %s %s %.1fms",
                    scope.get("method"),
                    path.encode("unicode_escape").decode("ascii"),
                    status["code"],
                    scope.get("weapp_reason", "-"),
                    (time.perf_counter() - start) * 1000,
                )
