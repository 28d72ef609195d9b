"""The token life cycle of the third-party platform.

component_verify_ticket  pushed by WeChat every 10 minutes to the authorisation-event URL,
                         valid 12 h; ``remember_ticket(store, ticket, at)`` keeps the latest
                         (the receiver's applier calls it). WeChat's docs advise keeping the last
                         one usable: a missed push does not stop token refreshes.
component_access_token   POST /cgi-bin/component/api_component_token {component_appid,
                         component_appsecret, component_verify_ticket} → {component_access_token,
                         expires_in: 7200}  (docs: openApi/ticket-token/getComponentAccessToken;
                         wechatpy component.py fetch_access_token)
authorizer_access_token  POST /cgi-bin/component/api_authorizer_token?component_access_token=…
                         {component_appid, authorizer_appid, authorizer_refresh_token} →
                         {authorizer_access_token, expires_in, authorizer_refresh_token}
                         (docs: openApi/ticket-token/getAuthorizerAccessToken; wechatpy
                         refresh_authorizer_token; silenceper openplatform/context/accessToken.go)

Refreshed ``margin`` before expiry (WeChat suggests at 1 h 50 min of 2 h: 10 minutes), or when a
call was refused with 40001/42001/40014 (the client passes the refused token as ``stale``).
ONE refresher across processes: the refresher first wins the row's lease in the store
(compare-and-set, launch/store/platform.py); the others wait for the token it saves. Tokens
and refresh tokens live only in the store, encrypted; never in Prefect, never in a log line.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
from pydantic import SecretStr

from launch.wechat.platform.client import PlatformClient

if TYPE_CHECKING:
    from launch.settings import Settings
    from launch.store import Store

__all__ = [
    "DEFAULT_MARGIN",
    "NoVerifyTicket",
    "NotAuthorized",
    "PlatformNotConfigured",
    "PlatformTokens",
    "TokenRefreshTimeout",
    "expiry",
    "needs_refresh",
    "remember_ticket",
]

log = logging.getLogger("weapp_launch.wechat.platform")

DEFAULT_MARGIN = timedelta(minutes=10)
# Asking WeChat to (re)start its ticket pushes (api_start_push_ticket): at most once per window,
# across processes (a nonce per window); WeChat pushes every 10 minutes once it runs.
START_PUSH_SCOPE = "wechat-start-push-ticket"
START_PUSH_WINDOW_SECONDS = 600
TICKET_GONE = (61005, 61006)  # the ticket expired (12 h) or is not WeChat's current one


class PlatformNotConfigured(RuntimeError):
    """No component app id / secret: the platform API is off, the manual gates stay as they are."""


class NoVerifyTicket(RuntimeError):
    """No component_verify_ticket has been pushed yet (WeChat pushes one every 10 minutes)."""


class NotAuthorized(LookupError):
    """The mini program has not authorised the platform (or withdrew the authorisation)."""


class TokenRefreshTimeout(RuntimeError):
    """Another process held the refresh lease and no fresh token appeared in time."""


# ------------------------------------------------------------ pure arithmetic


def expiry(issued_at: datetime, expires_in: int | float) -> datetime:
    """When a token WeChat issued at ``issued_at`` (the moment the request was SENT, so the
    estimate errs early) with ``expires_in`` seconds stops working."""
    if issued_at.tzinfo is None:
        raise ValueError("issued_at must be timezone-aware")
    return issued_at + timedelta(seconds=float(expires_in))


def needs_refresh(
    token: str | None,
    expires_at: datetime | None,
    now: datetime,
    *,
    margin: timedelta = DEFAULT_MARGIN,
    stale: str | None = None,
) -> bool:
    """Whether a token must be refreshed: none yet, no known expiry, within ``margin`` of its
    expiry, or the very token WeChat just refused (``stale``)."""
    if not token or expires_at is None:
        return True
    if stale is not None and token == stale:
        return True
    return now >= expires_at - margin


def remember_ticket(store: Store, ticket: str, at: datetime, *, component_appid: str | None = None) -> bool:
    """Keep a pushed component_verify_ticket (the hook the receiver's applier calls for
    InfoType ``component_verify_ticket``). An older push arriving late does not replace a newer
    ticket. Returns whether it was kept. The ticket is stored encrypted and never logged."""
    return store.remember_verify_ticket(ticket, at, component_appid=component_appid)


# ------------------------------------------------------------ the manager


def _owner() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class PlatformTokens:
    """The token source of a ``PlatformClient`` (launch/wechat/platform/client.py), backed by the
    store. Build one per process and share it; it keeps no token in memory beyond a call."""

    def __init__(
        self,
        store: Store,
        *,
        component_appid: str,
        component_secret: SecretStr | str,
        base_url: str,
        http: httpx.Client,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        margin: timedelta = DEFAULT_MARGIN,
        lease_seconds: float = 30.0,
        wait_seconds: float = 35.0,
        poll_seconds: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
        client_options: dict | None = None,
    ) -> None:
        if not component_appid or not component_secret:
            raise PlatformNotConfigured(
                "未配置第三方平台（WEAPP_LAUNCH_WECHAT_COMPONENT_APPID / _COMPONENT_SECRET）/ the third-party "
                "platform is not configured (WEAPP_LAUNCH_WECHAT_COMPONENT_APPID / _COMPONENT_SECRET)"
            )
        self.store = store
        self.component_appid = component_appid
        self._secret = component_secret if isinstance(component_secret, SecretStr) else SecretStr(component_secret)
        self.now = now
        self.margin = margin
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.poll_seconds = poll_seconds
        self.sleep = sleep
        self.owner = _owner()
        self.client = PlatformClient(base_url, http, self, sleep=sleep, **(client_options or {}))
        self.refreshes = 0  # how many times this process asked WeChat for a token (tests, metrics)

    @classmethod
    def from_settings(cls, settings: Settings, store: Store, http: httpx.Client, **kw) -> PlatformTokens:
        return cls(
            store,
            component_appid=settings.wechat_component_appid or "",
            component_secret=settings.wechat_component_secret or "",
            base_url=settings.wechat_api_base,
            http=http,
            **kw,
        )

    def __repr__(self) -> str:  # never the secret
        return f"PlatformTokens(component_appid={self.component_appid!r}, owner={self.owner!r})"

    # ------------------------------------------------------------ component_access_token

    def component_token(self, *, stale: str | None = None) -> str:
        deadline = time.monotonic() + self.wait_seconds
        while True:
            state = self.store.component_state()
            now = self.now()
            if state is not None and not needs_refresh(
                state.token, state.token_expires_at, now, margin=self.margin, stale=stale
            ):
                return state.token  # type: ignore[return-value]
            if state is None or not state.ticket:
                self.ask_for_tickets()
                raise NoVerifyTicket(
                    "尚未收到 component_verify_ticket（微信每 10 分钟推送一次到授权事件接收 URL）/ no "
                    "component_verify_ticket received yet (WeChat pushes one every 10 minutes to the "
                    "authorisation-event URL)"
                )
            if self.store.claim_component_refresh(self.owner, now, self.lease_seconds):
                try:
                    return self._refresh_component(stale)
                except Exception as exc:
                    if getattr(exc, "errcode", None) in TICKET_GONE:  # the pushes stopped reaching us
                        self.ask_for_tickets()
                    raise
            if time.monotonic() >= deadline:
                raise TokenRefreshTimeout(
                    "另一进程正在刷新第三方平台令牌，等待超时 / another process holds the component token's "
                    "refresh lease and no fresh token appeared in time"
                )
            self.sleep(self.poll_seconds)

    def ask_for_tickets(self) -> bool:
        """No usable component_verify_ticket (a new install, or the receiver missed WeChat's pushes
        for 12 h): ask WeChat to start pushing them again (api_start_push_ticket, with the secret),
        at most once per ``START_PUSH_WINDOW_SECONDS`` across processes. True when WeChat was asked
        and accepted; a failure is logged by its type only and the next window asks again."""
        now = self.now()
        window = int(now.timestamp() // START_PUSH_WINDOW_SECONDS)
        try:
            if not self.store.take_nonce(START_PUSH_SCOPE, f"{self.component_appid}:{window}", now,
                                         2 * START_PUSH_WINDOW_SECONDS):
                return False
            self.client.anonymous("POST", "/cgi-bin/component/api_start_push_ticket", body={
                "component_appid": self.component_appid, "component_secret": self._secret.get_secret_value()})
        except Exception as exc:  # noqa: BLE001 - the caller's own error (no ticket) is what it reports
            log.warning("asking WeChat to push component_verify_ticket failed: %s", type(exc).__name__)
            return False
        log.info("asked WeChat to (re)start pushing component_verify_ticket (api_start_push_ticket)")
        return True

    def _refresh_component(self, stale: str | None) -> str:
        try:
            state = self.store.component_state()  # a refresher that finished just before our claim
            if state is not None and not needs_refresh(
                state.token, state.token_expires_at, self.now(), margin=self.margin, stale=stale
            ):
                self.store.release_component_refresh(self.owner)
                return state.token  # type: ignore[return-value]
            assert state is not None and state.ticket
            issued = self.now()
            data = self.client.anonymous(
                "POST",
                "/cgi-bin/component/api_component_token",
                body={
                    "component_appid": self.component_appid,
                    "component_appsecret": self._secret.get_secret_value(),
                    "component_verify_ticket": state.ticket,
                },
            )
            token = str(data["component_access_token"])
            expires_at = expiry(issued, data.get("expires_in", 7200))
            self.refreshes += 1
            if not self.store.save_component_token(self.owner, token, expires_at, at=self.now()):
                log.warning("component token refreshed after this process's lease was lost; kept the other one")
                return self.component_token()
            log.info("component_access_token refreshed (expires %s)", expires_at.isoformat())
            return token
        except BaseException:
            self.store.release_component_refresh(self.owner)
            raise

    # ------------------------------------------------------------ authorizer_access_token

    def authorizer_token(self, appid: str, *, stale: str | None = None) -> str:
        deadline = time.monotonic() + self.wait_seconds
        while True:
            state = self.store.authorizer_state(appid)
            if state is None or state.revoked_at is not None:
                raise NotAuthorized(
                    f"小程序 {appid} 未授权给第三方平台（或已取消授权）/ the mini program {appid} has not "
                    "authorised the platform (or withdrew the authorisation)"
                )
            now = self.now()
            if not needs_refresh(state.token, state.token_expires_at, now, margin=self.margin, stale=stale):
                return state.token  # type: ignore[return-value]
            if self.store.claim_authorizer_refresh(appid, self.owner, now, self.lease_seconds):
                return self._refresh_authorizer(appid, stale)
            if time.monotonic() >= deadline:
                raise TokenRefreshTimeout(
                    f"另一进程正在刷新 {appid} 的令牌，等待超时 / another process holds {appid}'s token "
                    "refresh lease and no fresh token appeared in time"
                )
            self.sleep(self.poll_seconds)

    def _refresh_authorizer(self, appid: str, stale: str | None) -> str:
        try:
            state = self.store.authorizer_state(appid)
            assert state is not None
            if not needs_refresh(state.token, state.token_expires_at, self.now(), margin=self.margin, stale=stale):
                self.store.release_authorizer_refresh(appid, self.owner)
                return state.token  # type: ignore[return-value]
            issued = self.now()
            data = self.client.component(
                "POST",
                "/cgi-bin/component/api_authorizer_token",
                body={
                    "component_appid": self.component_appid,
                    "authorizer_appid": appid,
                    "authorizer_refresh_token": state.refresh_token,
                },
            )
            token = str(data["authorizer_access_token"])
            expires_at = expiry(issued, data.get("expires_in", 7200))
            self.refreshes += 1
            saved = self.store.save_authorizer_token(
                appid, self.owner, token, expires_at, at=self.now(),
                refresh_token=data.get("authorizer_refresh_token") or None,
            )
            if not saved:
                log.warning("authorizer token of %s refreshed after the lease was lost; kept the other one", appid)
                return self.authorizer_token(appid)
            log.info("authorizer_access_token of %s refreshed (expires %s)", appid, expires_at.isoformat())
            return token
        except BaseException:
            self.store.release_authorizer_refresh(appid, self.owner)
            raise
