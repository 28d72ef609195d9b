"""The one place that sends a call to WeChat's server API.

``PlatformClient(base_url, http, tokens)`` puts the right token in the query (``access_token``
for calls on behalf of a mini program, ``component_access_token`` for the platform's own
calls, as WeChat's third-party platform docs and wechatpy/WxJava send them), decodes
``errcode`` into a typed error (errors.py) and applies ONE retry policy:

- -1 (busy) and the rate limits (45009, 45011, 9402202) are retried with exponential
  backoff, at most ``retries`` times;
- 40001 / 42001 / 40014 (token expired or not the latest): the token is refreshed ONCE
  (through the token source's compare-and-set, so another process's fresh token is used when
  there is one) and the call retried once;
- a connection that never reached WeChat (connect error / connect timeout) is retried like
  busy; a call that may have reached WeChat (read timeout, broken response) is NOT retried —
  it may have acted (a second submit_audit would meet 85009);
- nothing else is retried.

Every POST carries a JSON object; a call with nothing to say sends ``{}`` (WeChat's release
answers 44002 to an empty body), so an empty POST cannot be built. JSON goes out as UTF-8
without \\u escapes (WeChat's Chinese fields are read as sent).

Tokens travel only in the query string. They are never logged: this module logs the API path,
errcode and attempt, and a filter on httpx's own logger masks token parameters in the URLs it
logs. Errors carry the path, never the URL.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import httpx
from pydantic import BaseModel

from launch.wechat.platform.errors import (
    TokenInvalid,
    WeChatApiError,
    WeChatTransportError,
    error_for,
    rejected_from,
    scrub,
)

__all__ = ["DEFAULT_API_BASE", "PlatformClient", "TokenSource", "WeChatBody"]

DEFAULT_API_BASE = "https://api.weixin.qq.com"
log = logging.getLogger("weapp_launch.wechat.platform")


class TokenSource(Protocol):
    """Where the client gets tokens. ``stale``: the token WeChat just refused — the source
    refreshes unless the token it holds is already another one."""

    def component_token(self, *, stale: str | None = None) -> str: ...

    def authorizer_token(self, appid: str, *, stale: str | None = None) -> str: ...


class WeChatBody(BaseModel):
    """Base of the typed request bodies: unset optional fields are left out."""

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


class _HttpxTokenFilter(logging.Filter):
    """Masks token parameters in httpx's "HTTP Request: POST <url>" lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(scrub(str(a)) if isinstance(a, (str, httpx.URL)) else a for a in record.args)
        record.msg = scrub(str(record.msg))
        return True


def _guard_httpx_logs() -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _HttpxTokenFilter) for f in logger.filters):
            logger.addFilter(_HttpxTokenFilter())


_guard_httpx_logs()


def _encode(body: WeChatBody | Mapping[str, Any] | None) -> bytes:
    if body is None:
        data: Mapping[str, Any] = {}
    elif isinstance(body, WeChatBody):
        data = body.payload()
    else:
        data = dict(body)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class PlatformClient:
    def __init__(
        self,
        base_url: str,
        http: httpx.Client,
        tokens: TokenSource | None,
        *,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.tokens = tokens
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep

    # ------------------------------------------------------------ the three kinds of call

    def authorizer(
        self,
        appid: str,
        method: str,
        path: str,
        *,
        body: WeChatBody | Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        raw: bool = False,
    ) -> dict[str, Any] | bytes:
        """A call on behalf of the mini program ``appid`` (authorizer_access_token)."""
        assert self.tokens is not None, "this client has no token source"
        tokens = self.tokens
        return self._call(
            method, path, body=body, params=params, files=files, data=data, raw=raw,
            token_param="access_token", token=lambda stale: tokens.authorizer_token(appid, stale=stale),
        )

    def component(
        self,
        method: str,
        path: str,
        *,
        body: WeChatBody | Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A call of the platform itself (component_access_token)."""
        assert self.tokens is not None, "this client has no token source"
        tokens = self.tokens
        out = self._call(
            method, path, body=body, params=params, token_param="component_access_token",
            token=lambda stale: tokens.component_token(stale=stale),
        )
        assert isinstance(out, dict)
        return out

    def anonymous(self, method: str, path: str, *, body: WeChatBody | Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A call that carries no token (api_component_token: the secret is in the body)."""
        out = self._call(method, path, body=body, token_param=None, token=None)
        assert isinstance(out, dict)
        return out

    # ------------------------------------------------------------ the policy

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: WeChatBody | Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        raw: bool = False,
        token_param: str | None,
        token: Callable[[str | None], str] | None,
    ) -> dict[str, Any] | bytes:
        method = method.upper()
        refreshed = False
        failures = 0
        stale: str | None = None
        while True:
            query = dict(params or {})
            used: str | None = None
            if token is not None and token_param is not None:
                used = token(stale)
                query[token_param] = used
            try:
                result = self._send(method, path, query, body=body, files=files, data=data, raw=raw)
            except WeChatTransportError as exc:
                if exc.sent or failures >= self.retries:
                    raise
                failures += 1
                self._wait(path, failures, "unreachable")
                continue
            except TokenInvalid as exc:
                if refreshed or token is None:
                    raise
                refreshed = True
                stale = used
                log.info("wechat %s: errcode %s, refreshing the token once", path, exc.errcode)
                continue
            except WeChatApiError as exc:
                if not exc.retryable or failures >= self.retries:
                    raise
                failures += 1
                self._wait(path, failures, f"errcode {exc.errcode}")
                continue
            return result

    def _wait(self, path: str, failures: int, why: str) -> None:
        delay = min(self.max_backoff, self.backoff * (2 ** (failures - 1)))
        log.warning("wechat %s: %s, retry %d/%d in %.1fs", path, why, failures, self.retries, delay)
        self.sleep(delay)

    def _send(
        self,
        method: str,
        path: str,
        query: dict[str, Any],
        *,
        body: WeChatBody | Mapping[str, Any] | None,
        files: Mapping[str, Any] | None,
        data: Mapping[str, Any] | None,
        raw: bool,
    ) -> dict[str, Any] | bytes:
        url = self.base_url + path
        kwargs: dict[str, Any] = {"params": query}
        if method == "POST":
            if files is not None:
                kwargs["files"] = files
                kwargs["data"] = dict(data or {})
            else:
                kwargs["content"] = _encode(body)
                kwargs["headers"] = {"Content-Type": "application/json; charset=utf-8"}
        elif body is not None:
            raise ValueError(f"{method} {path} takes no body")
        try:
            response = self.http.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise WeChatTransportError(
                "无法连接微信接口", f"cannot reach WeChat's API ({type(exc).__name__})", path=path, sent=False
            ) from None
        except httpx.HTTPError as exc:
            raise WeChatTransportError(
                "调用微信接口时连接中断，微信可能已处理该请求（不自动重试）",
                f"the call broke off ({type(exc).__name__}); WeChat may have acted on it, so it is not retried",
                path=path,
            ) from None
        ctype = response.headers.get("content-type", "")
        if raw and response.status_code == 200 and "json" not in ctype and not ctype.startswith("text/"):
            return response.content
        try:
            decoded = response.json()
        except ValueError:
            raise WeChatTransportError(
                f"微信接口返回了非 JSON 内容（HTTP {response.status_code}）",
                f"WeChat's API answered something that is not JSON (HTTP {response.status_code})",
                path=path,
            ) from None
        if not isinstance(decoded, dict):
            raise WeChatTransportError("微信接口返回格式错误", "WeChat's API answered an unexpected shape", path=path)
        errcode = int(decoded.get("errcode") or 0)
        if errcode != 0:
            log.info("wechat %s: errcode %s", path, errcode)
            raise self._error(errcode, str(decoded.get("errmsg", "")), path, decoded)
        return decoded

    def _error(self, errcode: int, errmsg: str, path: str, decoded: dict[str, Any]) -> WeChatApiError:
        if isinstance(decoded.get("hints"), list) and decoded["hints"]:
            return rejected_from(errcode, errmsg, decoded["hints"], path=path)
        return error_for(errcode, errmsg, path=path)
