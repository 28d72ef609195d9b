"""All settings, from environment variables prefixed WEAPP_LAUNCH_ (or a .env file).

Every field here is documented in the README's settings table; keep the two in step.
"""

from __future__ import annotations

import base64
import hashlib
import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEAPP_LAUNCH_", env_file=".env", extra="ignore")

    home: Path = Field(
        default=Path(".weapp-launch"),
        description="Working folder: store database, secret key file, Prefect home of the local stack.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the store. Default: SQLite file <home>/store.db. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/db.",
    )
    encryption_key: SecretStr | None = Field(
        default=None,
        description="Fernet key (urlsafe base64, 32 bytes) encrypting ID numbers and phones at rest. "
        "Default: generated once into <home>/secret.key (mode 0600).",
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

    # Prefect
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
    link_secret: SecretStr | None = Field(
        default=None, description="HMAC secret for signed staff links. Default: derived from the encryption key."
    )
    link_ttl_hours: int = Field(default=72, description="How long a signed staff link stays valid.")
    wechat_token: SecretStr | None = Field(default=None, description="Token of the WeChat third-party platform push.")
    wechat_encoding_aes_key: SecretStr | None = Field(
        default=None, description="EncodingAESKey (43 characters) of the WeChat push, for AES safe mode."
    )
    wechat_component_appid: str | None = Field(
        default=None, description="Third-party platform app id; decrypted messages must carry it."
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
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(base64.urlsafe_b64encode(os.urandom(32)))
        return path.read_bytes().strip()

    def derived_secret(self, purpose: str) -> bytes:
        """A per-purpose secret (blind index, signed links) derived from the at-rest key."""
        return hashlib.sha256(purpose.encode() + b"\x00" + self.fernet_key()).digest()

    def link_key(self) -> bytes:
        if self.link_secret is not None:
            return self.link_secret.get_secret_value().encode()
        return self.derived_secret("staff-links")


@lru_cache
def get_settings() -> Settings:
    return Settings()
