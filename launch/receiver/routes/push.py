"""WeChat's message push: URL verification (GET) and pushes (POST).

A push goes: body capped -> timestamp (plain decimal, inside the window) -> encrypted only
(no msg_signature: refused, unless WEAPP_LAUNCH_WECHAT_ALLOW_PLAINTEXT names a test
platform) -> signature (constant time) -> decrypt (msg_signature first; every later failure
gets one generic answer) -> parse (defusedxml, no entities) -> an app id the message names
must be the one in the path -> ONE transaction (the inbox writer): the nonce AND the
msg_signature are remembered (either seen before refuses the push) and the redacted event
is written to the inbox -> `success`. The applier applies it after the response.
"""

from __future__ import annotations

import asyncio
import hmac

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from launch.app.inbox import SIGNATURE_SCOPE, Landing, take_nonces
from launch.receiver.auth import PushQuery, checked_appid, fresh_query, push_crypto, signature_key, signed
from launch.receiver.errors import APPID_MISMATCH, PLAINTEXT_REFUSED, Refused, from_push, replayed
from launch.receiver.limits import capped_body
from launch.receiver.state import ReceiverState, get_state
from launch.receiver.workers import NONCE_SCOPE
from launch.wechat.crypto import PushCrypto
from launch.wechat.errors import PushRejected
from launch.wechat.events import AuditDelay, AuditFail, AuditSuccess, open_push, parse_event

ECHOSTR_MAX = 512

router = APIRouter()


def _named_appid(event) -> str | None:
    """The mini-program app id a push names in its own body (None for audit events, which name
    the original id; the applier checks those against the path once the launch is found)."""
    for attr in ("appid", "verify_appid", "authorizer_appid"):
        value = getattr(event, attr, None)
        if isinstance(value, str) and value:
            return value
    return None


async def _verify(request: Request, state: ReceiverState, query: PushQuery) -> PlainTextResponse:
    echostr = request.query_params.get("echostr")
    if not echostr or len(echostr) > ECHOSTR_MAX or not echostr.isprintable():
        raise Refused(400, "bad-echostr", "echostr 缺失或格式错误 / echostr missing or malformed")
    # A verification's signature is as replayable as a push's: burn its nonce and signature too.
    entries = [(NONCE_SCOPE, query.nonce), (SIGNATURE_SCOPE, signature_key(request.query_params.get("signature")))]
    if not await run_in_threadpool(take_nonces, state.res, entries, state.nonce_ttl):
        raise replayed()
    return PlainTextResponse(echostr, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


async def _push(request: Request, state: ReceiverState, crypto: PushCrypto, path_appid: str | None, body: bytes,
                query: PushQuery) -> PlainTextResponse:
    timestamp, nonce = query.timestamp, query.nonce
    q = request.query_params
    encrypt_type = q.get("encrypt_type")
    safe_mode = encrypt_type is not None or "msg_signature" in q
    if safe_mode and (encrypt_type or "aes") != "aes":
        raise Refused(400, PLAINTEXT_REFUSED, "encrypt_type 只能是 aes / encrypt_type must be 'aes'")
    if not safe_mode and not state.settings.wechat_allow_plaintext:
        # A plaintext push is signed by `signature` alone, which covers no body: one seen
        # anywhere (a verification GET, a log) could carry any event. WeChat's third-party
        # platform always encrypts.
        raise Refused(400, PLAINTEXT_REFUSED, "只接受加密推送：缺少 msg_signature / only encrypted pushes are "
                      "accepted: msg_signature and encrypt_type=aes are required")
    try:
        if safe_mode:
            if "signature" in q:  # WeChat sends it too; when present it must match
                crypto.verify_signature(q.get("signature"), timestamp, nonce)
            opened = open_push(body, crypto, msg_signature=q.get("msg_signature"), timestamp=timestamp, nonce=nonce)
            event, envelope_id = opened.event, opened.envelope_id
            signed_by = q.get("msg_signature")
        else:  # a test platform, by WEAPP_LAUNCH_WECHAT_ALLOW_PLAINTEXT only
            crypto.verify_signature(q.get("signature"), timestamp, nonce)
            event, envelope_id = parse_event(body), None
            signed_by = q.get("signature")
    except PushRejected as exc:
        raise from_push(exc) from None
    if (
        envelope_id
        and isinstance(event, (AuditSuccess, AuditFail, AuditDelay))
        and not hmac.compare_digest(envelope_id.encode(), event.to_user_name.encode())
    ):
        raise Refused(400, "envelope-mismatch", "信封与消息的 ToUserName 不一致 / envelope and message ToUserName differ")
    named = _named_appid(event)
    if path_appid is not None and named and not hmac.compare_digest(named.encode(), path_appid.encode()):
        raise Refused(403, APPID_MISMATCH,
                      "路径中的 AppID 与消息所指的小程序不一致 / the app id in the path differs from the one the "
                      "message names")
    # nonce and inbox row commit together (both or neither), batched with concurrent pushes
    landed = await asyncio.wrap_future(
        state.writer.submit(Landing(event, nonce, path_appid, signature=signature_key(signed_by)))
    )
    if landed.replayed:
        raise replayed()
    request.scope["weapp_reason"] = "accepted" if landed.created else "duplicate"
    if state.applier is not None and landed.created:
        state.applier.kick()
    return PlainTextResponse("success")


# Dependencies run in the order they are declared: crypto configured -> app id in the path ->
# (a push's body, capped) -> timestamp and nonce -> (a verification's signature).


@router.get("/wechat/auth")
async def wechat_auth_verify(request: Request, _: PushCrypto = Depends(push_crypto),
                             query: PushQuery = Depends(signed), state: ReceiverState = Depends(get_state)):
    return await _verify(request, state, query)


@router.get("/wechat/{appid}/events")
async def wechat_events_verify(request: Request, _: PushCrypto = Depends(push_crypto),
                               appid: str = Depends(checked_appid), query: PushQuery = Depends(signed),
                               state: ReceiverState = Depends(get_state)):
    return await _verify(request, state, query)


@router.post("/wechat/auth")
async def wechat_auth_push(request: Request, crypto: PushCrypto = Depends(push_crypto),
                           body: bytes = Depends(capped_body), query: PushQuery = Depends(fresh_query),
                           state: ReceiverState = Depends(get_state)):
    return await _push(request, state, crypto, None, body, query)


@router.post("/wechat/{appid}/events")
async def wechat_events_push(request: Request, crypto: PushCrypto = Depends(push_crypto),
                             appid: str = Depends(checked_appid), body: bytes = Depends(capped_body),
                             query: PushQuery = Depends(fresh_query), state: ReceiverState = Depends(get_state)):
    return await _push(request, state, crypto, appid, body, query)
