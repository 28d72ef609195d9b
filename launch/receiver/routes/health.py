"""GET /healthz: the store answers, and whether the WeChat push is configured."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from launch.receiver.state import ReceiverState, get_state

router = APIRouter()


@router.get("/healthz")
async def healthz(state: ReceiverState = Depends(get_state)):
    try:
        health = await run_in_threadpool(lambda: state.res.store.health())
    except Exception as exc:  # noqa: BLE001
        return JSONResponse({"ok": False, "store": type(exc).__name__}, status_code=503)
    ok = bool(health.get("ok"))
    return JSONResponse(
        {"ok": ok, "store": {"backend": health.get("backend"), "ok": ok},
         "wechat_configured": state.crypto is not None},
        status_code=200 if ok else 503,
    )
