"""The platform as one object: the API families over one client and one token source.

`build_platform(settings, store)` answers None when no platform is configured (component app
id and secret): every step that could act then stays the manual gate it always was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Callable

import httpx

from launch.settings import Settings
from launch.wechat.platform.account import AccountApi
from launch.wechat.platform.auth import AuthApi
from launch.wechat.platform.client import PlatformClient
from launch.wechat.platform.code import CodeApi
from launch.wechat.platform.icp import IcpApi
from launch.wechat.platform.profile import ProfileApi
from launch.wechat.platform.registration import RegistrationApi
from launch.wechat.platform.tokens import PlatformTokens


@dataclass
class WeChatPlatform:
    code: CodeApi
    icp: IcpApi
    auth: AuthApi
    registration: RegistrationApi
    client: PlatformClient
    http: httpx.Client
    account: AccountApi | None = None  # getaccountbasicinfo: the 认证 state, the profile as set
    profile: ProfileApi | None = None  # name, avatar, introduction, categories (profile.py)

    def close(self) -> None:
        self.http.close()


def platform_configured(settings: Settings) -> bool:
    return bool(settings.wechat_component_appid and settings.wechat_component_secret)


def build_platform(settings: Settings, store, *, now: Callable[[], datetime] = lambda: datetime.now(UTC),
                   http: httpx.Client | None = None) -> WeChatPlatform | None:
    if not platform_configured(settings):
        return None
    http = http or httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0))
    base = settings.wechat_api_base
    tokens = PlatformTokens(store, component_appid=settings.wechat_component_appid,
                            component_secret=settings.wechat_component_secret, base_url=base, http=http, now=now)
    client = tokens.client
    return WeChatPlatform(code=CodeApi(client), icp=IcpApi(client), auth=AuthApi(tokens, client),
                          registration=RegistrationApi(client, settings.wechat_component_appid), client=client,
                          http=http, account=AccountApi(client), profile=ProfileApi(client))
