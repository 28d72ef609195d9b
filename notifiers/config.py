"""The channels file: Apprise URLs, the tags that route alerts to them, retry policy.

Format (YAML; the path comes from the caller, e.g. ``WEAPP_LAUNCH_NOTIFIERS_FILE``)::

    channels:
      - name: ops-mail            # label shown in delivery records (never the URL)
        url: mailtos://user:${SMTP_PASSWORD}@smtp.example.com:587?to=ops@example.com
        tags: [ops]
      - name: ops-phone
        url: json://127.0.0.1:9000/sms
        tags: [ops, manager]
        kind: phone               # optional: mail | phone | chat | other (default: from the scheme)
        read_timeout: 20          # optional, seconds (default by kind, below)
      - name: client-c-42-wecom   # a client's own contact: tag client-<client_id>
        url: wecombot://KEY
        tags: [client-c-42]
    fallback_tag: ops            # where an alert goes when its own channels fail or are down (optional)
    retry: {attempts: 5, backoff_seconds: [60, 300, 900, 3600]}
    breaker: {failures: 3, probe_seconds: 300}
    delayed_after_seconds: 900

Rules (each broken rule raises :class:`NotifierConfigError` naming the file, the entry
index, the field and the rule, in Chinese and English):

- top-level keys: ``channels`` (list, may be empty), ``fallback_tag``, ``retry``, ``breaker``,
  ``delayed_after_seconds``;
- a channel has ``name``, ``url``, ``tags`` and optionally ``enabled``, ``kind``,
  ``connect_timeout``, ``read_timeout``;
- ``name``: lowercase letters, digits, ``-``, ``_``, ``.`` (1–64), unique;
- ``url``: an Apprise URL that Apprise recognises, after ``${ENV}`` expansion (a variable
  that is not set is an error; ``$${`` is a literal ``${``); the URL is never shown in
  an error or a delivery record, only its scheme;
- ``tags``: a non-empty list of tags (lowercase letters, digits, ``-_.:``);
- ``fallback_tag``: a tag, carried by at least one channel when there are channels;
- ``retry.attempts``: total tries of an alert, 1–100 (default 5); ``retry.backoff_seconds``:
  waits after the 1st, 2nd, … failed try (the last one repeats), each > 0;
- ``kind``: ``mail`` | ``phone`` | ``chat`` | ``other``; default from the URL's scheme
  (:func:`kind_of_scheme`). The fallback prefers a channel of another kind than the ones
  that failed (phone when mail is down);
- ``connect_timeout`` / ``read_timeout``: seconds, > 0 and ≤ 600, given to Apprise as the
  URL's ``cto`` / ``rto``; defaults: mail 15 / 30, others 5 / 15. Apprise's mail plugin
  uses ONE socket timeout for the whole SMTP conversation (its ``cto``), so a mail
  channel gets the larger of the two. A URL that already carries ``cto`` or ``rto`` keeps
  it, and then the same key in the file is an error (one place only);
- ``breaker.failures``: consecutive failed deliveries that mark a channel down, 1–100
  (default 3; never more than ``retry.attempts``, so an alert never spends its last try
  on a dead channel); ``breaker.probe_seconds``: how often a down channel is probed with
  the oldest alert waiting for it, > 0 (default 300);
- ``delayed_after_seconds``: an alert that goes out later than this after its due time
  says "delayed by …" (default 900; 0 = always).

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
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from launch.settings import Settings

__all__ = [
    "CHANNEL_KINDS",
    "BreakerPolicy",
    "Channel",
    "NotifierConfig",
    "NotifierConfigError",
    "RetryPolicy",
    "expand_env",
    "kind_of_scheme",
    "load_config",
    "parse_config",
]

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
TAG_RE = re.compile(r"[a-z0-9][a-z0-9_.:-]*")
_ENV_RE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TOP_KEYS = ("channels", "fallback_tag", "retry", "breaker", "delayed_after_seconds")
_CHANNEL_KEYS = ("name", "url", "tags", "enabled", "kind", "connect_timeout", "read_timeout")
_RETRY_KEYS = ("attempts", "backoff_seconds")
_BREAKER_KEYS = ("failures", "probe_seconds")

CHANNEL_KINDS = ("mail", "phone", "chat", "other")
# Apprise schemes by kind (checked against the plugins of Apprise 1.13: `protocol` /
# `secure_protocol` of each). Anything else is "other" unless the file says `kind:`.
_MAIL_SCHEMES = frozenset({"mailto", "mailtos", "mailgun", "sendgrid", "ses", "sparkpost", "smtp2go", "brevo", "resend"})
_PHONE_SCHEMES = frozenset({
    "json", "jsons", "form", "forms", "xml", "xmls",  # an SMS gateway of our own over HTTP
    "twilio", "clicksend", "bulksms", "msg91", "kavenegar", "d7sms", "plivo", "sinch", "vonage", "nexmo",
    "httpsms", "smseagle", "smseagles", "sns", "seven",
})
_CHAT_SCHEMES = frozenset({"wecombot", "dingtalk", "feishu", "lark", "schan", "slack", "tgram"})
# Where Apprise lets us add a header to each delivery (`+Header=value` in the URL):
# custom_json / custom_form / custom_xml send it as an HTTP header, the email plugin as a
# mail header (see notifiers.deliver.delivery_url).
HTTP_HEADER_SCHEMES = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})
MAIL_HEADER_SCHEMES = frozenset({"mailto", "mailtos"})
DEFAULT_TIMEOUTS: dict[str, tuple[float, float]] = {"mail": (15.0, 30.0)}  # kind -> (connect, read)
DEFAULT_TIMEOUT = (5.0, 15.0)
MAX_TIMEOUT = 600.0


def kind_of_scheme(scheme: str) -> str:
    """mail | phone | chat | other, from an Apprise URL's scheme."""
    scheme = scheme.lower()
    if scheme in _MAIL_SCHEMES:
        return "mail"
    if scheme in _PHONE_SCHEMES:
        return "phone"
    if scheme in _CHAT_SCHEMES:
        return "chat"
    return "other"


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
    kind: str = ""  # mail | phone | chat | other; "" -> from the scheme
    connect_timeout: float | None = None  # None -> the kind's default (or the URL's own cto)
    read_timeout: float | None = None

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", kind_of_scheme(self.scheme))

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0].lower() if "://" in self.url else "?"

    @property
    def idempotency(self) -> str | None:
        """How a delivery carries its idempotency key: "http-header", "mail-header" or None
        (the scheme gives us no way: at least once, a retry after a timeout may repeat)."""
        if self.scheme in HTTP_HEADER_SCHEMES:
            return "http-header"
        if self.scheme in MAIL_HEADER_SCHEMES:
            return "mail-header"
        return None

    def url_params(self) -> dict[str, str]:
        """Query parameters of the URL, keys lowercased (empty when it does not parse)."""
        query = self.url.split("?", 1)[1] if "?" in self.url else ""
        out: dict[str, str] = {}
        for pair in query.replace(";", "&").split("&"):
            if pair:
                k, _, v = pair.partition("=")
                out[k.strip().lower()] = v
        return out

    def timeouts(self) -> dict[str, float]:
        """The Apprise timeout parameters to add to the URL (``cto``, ``rto``): the file's
        values, else the kind's defaults, except what the URL already sets itself."""
        d_conn, d_read = DEFAULT_TIMEOUTS.get(self.kind if self.scheme not in MAIL_HEADER_SCHEMES else "mail",
                                              DEFAULT_TIMEOUT)
        conn = self.connect_timeout if self.connect_timeout is not None else d_conn
        read = self.read_timeout if self.read_timeout is not None else d_read
        params = self.url_params()
        if self.scheme in MAIL_HEADER_SCHEMES:
            # Apprise's email plugin: smtplib.SMTP(..., timeout=cto) for the whole conversation
            return {} if "cto" in params else {"cto": max(conn, read)}
        out: dict[str, float] = {}
        if "cto" not in params:
            out["cto"] = conn
        if "rto" not in params:
            out["rto"] = read
        return out

    def __repr__(self) -> str:
        return f"Channel(name={self.name!r}, scheme={self.scheme!r}, kind={self.kind!r}, tags={self.tags!r})"


DEFAULT_ATTEMPTS = 5
DEFAULT_BACKOFF_SECONDS: tuple[float, ...] = (60.0, 300.0, 900.0, 3600.0)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = DEFAULT_ATTEMPTS  # total tries of an alert, the first included
    backoff_seconds: tuple[float, ...] = DEFAULT_BACKOFF_SECONDS  # wait after the 1st, 2nd, … failed try


DEFAULT_BREAKER_FAILURES = 3
DEFAULT_PROBE_SECONDS = 300.0
DEFAULT_DELAYED_AFTER_SECONDS = 900.0


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failures: int = DEFAULT_BREAKER_FAILURES  # consecutive failed deliveries that mark a channel down
    probe_seconds: float = DEFAULT_PROBE_SECONDS  # a down channel is probed this often


@dataclass
class NotifierConfig:
    channels: list[Channel] = field(default_factory=list)
    fallback_tag: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    source: str | None = None
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    delayed_after_seconds: float = DEFAULT_DELAYED_AFTER_SECONDS

    @property
    def trip_after(self) -> int:
        """Failures that mark a channel down: ``breaker.failures``, at most ``retry.attempts``
        (so a dead channel is down before any alert runs out of tries on it)."""
        return max(1, min(self.breaker.failures, self.retry.attempts))

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

    def add_channel(self, name: str, url: str, tags: Iterable[str], *, validate_url: bool = True,
                    **options: Any) -> Channel:
        """Add a channel in code (e.g. a client's contact under ``client-<client_id>``).

        Same rules as the file; ``url`` is taken as is (no ``${ENV}`` expansion); ``options``:
        ``kind``, ``connect_timeout``, ``read_timeout``."""
        index = len(self.channels)
        ch = _make_channel(
            {"name": name, "url": url, "tags": list(tags), **options}, index, None, {c.name for c in self.channels},
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
    kind = raw.get("kind") or ""
    if kind and kind not in CHANNEL_KINDS:
        raise NotifierConfigError(src, "bad-kind", f"kind 应为 {' | '.join(CHANNEL_KINDS)} 之一（收到 {kind!r}）",
                                  f"kind must be one of {' | '.join(CHANNEL_KINDS)} (got {kind!r})",
                                  index=index, field="kind")
    timeouts: dict[str, float | None] = {}
    for key, param in (("connect_timeout", "cto"), ("read_timeout", "rto")):
        value = raw.get(key)
        if value is None:
            timeouts[key] = None
            continue
        if not _number(value) or not 0 < value <= MAX_TIMEOUT:
            raise NotifierConfigError(src, "bad-timeout", f"{key} 应为 0–{MAX_TIMEOUT:g} 秒之间的正数",
                                      f"{key} must be a positive number of seconds, at most {MAX_TIMEOUT:g}",
                                      index=index, field=key)
        if param in Channel(name, url, ()).url_params():
            raise NotifierConfigError(src, "timeout-twice", f"URL 中已有 {param} 参数，{key} 只能在一处设置",
                                      f"the URL already sets {param}: set {key} in one place only",
                                      index=index, field=key)
        timeouts[key] = float(value)
    seen.add(name)
    if not enabled:
        return None
    return Channel(name, url, tuple(dict.fromkeys(tags)), kind, timeouts["connect_timeout"], timeouts["read_timeout"])


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


def _parse_breaker(raw: Any, src: Any) -> BreakerPolicy:
    if raw is None:
        return BreakerPolicy()
    if not isinstance(raw, dict):
        raise NotifierConfigError(src, "bad-breaker", "breaker 应为映射：failures、probe_seconds",
                                  "breaker must be a mapping: failures, probe_seconds", field="breaker")
    for k in raw:
        if k not in _BREAKER_KEYS:
            raise NotifierConfigError(src, "unknown-key", f"breaker 中未知的字段 {k!r}", f"unknown field {k!r} in breaker",
                                      field=f"breaker.{k}")
    failures = raw.get("failures", DEFAULT_BREAKER_FAILURES)
    if isinstance(failures, bool) or not isinstance(failures, int) or not 1 <= failures <= 100:
        raise NotifierConfigError(src, "bad-failures", "failures 应为 1–100 的整数（连续失败几次判定渠道中断）",
                                  "failures must be an integer 1-100 (consecutive failures that mark a channel down)",
                                  field="breaker.failures")
    probe = raw.get("probe_seconds", DEFAULT_PROBE_SECONDS)
    if not _number(probe) or probe <= 0:
        raise NotifierConfigError(src, "bad-probe", "probe_seconds 应为正数（秒）", "probe_seconds must be a positive "
                                  "number of seconds", field="breaker.probe_seconds")
    return BreakerPolicy(failures, float(probe))


def parse_config(
    data: Any, source: str | Path | None = None, *, env: Mapping[str, str] | None = None, validate_urls: bool = True
) -> NotifierConfig:
    """Validate an already-loaded channels document (rules: module docstring)."""
    src = str(source) if source is not None else None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise NotifierConfigError(src, "not-a-mapping", "顶层应为映射：channels、fallback_tag、retry…",
                                  "the top level must be a mapping: channels, fallback_tag, retry, …")
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
    delayed = data.get("delayed_after_seconds", DEFAULT_DELAYED_AFTER_SECONDS)
    if not _number(delayed) or delayed < 0:
        raise NotifierConfigError(src, "bad-delay", "delayed_after_seconds 应为 ≥ 0 的秒数",
                                  "delayed_after_seconds must be a number of seconds >= 0", field="delayed_after_seconds")
    return NotifierConfig(channels, fallback, _parse_retry(data.get("retry"), src), src,
                          _parse_breaker(data.get("breaker"), src), float(delayed))


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


def load_notifier_config(settings: Settings) -> tuple[NotifierConfig | None, str | None, str | None]:
    """(config or None, note, error). The file: ``settings.notifiers_file``, else
    ``<home>/notifiers.yaml`` when it exists; none → no channels (alerts stay pending)."""
    path = settings.notifiers_file
    if path is None:
        candidate = Path(settings.home) / "notifiers.yaml"
        if candidate.is_file():
            path = candidate
    if path is None:
        return None, (
            "未配置通知渠道（WEAPP_LAUNCH_NOTIFIERS_FILE），提醒保留在待发送队列中，配置后即发出 / "
            "no notifiers file (WEAPP_LAUNCH_NOTIFIERS_FILE): alerts stay pending and go out once it is configured"
        ), None
    try:
        return load_config(path), None, None
    except NotifierConfigError as exc:
        return None, None, f"通知渠道文件有误，本次不发送 / notifiers file refused, nothing sent this pass: {exc}"
