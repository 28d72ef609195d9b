"""The channels file: loading, ${ENV} expansion, routing by tag, and every rule's error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from notifiers.config import (
    Channel,
    NotifierConfig,
    NotifierConfigError,
    RetryPolicy,
    expand_env,
    load_config,
    parse_config,
)

GOOD = """\
channels:
  - name: ops-mail
    url: mailtos://user:${SMTP_PASSWORD}@smtp.example.com:587?to=ops@example.com
    tags: [ops]
  - name: ops-phone
    url: json://127.0.0.1:9000/sms
    tags: [ops, manager]
  - name: off-duty
    url: json://127.0.0.1:9001/sms
    tags: [ops]
    enabled: false
fallback_tag: ops
retry: {attempts: 4, backoff_seconds: [60, 300]}
"""


def write(tmp_path: Path, text: str, name: str = "notifiers.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def test_good_file_loads_with_env_expanded_and_routes_by_tag(tmp_path):
    cfg = load_config(write(tmp_path, GOOD), env={"SMTP_PASSWORD": "pw-from-env"})
    assert [c.name for c in cfg.channels] == ["ops-mail", "ops-phone"]  # disabled one left out
    assert "pw-from-env" in cfg.channel("ops-mail").url
    assert cfg.fallback_tag == "ops"
    assert cfg.retry == RetryPolicy(4, (60.0, 300.0))
    assert [c.name for c in cfg.channels_for(["manager"])] == ["ops-phone"]
    assert [c.name for c in cfg.channels_for(["ops", "manager"])] == ["ops-mail", "ops-phone"]
    assert cfg.channels_for(["design"]) == []
    assert cfg.tags == ("ops", "manager")


def test_channel_repr_never_shows_the_url(tmp_path):
    cfg = load_config(write(tmp_path, GOOD), env={"SMTP_PASSWORD": "pw-from-env"})
    text = repr(cfg.channel("ops-mail")) + repr(cfg)
    assert "pw-from-env" not in text
    assert "mailtos" in text  # the scheme is fine


def test_defaults_for_an_empty_file(tmp_path):
    cfg = load_config(write(tmp_path, ""))
    assert cfg.channels == [] and cfg.fallback_tag is None
    assert cfg.retry == RetryPolicy(5, (60.0, 300.0, 900.0, 3600.0))


def test_channels_can_be_added_in_code_for_a_client_contact():
    cfg = parse_config({"channels": [{"name": "ops-phone", "url": "json://127.0.0.1:9000/sms", "tags": ["ops"]}]})
    cfg.add_channel("client-c-42-hook", "json://127.0.0.1:9002/hook", ["client-c-42"])
    assert [c.name for c in cfg.channels_for(["client-c-42"])] == ["client-c-42-hook"]
    with pytest.raises(NotifierConfigError) as ei:
        cfg.add_channel("ops-phone", "json://127.0.0.1:9003/x", ["ops"])
    assert ei.value.rule == "duplicate-name" and ei.value.index == 2 and ei.value.field == "name"


def test_expand_env_literal_and_missing():
    assert expand_env("a$${B}c", {}) == "a${B}c"
    assert expand_env("${X}-${X}", {"X": "1"}) == "1-1"
    with pytest.raises(KeyError):
        expand_env("${NOPE}", {})


@pytest.mark.parametrize(
    ("entry", "field", "rule"),
    [
        ({"name": "a", "tags": ["ops"]}, "url", "missing-field"),
        ({"name": "a", "url": "json://127.0.0.1:1/x"}, "tags", "missing-field"),
        ({"url": "json://127.0.0.1:1/x", "tags": ["ops"]}, "name", "missing-field"),
        ({"name": "Ops Mail", "url": "json://127.0.0.1:1/x", "tags": ["ops"]}, "name", "bad-name"),
        ({"name": "json://x", "url": "json://127.0.0.1:1/x", "tags": ["ops"]}, "name", "bad-name"),
        ({"name": "a", "url": "no-scheme-here", "tags": ["ops"]}, "url", "bad-url"),
        ({"name": "a", "url": "nosuchservice://secret-token@host", "tags": ["ops"]}, "url", "url-not-recognised"),
        ({"name": "a", "url": "json://127.0.0.1:1/x", "tags": []}, "tags", "bad-tags"),
        ({"name": "a", "url": "json://127.0.0.1:1/x", "tags": ["Ops Team"]}, "tags", "bad-tag"),
        ({"name": "a", "url": "json://127.0.0.1:1/x", "tags": ["ops"], "color": "red"}, "color", "unknown-key"),
        ({"name": "a", "url": "json://${UNSET_VAR_FOR_TEST}/x", "tags": ["ops"]}, "url", "env-not-set"),
        ({"name": "a", "url": "json://127.0.0.1:1/x", "tags": ["ops"], "enabled": "yes"}, "enabled", "bad-bool"),
    ],
)
def test_bad_channel_entries_name_file_index_field_and_rule(tmp_path, entry, field, rule):
    good = {"name": "ok", "url": "json://127.0.0.1:1/ok", "tags": ["ops"]}
    import yaml

    p = write(tmp_path, yaml.safe_dump({"channels": [good, entry]}, allow_unicode=True))
    with pytest.raises(NotifierConfigError) as ei:
        load_config(p, env={})
    err = ei.value
    assert (err.index, err.field, err.rule) == (1, field, rule)
    msg = str(err)
    assert str(p) in msg
    assert "第 2 项" in msg and "entry #2" in msg  # Chinese and English
    assert f"[{rule}]" in msg
    assert "secret-token" not in msg  # a URL is never echoed


def test_duplicate_channel_names(tmp_path):
    p = write(tmp_path, """\
        channels:
          - {name: a, url: "json://127.0.0.1:1/x", tags: [ops]}
          - {name: a, url: "json://127.0.0.1:2/x", tags: [ops]}
        """)
    with pytest.raises(NotifierConfigError, match=r"渠道名 a 重复.*appears twice") as ei:
        load_config(p)
    assert ei.value.index == 1


@pytest.mark.parametrize(
    ("doc", "field", "rule"),
    [
        ("- a\n- b\n", None, "not-a-mapping"),
        ("channels: {a: 1}\n", "channels", "not-a-list"),
        ("chanels: []\n", "chanels", "unknown-key"),
        ("channels:\n  - {name: a, url: 'json://127.0.0.1:1/x', tags: [ops]}\nfallback_tag: pager\n",
         "fallback_tag", "fallback-without-channel"),
        ("fallback_tag: 'Not A Tag'\n", "fallback_tag", "bad-tag"),
        ("retry: {attempts: 0}\n", "retry.attempts", "bad-attempts"),
        ("retry: {attempts: 3, backoff_seconds: [60, -1]}\n", "retry.backoff_seconds", "bad-backoff"),
        ("retry: {attempts: 3, backoff_seconds: []}\n", "retry.backoff_seconds", "bad-backoff"),
        ("retry: {attempts: 3, jitter: true}\n", "retry.jitter", "unknown-key"),
        ("retry: 5\n", "retry", "bad-retry"),
    ],
)
def test_bad_top_level_values(tmp_path, doc, field, rule):
    p = write(tmp_path, doc)
    with pytest.raises(NotifierConfigError) as ei:
        load_config(p)
    assert (ei.value.field, ei.value.rule) == (field, rule)
    assert str(p) in str(ei.value)


def test_yaml_syntax_error_names_the_line_but_never_echoes_a_secret(tmp_path):
    p = write(tmp_path, "channels:\n  - name: a\n    url: mailtos://u:TOPSECRET@h.example.com\n    tags: [ops\n")
    with pytest.raises(NotifierConfigError) as ei:
        load_config(p)
    assert ei.value.rule == "yaml-syntax"
    assert "TOPSECRET" not in str(ei.value)
    assert "line" in str(ei.value)


def test_unreadable_file(tmp_path):
    with pytest.raises(NotifierConfigError, match="无法读取文件.*cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_config_is_plain_data():
    cfg = NotifierConfig([Channel("x", "json://127.0.0.1:1/x", ("ops",))])
    assert cfg.channels_for(["ops"])[0].scheme == "json"
