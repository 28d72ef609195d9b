"""Staff decisions (POST /gates/{launch_id}/{gate}, JSON = the gate's form) and the form page a
signed link opens (GET /gates/{launch_id}/{gate}?token=…)."""

from __future__ import annotations

import functools
import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from launch.app.decisions import DecisionRefused, submit_decision
from launch.receiver.auth import Credentials, link_page, staff_or_link
from launch.receiver.errors import PageRefused, Refused
from launch.receiver.limits import capped_body, json_only
from launch.receiver.pages import new_nonce, page_response, render_gate_form
from launch.receiver.state import ReceiverState, get_state
from launch.wechat.errors import MALFORMED_JSON

router = APIRouter()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _clean_strings(value: Any) -> None:
    """Refuse NUL and unpaired surrogates anywhere in parsed JSON (the store cannot hold them)."""
    todo = [value]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            todo.extend(node.keys())
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
        elif isinstance(node, str):
            if "\x00" in node:
                raise Refused(400, "bad-characters", "值含 NUL 字符 / a value contains a NUL character")
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                raise Refused(400, "bad-characters", "值含无效 Unicode / a value contains invalid Unicode") from None


def parse_form(body: bytes) -> dict:
    """The JSON object of a staff POST, or Refused (400 malformed, 422 not an object)."""
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise Refused(400, MALFORMED_JSON, "JSON 嵌套过深 / JSON nested too deep") from None
    except (ValueError, TypeError):
        raise Refused(400, MALFORMED_JSON, "请求体不是有效的 JSON / body is not valid JSON") from None
    if not isinstance(data, dict):
        raise Refused(422, "invalid-form", "表单必须是 JSON 对象 / the form must be a JSON object",
                      problems=[{"field": "form", "rule": "object-required",
                                 "message": "表单必须是 JSON 对象 / the form must be a JSON object"}])
    _clean_strings(data)
    return data


# credentials (headers only) -> the link's attempt still open -> path -> JSON only -> body (capped)
@router.post("/gates/{launch_id}/{gate}")
async def gate_decision(launch_id: str, gate: str, request: Request,
                        credentials: Credentials = Depends(staff_or_link), _: None = Depends(json_only),
                        body: bytes = Depends(capped_body), state: ReceiverState = Depends(get_state)):
    data = parse_form(body)
    claims = credentials.claims
    try:
        # a link decides the attempt it was issued for, never whichever is current now
        result = await run_in_threadpool(
            functools.partial(submit_decision, state.res, launch_id, gate, data, credentials.channel,
                              attempt=claims.attempt if claims is not None else None)
        )
    except DecisionRefused as exc:
        if any(p.rule == "unknown-launch" for p in exc.problems):
            raise Refused(404, "unknown-launch", "没有这个上线任务 / no such launch") from None
        if any(p.rule == "unknown-gate" for p in exc.problems):
            raise Refused(404, "unknown-gate", "未知的关卡 / unknown gate") from None
        raise Refused(
            422, "invalid-form", "表单未通过校验 / the form was refused",
            problems=[p.model_dump() for p in exc.problems],
        ) from None
    request.scope["weapp_reason"] = f"{credentials.channel}:{result.status}"
    return JSONResponse(
        {
            "status": result.status,
            "attempt": result.attempt,
            "resumed": result.resumed,
            "message": result.message,
            "launch_id": launch_id,
            "gate": gate,
        },
        headers={"Cache-Control": "no-store"},
    )


@router.get("/gates/{launch_id}/{gate}")
async def gate_page(launch_id: str, gate: str, _: Credentials = Depends(link_page),
                    state: ReceiverState = Depends(get_state)):
    store = state.res.store
    launch = await run_in_threadpool(store.get_launch, launch_id)
    if launch is None:
        raise PageRefused(Refused(404, "unknown-launch", "没有这个上线任务 / no such launch"))
    step = await run_in_threadpool(store.latest_step, launch_id, gate)
    nonce = new_nonce()
    return page_response(render_gate_form(state.res, launch, gate, step, nonce), 200, nonce)
