"""GET /report: every open launch on one page (issue 13), for staff with the API key."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from launch.receiver.auth import staff_key_page
from launch.receiver.pages import new_nonce, page_response, render_portfolio
from launch.receiver.state import ReceiverState, get_state

router = APIRouter()


@router.get("/report")
async def portfolio_report(request: Request, _: None = Depends(staff_key_page),
                           state: ReceiverState = Depends(get_state)):
    nonce = new_nonce()
    page = await run_in_threadpool(render_portfolio, state.res, nonce)
    request.scope["weapp_reason"] = "report"
    return page_response(page, 200, nonce, images=True)
