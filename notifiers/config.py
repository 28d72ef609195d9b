"""The channels file: Apprise URLs, the tags that route alerts to them, retry policy.

Format (YAML; the path comes from the caller, e.g. ``WEAPP_LAUNCH_NOTIFIERS_FILE``)::

    channels:
      - name: ops-mail            # label shown in delivery records (never the URL)
        url: mailtos://user:${SMTP_PASSWORD}@smtp.example.com:587?to=ops@example.com
        tags: [ops]
      - name: ops-phone
        url: json://127.0.0.1:9000/sms
        tags: [ops, manager]
      - name: client-c-42-wecom   # a client's own contact: tag client-<client_id>
        url: wecombot://KEY
        tags: [client-c-42]
    fallback_tag: ops            # where an alert goes after its last failed try (optional)
    retry: {attempts: 5, backoff_seconds: [60, 300, 900, 3600]}

Rules (each broken rule raises :class:`NotifierConfigError` naming the file, the entry
index, the field and the rule, in Chinese and English):

- top-level keys: ``channels`` (list, may be empty), ``fallback_tag``, ``retry``;
- a channel has exactly ``name``, ``url``, ``tags`` (and optional ``enabled``);
- ``name``: lowercase letters, digits, ``-``, ``_``, ``.`` (1–64), unique;
- ``url``: an Apprise URL that Apprise recognises, after ``${ENV}`` expansion (a variable
  that is not set is an error; ``$${`` is a literal ``${``); the URL is never shown in
  an error or a delivery record, only its scheme;
- ``tags``: a non-empty list of tags (lowercase letters, digits, ``-_.:``);
- ``fallback_tag``: a tag, carried by at least one channel when there are channels;
- ``retry.attempts``: total tries of an alert, 1–100 (default 5); ``retry.backoff_seconds``:
  waits after the 1st, 2nd, … failed try (the last one repeats), each > 0.

Channels can also be added in code (:meth:`NotifierConfig.add_channel`), for per-client
contacts kept elsewhere.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "Channel",
    "NotifierConfig",
    "NotifierConfigError",
    "RetryPolicy",
    "expand_env",
    "load_config",
    "parse_config",
]

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
TAG_RE = re.compile(r"[a-z0-9][a-z0-9_.:-]*")
_ENV_RE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TOP_KEYS = ("channels", "fallback_tag", "retry")
_CHANNEL_KEYS = ("name", "url", "tags", "enabled")
_RETRY_KEYS = ("attempts", "backoff_seconds")


class NotifierConfigError(ValueError):
    """A channels file (or a channel added in code) breaks a rule.

    Attributes: ``path``, ``index`` (0-based channel entry or None), ``field``, ``rule``.
    """

    def __init__(
        self, path: str | Path | None, rule: str, zh: str, en: str, *, index: int | None = None, field: str | None = None
    ) -> None:
        self.path = str(path) if path is not None else None
        self.index = index
        self.field = field
        self.rule = rule
        src_zh = f"通知渠道文件 {path}" if path is not None else "通知渠道配置"
        src_en = f"channels file {path}" if path is not None else "channels configuration"
        loc_zh, loc_en = [], []
        if index is not None:
            loc_zh.append(f"channels 第 {index + 1} 项")
            loc_en.append(f"channels entry #{index + 1}")
        if field is not None:
            loc_zh.append(f"字段 {field}")
            loc_en.append(f"field {field}")
        msg_zh = src_zh + ("，" + "，".join(loc_zh) if loc_zh else "") + f"：{zh}"
        msg_en = src_en + (", " + ", ".join(loc_en) if loc_en else "") + f": {en} [{rule}]"
        super().__init__(f"{msg_zh} / {msg_en}")


@dataclass(frozen=True, slots=True)
class Channel:
    name: str
    url: str = field(repr=False)  # holds secrets: never printed, logged or stored
    tags: tuple[str, ...]

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0].lower() if "://" in self.url else "?"

    def __repr__(self) -> str:
        return f"Channel(name={self.name!r}, scheme={self.scheme!r}, tags={self.tags!r})"


DEFAULT_ATTEMPTS = 5
DEFAULT_BACKOFF_SECONDS: tuple[float, ...] = (60.0, 300.0, 900.0, 3600.0)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = DEFAULT_ATTEMPTS  # total tries of an alert, the first included
    backoff_seconds: tuple[float, ...] = DEFAULT_BACKOFF_SECONDS  # wait after the 1st, 2nd, … failed try


@dataclass
class NotifierConfig:
    channels: list[Channel] = field(default_factory=list)
    fallback_tag: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    source: str | None = None

    def channels_for(self, tags: Iterable[str]) -> list[Channel]:
        """Channels carrying any of ``tags``, in file order."""
        wanted = set(tags)
        return [c for c in self.channels if wanted.intersection(c.tags)]

    def channel(self, name: str) -> Channel:
        for c in self.channels:
            if c.name == name:
                return c
        raise KeyError(f"没有名为 {name} 的渠道 / no channel named {name}")

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for c in self.channels for t in c.tags))

    def add_channel(self, name: str, url: str, tags: Iterable[str], *, validate_url: bool = True) -> Channel:
        """Add a channel in code (e.g. a client's contact under ``client-<client_id>``).

        Same rules as the file; ``url`` is taken as is (no ``${ENV}`` expansion)."""
        index = len(self.channels)
        ch = _make_channel(
            {"name": name, "url": url, "tags": list(tags)}, index, None, {c.name for c in self.channels},
            expand=False, validate_url=validate_url,
        )
        self.channels.append(ch)  # type: ignore[arg-type]
        return ch  # type: ignore[return-value]


def expand_env(text: str, env: Mapping[str, str] | None = None) -> str:
    """Replace ``${NAME}`` by the environment variable; ``$${`` gives a literal ``${``.

    Raises KeyError(name) for a variable that is not set."""
    env = os.environ if env is None else env

    def sub(m: re.Match) -> str:
        if m.group(0) == "$${":
            return "${"
        name = m.group(1)
        if name not in env:
            raise KeyError(name)
        return env[name]

    return _ENV_RE.sub(sub, text)


def _apprise_accepts(url: str) -> bool:
    import apprise  # local: the domain and the settings never need Apprise

    return apprise.Apprise.instantiate(url, asset=apprise.AppriseAsset(storage_mode="memory")) is not None


def _make_channel(
    raw: Any, index: int, src: Any, seen: set[str], *, expand: bool, validate_url: bool,
    env: Mapping[str, str] | None = None,
) -> Channel | None:
    if not isinstance(raw, dict):
        raise NotifierConfigError(src, "entry-not-a-mapping", "每个渠道应为映射：name、url、tags",
                                  "each channel must be a mapping: name, url, tags", index=index)
    for k in raw:
        if k not in _CHANNEL_KEYS:
            raise NotifierConfigError(src, "unknown-key", f"未知的字段 {k!r}（可用：{', '.join(_CHANNEL_KEYS)}）",
                                      f"unknown field {k!r} (allowed: {', '.join(_CHANNEL_KEYS)})",
                                      index=index, field=str(k))
    for k in ("name", "url", "tags"):
        if k not in raw or raw[k] in (None, ""):
            raise NotifierConfigError(src, "missing-field", f"缺少字段 {k}", f"field {k} is missing", index=index, field=k)
    name = raw["name"]
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise NotifierConfigError(
            src, "bad-name", "name 只能用小写字母、数字和 - _ .（1–64 个字符），且不能是 URL",
            "name must use lowercase letters, digits and - _ . (1-64 characters), and must not be a URL",
            index=index, field="name",
        )
    if name in seen:
        raise NotifierConfigError(src, "duplicate-name", f"渠道名 {name} 重复", f"channel name {name} appears twice",
                                  index=index, field="name")
    url = raw["url"]
    if not isinstance(url, str):
        raise NotifierConfigError(src, "bad-url", "url 应为文字（Apprise URL）", "url must be text (an Apprise URL)",
                                  index=index, field="url")
    if expand:
        try:
            url = expand_env(url, env)
        except KeyError as exc:
            raise NotifierConfigError(
                src, "env-not-set", f"url 引用的环境变量 {exc.args[0]} 未设置",
                f"url refers to environment variable {exc.args[0]}, which is not set", index=index, field="url",
            ) from None
    url = url.strip()
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if not scheme:
        raise NotifierConfigError(src, "bad-url", "url 应形如 scheme://…（Apprise URL）",
                                  "url must look like scheme://… (an Apprise URL)", index=index, field="url")
    if validate_url and not _apprise_accepts(url):
        raise NotifierConfigError(
            src, "url-not-recognised",
            f"Apprise 无法识别或解析此 {scheme}:// URL（检查协议名、主机、参数；URL 不在此显示以免泄露密钥）",
            f"Apprise does not recognise or cannot parse this {scheme}:// URL (check scheme, host, parameters; "
            "the URL is not shown here because it may hold secrets)",
            index=index, field="url",
        )
    tags = raw["tags"]
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not tags:
        raise NotifierConfigError(src, "bad-tags", "tags 应为非空列表", "tags must be a non-empty list",
                                  index=index, field="tags")
    for t in tags:
        if not isinstance(t, str) or not TAG_RE.fullmatch(t):
            raise NotifierConfigError(src, "bad-tag", f"标签 {t!r} 只能用小写字母、数字和 - _ . :",
                                      f"tag {t!r} must use lowercase letters, digits and - _ . :",
                                      index=index, field="tags")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise NotifierConfigError(src, "bad-bool", "enabled 应为 true 或 false", "enabled must be true or false",
                                  index=index, field="enabled")
    seen.add(name)
    return Channel(name, url, tuple(dict.fromkeys(tags))) if enabled else None


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _parse_retry(raw: Any, src: Any) -> RetryPolicy:
    if raw is None:
        return RetryPolicy()
    if not isinstance(raw, dict):
        raise NotifierConfigError(src, "bad-retry", "retry 应为映射：attempts、backoff_seconds",
                                  "retry must be a mapping: attempts, backoff_seconds", field="retry")
    for k in raw:
        if k not in _RETRY_KEYS:
            raise NotifierConfigError(src, "unknown-key", f"retry 中未知的字段 {k!r}", f"unknown field {k!r} in retry",
                                      field=f"retry.{k}")
    attempts = raw.get("attempts", DEFAULT_ATTEMPTS)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 100:
        raise NotifierConfigError(src, "bad-attempts", "attempts 应为 1–100 的整数（总尝试次数）",
                                  "attempts must be an integer 1-100 (total tries)", field="retry.attempts")
    backoff = raw.get("backoff_seconds", list(DEFAULT_BACKOFF_SECONDS))
    if isinstance(backoff, (int, float)) and not isinstance(backoff, bool):
        backoff = [backoff]
    if not isinstance(backoff, list) or (attempts > 1 and not backoff):
        raise NotifierConfigError(src, "bad-backoff", "backoff_seconds 应为非空的秒数列表",
                                  "backoff_seconds must be a non-empty list of seconds", field="retry.backoff_seconds")
    for i, b in enumerate(backoff):
        if not _number(b) or b <= 0:
            raise NotifierConfigError(src, "bad-backoff", f"backoff_seconds 第 {i + 1} 项 {b!r} 应为正数",
                                      f"backoff_seconds item #{i + 1} {b!r} must be a positive number",
                                      field="retry.backoff_seconds")
    return RetryPolicy(attempts, tuple(float(b) for b in backoff))


def parse_config(
    data: Any, source: str | Path | None = None, *, env: Mapping[str, str] | None = None, validate_urls: bool = True
) -> NotifierConfig:
    """Validate an already-loaded channels document (rules: module docstring)."""
    src = str(source) if source is not None else None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise NotifierConfigError(src, "not-a-mapping", "顶层应为映射：channels、fallback_tag、retry",
                                  "the top level must be a mapping: channels, fallback_tag, retry")
    for k in data:
        if k not in _TOP_KEYS:
            raise NotifierConfigError(src, "unknown-key", f"未知的键 {k!r}（可用：{', '.join(_TOP_KEYS)}）",
                                      f"unknown key {k!r} (allowed: {', '.join(_TOP_KEYS)})", field=str(k))
    raw_channels = data.get("channels") or []
    if not isinstance(raw_channels, list):
        raise NotifierConfigError(src, "not-a-list", "channels 应为列表", "channels must be a list", field="channels")
    seen: set[str] = set()
    channels = []
    for i, raw in enumerate(raw_channels):
        ch = _make_channel(raw, i, src, seen, expand=True, validate_url=validate_urls, env=env)
        if ch is not None:
            channels.append(ch)
    fallback = data.get("fallback_tag")
    if fallback is not None:
        if not isinstance(fallback, str) or not TAG_RE.fullmatch(fallback):
            raise NotifierConfigError(src, "bad-tag", f"fallback_tag {fallback!r} 不是有效标签",
                                      f"fallback_tag {fallback!r} is not a valid tag", field="fallback_tag")
        if channels and not any(fallback in c.tags for c in channels):
            raise NotifierConfigError(src, "fallback-without-channel", f"没有任何渠道带有 fallback_tag {fallback}",
                                      f"no channel carries the fallback_tag {fallback}", field="fallback_tag")
    return NotifierConfig(channels, fallback, _parse_retry(data.get("retry"), src), src)


def load_config(path: str | Path, *, env: Mapping[str, str] | None = None, validate_urls: bool = True) -> NotifierConfig:
    """Read and validate a channels YAML file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NotifierConfigError(p, "unreadable", f"无法读取文件（{exc}）", f"cannot read the file ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # only the position and the problem: the snippet YAML quotes could hold a secret URL
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = getattr(exc, "problem", None) or type(exc).__name__
        raise NotifierConfigError(p, "yaml-syntax", f"YAML 语法错误：{where}{what}", f"YAML syntax error: {where}{what}") from None
    return parse_config(data, p, env=env, validate_urls=validate_urls)
