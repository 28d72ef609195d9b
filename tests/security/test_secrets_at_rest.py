"""Issue 9, item 3 (no usable link token at rest) and the secret-file and SQL-engine parts of
item 5: what is stored, and how the key files in <home> are made and read.

- after alerts are produced and delivered (first try, retry, a dead attempt), no outbox row —
  and no byte of a SQLite store file — holds a link token, while the messages sent do;
- the key files are created atomically (a process killed half-way leaves no key file), mode
  0600, in a 0700 home; a key file others may read, or that is not ours, is refused;
- the link secrets are their own, not derived from the at-rest key;
- the engine hides bound parameters (and PostgreSQL's DETAIL values) in error text.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from launch.app.links import DEAD_LINK_TEXT, LinkError, check_live, make_token, verify_token
from launch.settings import SecretFileError, Settings, load_or_create_secret_file
from launch.app.watcher import watch_once
from tests.notifiers.conftest import http_endpoint, smtp_server  # noqa: F401  (fixtures)
from tests.store.conftest import db_url, keys, pg_admin  # noqa: F401  (fixtures)
from tests.watcher.conftest import at, new_client, open_gate, use_notifiers, watch_env  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
TOKEN_IN_TEXT = re.compile(r"token=([A-Za-z0-9_.-]+)")
BARE_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,16}\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{43}")
SECOND = timedelta(seconds=1)
KEY_VARS = ("WEAPP_LAUNCH_ENCRYPTION_KEY", "WEAPP_LAUNCH_LINK_SECRETS", "WEAPP_LAUNCH_LINK_SECRET")


# --------------------------------------------------------------------------- the outbox


def _channels(smtp_server, http_endpoint) -> str:  # noqa: F811
    return f"""
channels:
  - name: ops-mail
    url: "{smtp_server.url()}"
    tags: [ops, manager]
  - name: ops-phone
    url: "{http_endpoint.url('/sms')}"
    tags: [ops, manager]
retry: {{attempts: 4, backoff_seconds: [60, 300]}}
"""


def _everything_stored(store) -> str:
    """Every value of every row of every table, as text."""
    chunks = []
    with store.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                chunks.extend(str(v) for v in row)
    return "\n".join(chunks)


def _sent_texts(smtp_server, http_endpoint) -> list[str]:  # noqa: F811
    texts = [smtp_server.inbox.text_of(m) for m in smtp_server.inbox.messages]
    texts += [p["message"] for p in http_endpoint.messages]
    return texts


def test_no_outbox_row_holds_a_usable_link_token(watch_env, smtp_server, http_endpoint, monkeypatch,  # noqa: F811
                                                 tmp_path):
    res = use_notifiers(watch_env, tmp_path, _channels(smtp_server, http_endpoint))
    store = res.store
    client_id, _ = new_client(res)
    launch = store.create_launch(client_id)
    open_gate(res, launch.id, "sms-verification", at(2026, 10, 3, 20))

    p1 = watch_once(res, at(2026, 10, 3, 20, 1), repair_runs=False)  # the notice, to both channels
    assert len(p1.sent) == 1
    http_endpoint.stop()
    t = at(2026, 10, 4, 8, 0, 30)
    p2 = watch_once(res, t, repair_runs=False)  # 12 h left: mail gets it, the gateway is down -> retry
    assert len(p2.retried) == 1
    http_endpoint.start()
    p3 = watch_once(res, t + 61 * SECOND, repair_runs=False)  # the retry renders its own fresh link
    assert len(p3.sent) == 1

    sent = _sent_texts(smtp_server, http_endpoint)
    assert len(sent) == 4
    tokens = [m.group(1) for body in sent for m in TOKEN_IN_TEXT.finditer(body)]
    assert len(tokens) >= 4 and len(set(tokens)) >= 3  # each send signed its own
    keys = res.settings.link_keys()
    for tok in tokens:  # what went out is a usable link ...
        claims = verify_token(tok, launch.id, "sms-verification", at(2026, 10, 4, 9), keys)
        assert claims.attempt == 1
    check_live(store, launch.id, "sms-verification", 1)

    stored = _everything_stored(store)  # ... and none of it is at rest
    assert "token=" not in stored and not BARE_TOKEN.search(stored)
    for tok in tokens:
        assert tok not in stored and tok.split(".")[2] not in stored
    assert "[[staff-link:" in stored  # the outbox keeps where the link goes
    if store.dialect == "sqlite":  # not even in the database files' bytes (WAL included)
        db = Path(store.engine.url.database)
        raw = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
        for tok in tokens:
            assert tok.split(".")[2].encode() not in raw

    # a decision makes the attempt's links dead; an alert sent after it says so instead
    store.record_decision(launch.id, "sms-verification", 1, outcome="verified", actor="x", channel="cli",
                          decided_at=t + 120 * SECOND)
    with pytest.raises(LinkError) as err:
        check_live(store, launch.id, "sms-verification", 1)
    assert err.value.reason == "link-used"
    mails, sms = len(smtp_server.inbox.messages), len(http_endpoint.messages)
    p4 = watch_once(res, at(2026, 10, 4, 16, 0, 30), repair_runs=False)  # 4 h left (the step is still open)
    assert len(p4.sent) == 1
    late = [smtp_server.inbox.text_of(m) for m in smtp_server.inbox.messages[mails:]]
    late += [p["message"] for p in http_endpoint.messages[sms:]]
    assert len(late) == 2
    assert late and all(DEAD_LINK_TEXT in body and "token=" not in body for body in late)


def test_the_store_refuses_an_alert_body_with_a_token(watch_env):
    store = watch_env.store
    bare = make_token("l-1", "content", 1, at(2026, 10, 4), watch_env.settings.link_keys())
    for body in ("x https://r/gates/l-1/content?token=k1.bC0x.c2ln y", "https://r/gates/l-1/content?token=bC0x.c2ln",
                 f"https://mp.weixin.qq.com/x?redirect_uri=https%3A%2F%2Fr%2Fwechat%2Ffastregistered%2Fl-1%2F{bare}"):
        with pytest.raises(ValueError, match="token"):
            store.enqueue_alert(dedupe_key=f"k-{len(body)}", rung="notice", title="t", body=body)
    assert store.list_alerts() == []


# --------------------------------------------------------------------------- key files


@pytest.fixture
def clean_env(monkeypatch):
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)


def _settings(home: Path, **kw) -> Settings:
    return Settings(_env_file=None, home=home, **kw)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_files_are_0600_in_a_0700_home_and_nothing_else_is_left(tmp_path, clean_env):
    home = tmp_path / "a" / "home"
    s = _settings(home)
    key = s.fernet_key()
    keys = s.link_keys()
    assert _mode(home) == 0o700
    assert _mode(home / "secret.key") == 0o600 and _mode(home / "link-secrets") == 0o600
    assert sorted(p.name for p in home.iterdir()) == ["link-secrets", "secret.key"]  # no temporary file left
    assert s.fernet_key() == key and s.link_keys().kids == keys.kids  # created once
    assert re.fullmatch(r"[0-9a-f]{8}:[A-Za-z0-9_-]{43}\n", (home / "link-secrets").read_text())


def test_link_secrets_are_not_derived_from_the_at_rest_key(tmp_path, clean_env):
    from cryptography.fernet import Fernet

    home = tmp_path / "home"
    a = _settings(home, encryption_key=Fernet.generate_key().decode())
    b = _settings(home, encryption_key=Fernet.generate_key().decode())
    assert a.link_keys().secret() == b.link_keys().secret()  # another at-rest key: the same link key
    assert a.link_keys().secret() not in (a.derived_secret("staff-links"), a.fernet_key())
    assert not (home / "secret.key").exists()  # the link secrets needed no at-rest key file


def test_link_secret_settings(tmp_path, clean_env, monkeypatch):
    home = tmp_path / "home"
    new, old = "n" * 32, "o" * 40
    monkeypatch.setenv("WEAPP_LAUNCH_LINK_SECRETS", f"k2:{new},k1:{old}")
    s = Settings(_env_file=None, home=home)
    keys = s.link_keys()
    assert keys.signing_kid == "k2" and keys.secret("k1") == old.encode() and not home.exists()
    monkeypatch.setenv("WEAPP_LAUNCH_LINK_SECRET", "l" * 32)
    assert Settings(_env_file=None, home=home).link_keys().kids == ("k2", "k1")  # LINK_SECRETS wins
    monkeypatch.delenv("WEAPP_LAUNCH_LINK_SECRETS")
    assert Settings(_env_file=None, home=home).link_keys().kids == ("k0",)
    monkeypatch.setenv("WEAPP_LAUNCH_LINK_SECRETS", "k1:too-short")
    with pytest.raises(ValueError, match="32"):
        Settings(_env_file=None, home=home).link_keys()


@pytest.mark.parametrize("name", ["secret.key", "link-secrets"])
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o666, 0o700 | 0o004])
def test_a_key_file_others_may_access_is_refused(tmp_path, clean_env, name, mode):
    home = tmp_path / "home"
    s = _settings(home)
    s.fernet_key(), s.link_keys()
    path = home / name
    os.chmod(path, mode)
    with pytest.raises(SecretFileError) as err:
        s.fernet_key() if name == "secret.key" else s.link_keys()
    message = str(err.value)
    assert str(path) in message and "0600" in message and f"{mode:04o}" in message and " / " in message
    os.chmod(path, 0o400)  # stricter than 0600 is fine
    s.fernet_key() if name == "secret.key" else s.link_keys()


def test_a_key_file_of_another_user_is_refused(tmp_path, clean_env, monkeypatch):
    home = tmp_path / "home"
    s = _settings(home)
    s.fernet_key()
    mine = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: mine + 4242)
    with pytest.raises(SecretFileError) as err:
        s.fernet_key()
    assert str(home / "secret.key") in str(err.value) and f"uid {mine}" in str(err.value) and " / " in str(err.value)


def test_a_key_file_that_is_a_symlink_is_refused(tmp_path, clean_env):
    home = tmp_path / "home"
    _settings(home).fernet_key()
    (home / "secret.key").rename(home / "elsewhere.key")
    (home / "secret.key").symlink_to(home / "elsewhere.key")
    with pytest.raises(SecretFileError, match="symbolic link"):
        _settings(home).fernet_key()


def test_a_damaged_key_file_is_refused_by_name(tmp_path, clean_env):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    path = home / "secret.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"half-a-ke")  # what a crash of the old non-atomic writer could leave
    os.close(fd)
    with pytest.raises(SecretFileError, match="damaged"):
        _settings(home).fernet_key()


def test_a_wide_home_of_ours_is_tightened(tmp_path, clean_env, caplog):
    home = tmp_path / "home"
    home.mkdir()
    os.chmod(home, 0o755)
    with caplog.at_level(logging.WARNING, logger="weapp_launch.settings"):
        _settings(home).fernet_key()
    assert _mode(home) == 0o700
    assert any("tightened" in r.getMessage() for r in caplog.records)


def test_a_failed_creation_leaves_no_key_file(tmp_path, clean_env, monkeypatch):
    home = tmp_path / "home"
    path = home / "secret.key"

    def crash(*_a, **_k):
        raise RuntimeError("power cut")

    monkeypatch.setattr(os, "link", crash)
    with pytest.raises(RuntimeError):
        load_or_create_secret_file(path, lambda: b"x" * 44)
    assert not path.exists() and list(home.iterdir()) == []


def test_a_process_killed_while_writing_the_key_leaves_no_key_file(tmp_path, clean_env):
    """A real crash: the writer is SIGKILLed after its temporary file exists, before the
    key is in place. No secret.key appears; the next start makes a whole one."""
    home = tmp_path / "home"
    script = textwrap.dedent(f"""
        import os, time
        real = os.fsync
        def slow(fd):
            real(fd)
            print("written", flush=True)
            time.sleep(60)
        os.fsync = slow
        from launch.settings import Settings
        Settings(_env_file=None, home={str(home)!r}).fernet_key()
    """)
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "written"
        assert [p.name for p in home.iterdir()][0].startswith(".secret.key.")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
        proc.stdout.close()
    assert not (home / "secret.key").exists()
    key = _settings(home).fernet_key()
    assert len(key) == 44 and _mode(home / "secret.key") == 0o600


def test_processes_starting_at_once_share_one_key(tmp_path, clean_env):
    home = tmp_path / "home"
    script = textwrap.dedent(f"""
        import hashlib, sys, time
        from launch.settings import Settings
        s = Settings(_env_file=None, home={str(home)!r})
        while time.time() < float(sys.argv[1]):
            time.sleep(0.001)
        k = s.fernet_key(); l = s.link_keys()
        print(hashlib.sha256(k + l.secret()).hexdigest())
    """)
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    start = str(time.time() + 2.5)
    procs = [subprocess.Popen([sys.executable, "-c", script, start], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              text=True) for _ in range(6)]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(outs)) == 1 and outs[0]
    assert sorted(p.name for p in home.iterdir()) == ["link-secrets", "secret.key"]


# --------------------------------------------------------------------------- the SQL engine


def test_integrity_error_text_carries_no_parameter_values(db_url, keys):  # noqa: F811
    from launch.store import Store

    secret_value = "SECRET-VALUE-4711-身份证"
    with Store(db_url, keys.fernet, keys.index) as store:
        assert store.engine.hide_parameters
        with store.engine.begin() as conn:
            conn.execute(text("INSERT INTO nonces (scope, nonce, seen_at) VALUES (:s, :n, :t)"),
                         {"s": "test", "n": secret_value, "t": datetime.now(timezone.utc)})
        with pytest.raises(IntegrityError) as err, store.engine.begin() as conn:
            conn.execute(text("INSERT INTO nonces (scope, nonce, seen_at) VALUES (:s, :n, :t)"),
                         {"s": "test", "n": secret_value, "t": datetime.now(timezone.utc)})
        message = str(err.value)
        assert secret_value not in message and "4711" not in message and secret_value not in str(err.value.orig)
        assert "parameters hidden" in message
        with store.engine.connect() as conn:  # the row is there, only the error does not tell
            assert conn.execute(select(text("nonce")).select_from(text("nonces"))).scalar() == secret_value

