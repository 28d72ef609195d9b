"""The body-size limit as a FastAPI dependency: refused above WEAPP_LAUNCH_MAX_BODY_BYTES by
its Content-Length and by the bytes that actually arrive (a lying or absent length too)."""

from __future__ import annotations

import re

from fastapi import Depends, Request

from launch.receiver.errors import Refused
from launch.receiver.state import ReceiverState, get_state
from launch.wechat.errors import TOO_LARGE

CONTENT_LENGTH = re.compile(r"[0-9]{1,12}")  # ASCII digits only: str.isdigit() takes "²" and "１"


async def read_capped(request: Request, limit: int) -> bytes:
    """The body, refused above `limit` bytes by its Content-Length and by what actually arrives."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not CONTENT_LENGTH.fullmatch(declared):
            raise Refused(400, "bad-content-length", "Content-Length 无效 / Content-Length is not a number")
        if int(declared) > limit:
            raise Refused(413, TOO_LARGE, f"消息体过大 / body larger than {limit} bytes")
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise Refused(413, TOO_LARGE, f"消息体过大 / body larger than {limit} bytes")
    return bytes(buf)


async def capped_body(request: Request, state: ReceiverState = Depends(get_state)) -> bytes:
    """FastAPI dependency: the request body, at most settings.max_body_bytes."""
    return await read_capped(request, state.settings.max_body_bytes)


async def json_only(request: Request) -> None:
    """FastAPI dependency: a staff POST is `application/json` (UTF-8 if a charset is named);
    anything else is 415. A cross-site HTML form can only send form or text bodies, so this
    also keeps them out."""
    from launch.receiver.errors import UNSUPPORTED_MEDIA_TYPE

    value = request.headers.get("content-type") or ""
    media, _, params = value.partition(";")
    charset = ""
    for param in params.split(";"):
        name, _, val = param.strip().partition("=")
        if name.strip().lower() == "charset":
            charset = val.strip().strip('"').lower()
    if media.strip().lower() != "application/json" or charset not in ("", "utf-8"):
        raise Refused(415, UNSUPPORTED_MEDIA_TYPE,
                      "请求体必须是 application/json / the body must be sent as application/json")
