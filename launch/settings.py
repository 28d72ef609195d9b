"""All settings, from environment variables prefixed WEAPP_LAUNCH_ (or a .env file).

Every field here is documented in the README's settings table; keep the two in step.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import os
import secrets
import stat
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger("weapp_launch.settings")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEAPP_LAUNCH_", env_file=".env", extra="ignore")

    home: Path = Field(
        default=Path(".weapp-launch"),
        description="Working folder: store database, secret key files, Prefect home of the local stack. "
        "Created with mode 0700; a wider one of ours is tightened to 0700 when a key file is read or made.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the store. Default: SQLite file <home>/store.db. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/db.",
    )
    encryption_key: SecretStr | None = Field(
        default=None,
        description="Fernet key (urlsafe base64, 32 bytes) encrypting ID numbers and phones at rest. "
        "Default: generated once into <home>/secret.key, written atomically with mode 0600; a key file that "
        "group or others may access, or that another user owns, is refused. <home> is created 0700 "
        "(and tightened to 0700 if it is ours and wider).",
    )
    calendar_file: Path | None = Field(
        default=None,
        description="YAML with holidays and adjusted workdays of years chinesecalendar does not know yet.",
    )
    rules_file: Path | None = Field(
        default=None,
        description="YAML overriding preflight figures (quotas, province lists, remark length).",
    )
    process_file: Path | None = Field(
        default=None,
        description="YAML overriding step estimates and deadlines of the process catalogue.",
    )
    timezone: str = Field(default="Asia/Shanghai", description="Time zone of every deadline and alert.")
    trial_acceptance: bool = Field(
        default=True,
        description="Before 提审 the client accepts the trial version (体验版): the `trial-acceptance` gate. "
        "false drops the gate from the catalogue and the launch flow.",
    )

    # Prefect
    prefect_port: int = Field(
        default=4200,
        description="Port of the Prefect server `weapp-launch up` starts (127.0.0.1); a busy port is an error, "
        "never a silent move. A CLI in another shell finds that server here, with the auth string in <home>/prefect-auth.",
    )
    prefect_ui_url: str = Field(
        default="http://127.0.0.1:4200", description="Base URL of the Prefect UI, for links in output and alerts."
    )
    gate_timeout_days: int = Field(
        default=180, description="How long Prefect keeps a suspended gate before failing the run (deadlines are ours)."
    )

    dead_run_seconds: int = Field(
        default=150,
        ge=60,
        description="A run RUNNING with no heartbeat for this long has lost its process; the watcher "
        "reschedules it to replay (heartbeats every 30 s).",
    )

    # Callback receiver
    api_host: str = Field(default="127.0.0.1", description="Callback receiver bind address.")
    api_port: int = Field(default=8780, description="Callback receiver port.")
    public_url: str = Field(
        default="http://127.0.0.1:8780", description="Base URL of the callback receiver as staff reach it (signed links)."
    )
    api_key: SecretStr | None = Field(default=None, description="API key for internal tools posting staff decisions.")
    link_secrets: SecretStr | None = Field(
        default=None,
        description="Secrets of signed staff links with their key ids, newest first: `kid:secret[,kid:secret…]` "
        "(a kid is 1-16 of A-Z a-z 0-9 _ -, a secret at least 32 characters). The first signs new links; every "
        "listed key still verifies the links it signed until it is removed, so rotating is: add the new key "
        "second everywhere, then move it first, then drop the old one after link_ttl_hours. Default: "
        "WEAPP_LAUNCH_LINK_SECRET if set, else a random secret generated once into <home>/link-secrets "
        "(mode 0600; same format). Never derived from the encryption key.",
    )
    link_secret: SecretStr | None = Field(
        default=None,
        description="One link secret (at least 32 characters), key id `k0`; superseded by link_secrets, "
        "which wins when both are set (list it there as `k0:…` to rotate away from it).",
    )
    link_ttl_hours: int = Field(default=72, description="How long a signed staff link stays valid.")
    wechat_token: SecretStr | None = Field(default=None, description="Token of the WeChat third-party platform push.")
    wechat_encoding_aes_key: SecretStr | None = Field(
        default=None, description="EncodingAESKey (43 characters) of the WeChat push, for AES safe mode."
    )
    wechat_component_appid: str | None = Field(
        default=None, description="Third-party platform app id; decrypted messages must carry it."
    )
    wechat_auto_release: bool = Field(
        default=True,
        description="With a third-party platform: release by itself once review passed AND the filing is done "
        "(false: release stays a staff gate).",
    )
    wechat_allow_plaintext: bool = Field(
        default=False,
        description="Accept unencrypted (plaintext) pushes signed only by `signature`. Off: a third-party "
        "platform always encrypts, and a plaintext push's signature covers no body. Only for a test platform; "
        "`weapp-launch health` flags it.",
    )
    wechat_api_base: str = Field(
        default="https://api.weixin.qq.com",
        description="Base URL of WeChat's server API that the platform client calls (third-party platform "
        "API: tokens, code, review, release, ICP filing). Tests and the demo point it at the local stand-in.",
    )
    wechat_component_secret: SecretStr | None = Field(
        default=None,
        description="AppSecret of the third-party platform (component_appsecret): with the pushed "
        "component_verify_ticket it yields the component_access_token. Never logged, never sent to Prefect.",
    )
    wechat_reconcile_seconds: int = Field(
        default=1800,
        ge=0,
        description="With a third-party platform: the watcher asks WeChat (get_latest_auditstatus, "
        "get_icp_entrance_info, query_icp_verifytask) about every gate WeChat answers that has waited longer "
        "than this, and decides it as the lost push would have (channel wechat-api); and acts again, as often as "
        "this, where WeChat could not take a gate's action (busy, rate-limited, unreachable); 0 turns both off.",
    )
    max_body_bytes: int = Field(default=64 * 1024, description="Largest callback body accepted.")
    timestamp_window_seconds: int = Field(
        default=300, description="Pushes whose timestamp is further than this from now are refused."
    )

    # Alerts
    notifiers_file: Path | None = Field(
        default=None, description="YAML of Apprise channels and tags. Default: <home>/notifiers.yaml if present."
    )
    ladders_file: Path | None = Field(
        default=None, description="YAML overriding the alert ladders (rungs, fractions, escalation, repeats)."
    )
    watch_interval_seconds: int = Field(default=300, description="Deadline watcher schedule.")
    resume_retry_seconds: float = Field(
        default=5.0,
        description="How often `serve` retries resuming runs parked at a gate whose decision is recorded but "
        "whose resume failed (Prefect was down); 0 turns it off (the watcher's repair pass still does it).",
    )

    # Forecast (issue 13)
    forecast_file: Path | None = Field(
        default=None,
        description="YAML overriding the forecast's stage durations, rejection loops and risk alert tags "
        "(format: launch/domain/data/forecast.yaml).",
    )
    forecast_samples: int = Field(
        default=10_000, ge=100,
        description="Monte Carlo samples per forecast (status, artifact, the watcher's commitment risk check).",
    )

    @property
    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'store.db').resolve()}"

    def fernet_key(self) -> bytes:
        """The at-rest key: from the environment, else a key file created once in <home>."""
        if self.encryption_key is not None:
            return self.encryption_key.get_secret_value().encode()
        path = self.home / "secret.key"
        key = load_or_create_secret_file(path, lambda: base64.urlsafe_b64encode(os.urandom(32)) + b"\n").strip()
        try:
            ok = len(base64.urlsafe_b64decode(key)) == 32
        except (ValueError, TypeError):
            ok = False
        if not ok:
            raise SecretFileError(
                f"密钥文件 {path} 已损坏（不是 32 字节的 Fernet 密钥）/ the key file {path} is damaged "
                "(not a 32-byte urlsafe-base64 Fernet key); restore it from a backup"
            )
        return key

    def derived_secret(self, purpose: str) -> bytes:
        """A per-purpose secret (the blind index) derived from the at-rest key. Not for links."""
        return hashlib.sha256(purpose.encode() + b"\x00" + self.fernet_key()).digest()

    def link_keys(self):
        """The link secrets (``launch.domain.link_keys.LinkKeys``), newest first; never derived from the
        at-rest key. From link_secrets, else link_secret (key id k0), else <home>/link-secrets."""
        from launch.domain.link_keys import LinkKeys

        if self.link_secrets is not None:
            return LinkKeys.parse(self.link_secrets.get_secret_value())
        if self.link_secret is not None:
            return LinkKeys([("k0", self.link_secret.get_secret_value())])
        path = self.home / "link-secrets"

        def fresh() -> bytes:
            return f"{secrets.token_hex(4)}:{secrets.token_urlsafe(32)}\n".encode("ascii")

        text = load_or_create_secret_file(path, fresh)
        try:
            return LinkKeys.parse(text.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise SecretFileError(f"链接密钥文件 {path} 无效 / the link secrets file {path} is not valid: {exc}") from None


class SecretFileError(RuntimeError):
    """A key file in <home> that must not be used (too open, not ours, damaged). "中文 / English"."""


def secure_home(home: Path) -> Path:
    """<home> created with mode 0700; one of ours that group or others may enter is
    tightened to 0700 (with a warning). A home owned by someone else is left as it is: the
    key files in it are still checked one by one."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = home.stat()
    mode = stat.S_IMODE(st.st_mode)
    if hasattr(os, "getuid") and st.st_uid == os.getuid() and mode & 0o077:
        os.chmod(home, mode & 0o700)
        log.warning("tightened %s from %o to %o (it holds key files)", home, mode, mode & 0o700)
    return home


def _check_key_file(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise SecretFileError(f"密钥文件 {path} 不是普通文件 / the key file {path} is not a regular file")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise SecretFileError(
            f"密钥文件 {path} 的属主（uid {st.st_uid}）不是当前用户（uid {os.getuid()}），拒绝使用 / the key file "
            f"{path} is owned by uid {st.st_uid}, not the current user (uid {os.getuid()}): refused. A key file "
            "must belong to the user that runs weapp-launch"
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise SecretFileError(
            f"密钥文件 {path} 的权限 {mode:04o} 允许同组或其他用户访问，拒绝使用；请执行 chmod 600 {path} / the key "
            f"file {path} has mode {mode:04o}, which lets group or others access it: refused. A key file must be "
            f"mode 0600 or stricter (chmod 600 {path})"
        )


def _read_key_file(path: Path) -> bytes:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SecretFileError(f"密钥文件 {path} 是符号链接，拒绝使用 / the key file {path} is a symbolic link: "
                                  "refused; put the file itself there") from None
        raise
    try:
        _check_key_file(path, os.fstat(fd))
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_or_create_secret_file(path: Path, make: Callable[[], bytes]) -> bytes:
    """The contents of key file `path`, created once if missing. Creation is atomic: the
    secret is written and synced to a mode-0600 temporary file beside it, then hard-linked
    into place, which fails if another process got there first (its file is used then), so
    a crash never leaves half a key and two processes never end up with different keys.
    Loading checks the file's owner and mode (see `_check_key_file`)."""
    secure_home(path.parent)
    if not path.exists():
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(make())
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process created it first: use that one
            except OSError:  # a file system without hard links: exclusive create, written in one call
                try:
                    out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:
                    pass
                else:
                    with os.fdopen(out, "wb") as fh:
                        fh.write(Path(tmp).read_bytes())
                        fh.flush()
                        os.fsync(fh.fileno())
            _fsync_dir(path.parent)
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
    return _read_key_file(path)


@lru_cache
def get_settings() -> Settings:
    return Settings()
