"""What every route and dependency of one receiver shares: its resources, the push crypto,
the API key, the link keys and the two workers. Kept on `app.state.receiver`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import Request

from launch.app import Resources
from launch.app.inbox import nonce_lifetime
from launch.wechat.crypto import PushCrypto

if TYPE_CHECKING:
    from launch.domain.link_keys import LinkKeys
    from launch.receiver.workers import Applier, InboxWriter

log = logging.getLogger("weapp_launch.api")


class ReceiverState:
    def __init__(self, res: Resources, writer: InboxWriter, applier: Applier | None):
        self.res = res
        self.settings = res.settings
        self.writer = writer
        self.applier = applier
        self.nonce_ttl = nonce_lifetime(res.settings)
        try:
            self.crypto: PushCrypto | None = PushCrypto.from_settings(res.settings)
        except ValueError as exc:
            self.crypto = None
            log.warning("WeChat push not configured, /wechat routes answer 503: %s", exc)
        key = res.settings.api_key.get_secret_value() if res.settings.api_key is not None else ""
        self.api_key = key.encode("utf-8") if key else None
        self._link_keys: LinkKeys | None = None

    def link_keys(self) -> LinkKeys:
        """The link secrets (launch.domain.link_keys.LinkKeys), read once: restart after a rotation."""
        if self._link_keys is None:
            self._link_keys = self.settings.link_keys()
        return self._link_keys


async def get_state(request: Request) -> ReceiverState:
    """FastAPI dependency: this app's ReceiverState. The receiver's dependencies that do no I/O
    are ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool, a hop per
    dependency per request (bench/bench_receiver.py measured 12 hops a push before)."""
    return request.app.state.receiver
