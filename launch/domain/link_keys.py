"""The staff-link secrets: ``kid:secret`` pairs, newest first (the first signs, every one verifies).

Pure parsing and lookup, read by the settings (``Settings.link_keys``) and used by the signed
links of ``launch.app.links``; no secret is ever shown (``repr`` names the key ids only).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable

__all__ = ["KID", "MIN_SECRET_CHARS", "LinkKeys"]

MIN_SECRET_CHARS = 32
KID = re.compile(r"[A-Za-z0-9_-]{1,16}")


class LinkKeys:
    """The link secrets, newest first: the first signs, every one verifies.

    Text form (setting ``WEAPP_LAUNCH_LINK_SECRETS`` and the file ``<home>/link-secrets``):
    ``kid:secret`` entries separated by commas or new lines, ``#`` starts a comment line;
    ``kid`` is 1-16 of ``A-Z a-z 0-9 _ -``, a secret at least 32 characters."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[tuple[str, bytes | str]]):
        pairs: list[tuple[str, bytes]] = []
        for kid, secret in keys:
            if not isinstance(kid, str) or not KID.fullmatch(kid):
                raise ValueError(f"链接密钥编号无效 / link key id {kid!r} must be 1-16 of A-Z a-z 0-9 _ -")
            data = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
            if len(data) < MIN_SECRET_CHARS:
                raise ValueError(f"链接密钥 {kid} 太短 / link secret {kid} is shorter than {MIN_SECRET_CHARS} characters")
            if any(k == kid for k, _ in pairs):
                raise ValueError(f"链接密钥编号重复 / link key id {kid} is listed twice")
            pairs.append((kid, data))
        if not pairs:
            raise ValueError("没有链接密钥 / no link secret")
        self._keys = tuple(pairs)

    @classmethod
    def parse(cls, text: str) -> LinkKeys:
        entries = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            for entry in line.split(","):
                entry = entry.strip()
                if not entry:
                    continue
                kid, sep, secret = entry.partition(":")
                if not sep:
                    raise ValueError("链接密钥格式应为 kid:secret / link secrets must be written kid:secret[,kid:secret…]")
                entries.append((kid.strip(), secret.strip()))
        return cls(entries)

    @property
    def signing_kid(self) -> str:
        return self._keys[0][0]

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self._keys)

    def secret(self, kid: str | None = None) -> bytes | None:
        if kid is None:
            return self._keys[0][1]
        for k, s in self._keys:
            if hmac.compare_digest(k.encode(), kid.encode("utf-8", "replace")):
                return s
        return None

    def __repr__(self) -> str:  # never the secrets
        return f"LinkKeys(kids={list(self.kids)!r})"
