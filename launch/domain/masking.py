"""Masking of personal data for anything a person sees outside the encrypted store.

ID numbers, phones, licence numbers and emails never appear in Prefect parameters,
inputs, logs, artifacts or alerts in the clear; these helpers are the one place
that decides how they look instead.
"""

from __future__ import annotations

import re

_DIGITS_OR_X = re.compile(r"[0-9Xx]")


def mask_id_number(value: str | None) -> str:
    """440106199001011234 -> 440106********1234 (region kept, birth date hidden)."""
    if not value:
        return ""
    v = value.strip()
    if len(v) <= 10:
        return "*" * len(v)
    return v[:6] + "*" * (len(v) - 10) + v[-4:]


def mask_phone(value: str | None) -> str:
    """13812345678 -> 138****5678; +8613812345678 -> +86138****5678."""
    if not value:
        return ""
    v = re.sub(r"[\s-]", "", value.strip())
    prefix = ""
    if v.startswith("+86"):
        prefix, v = "+86", v[3:]
    if len(v) < 7:
        return prefix + "*" * len(v)
    return prefix + v[:3] + "*" * (len(v) - 7) + v[-4:]


def mask_licence(value: str | None) -> str:
    """Unified social credit code or licence number: keep 4 leading and 2 trailing characters."""
    if not value:
        return ""
    v = value.strip()
    if len(v) <= 6:
        return "*" * len(v)
    return v[:4] + "*" * (len(v) - 6) + v[-2:]


def mask_email(value: str | None) -> str:
    """zhang.san@example.com -> z***@example.com."""
    if not value:
        return ""
    local, sep, domain = value.strip().partition("@")
    if not sep:
        return mask_licence(value)
    return (local[:1] + "***" if local else "***") + "@" + domain


def mask_name(value: str | None) -> str:
    """张三丰 -> 张**; a person's name is shown by surname only."""
    if not value:
        return ""
    v = value.strip()
    return v[:1] + "*" * (len(v) - 1)


# Patterns for scrubbing free text (log lines, reasons typed by staff, alert bodies).
_ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[0-9Xx])(?![0-9A-Za-z])")
_PHONE_RE = re.compile(r"(?<!\d)(\+?86)?(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_USCC_RE = re.compile(r"(?<![0-9A-Z])([0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10})(?![0-9A-Z])")


def scrub_text(text: str) -> str:
    """Mask anything in free text that looks like an ID number, a mobile or a credit code."""
    text = _ID_RE.sub(lambda m: m.group(1) + "********" + m.group(3)[-4:], text)
    text = _USCC_RE.sub(lambda m: mask_licence(m.group(1)), text)
    text = _PHONE_RE.sub(lambda m: (m.group(1) or "") + m.group(2) + "****" + m.group(4), text)
    return text
