"""Masking of personal data for anything a person sees outside the encrypted store.

ID numbers, phones, licence numbers and emails never appear in Prefect parameters,
inputs, logs, artifacts or alerts in the clear; these helpers are the one place
that decides how they look instead.
"""

from __future__ import annotations

import re

import phonenumbers
from stdnum.cn import ric, uscc

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


# --------------------------------------------------------------------------- free text typed by people
#
# What staff type into a gate form (who decided, a note, a rejection reason, feedback)
# may hold anyone's phone or ID number. The store keeps it as typed; every copy handed
# to Prefect (Resume input, task results, logs, artifacts) goes through
# :func:`scrub_free_text` first. Numbers are found by what they are (a valid phone number
# for mainland China, an ID number with a valid birth date, a credit code with a valid
# check character, an email), not by digit counts alone, so
# dates, amounts, filing numbers and our own ids stay readable; :func:`scrub_text` runs
# after it as a last guard. A scrubbed text is never longer than the original, so it
# fits the same form limits.

# Full-width ASCII (what a Chinese input method types: １３８…, ＋, －, ＠) and the
# ideographic space, mapped one to one so positions found in the folded text are
# positions in the original.
_FOLD = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

_ID_CANDIDATE = re.compile(
    r"(?<![0-9A-Za-z])(\d{6}[ -]?\d{8}[ -]?\d{3}[0-9Xx]|\d{6}[ -]?\d{6}[ -]?\d{3})(?![0-9A-Za-z])"
)
_CODE_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])([0-9A-Za-z]{18})(?![0-9A-Za-z])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_MOBILE_TYPES = frozenset(
    {
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        phonenumbers.PhoneNumberType.PERSONAL_NUMBER,
        phonenumbers.PhoneNumberType.PAGER,
    }
)


def _valid(module, number: str) -> bool:
    try:
        return bool(module.validate(number))
    except Exception:  # noqa: BLE001 - stdnum's cn.ric raises KeyError for some region codes, too
        return False


def _id_number_in(candidate: str) -> str | None:
    """The ID number written in `candidate` (spaces and dashes allowed), if it is one."""
    digits = re.sub(r"[ -]", "", candidate).upper()
    if len(digits) == 15:  # first-generation card: YYMMDD, no check digit; region and date checked
        body = digits[:6] + "19" + digits[6:]
        return digits if _valid(ric, body + ric.calc_check_digit(body + "0")) else None
    if _valid(ric, digits):
        return digits
    # A mistyped check digit (or a region code stdnum does not list) still leaves a
    # person's birth date: masked all the same.
    try:
        born = ric.get_birth_date(digits)
    except Exception:  # noqa: BLE001 - not a date: not an ID number
        return None
    return digits if 1900 <= born.year <= 2100 else None


def _mask_phone_text(raw: str) -> str:
    """+86 138 1234 5678 -> +86138****5678; 020-12345678 -> 020****5678."""
    digits = re.sub(r"\D", "", raw)
    compact = ("+" if raw.lstrip().startswith("+") else "") + digits
    if len(digits) <= 8:
        return "*" * (len(compact) - 4) + compact[-4:]
    return compact[:-8] + "****" + compact[-4:]


def _mask_email_text(raw: str) -> str:
    local, _, domain = raw.partition("@")
    return (local[:1] + "***" if len(local) >= 4 else "*" * len(local)) + "@" + domain


def _phone_spans(folded: str) -> list[tuple[int, int, str]]:
    spans = []
    for match in phonenumbers.PhoneNumberMatcher(folded, "CN", leniency=phonenumbers.Leniency.VALID):
        raw, start, end = match.raw_string, match.start, match.end
        if not (raw.startswith("(") and ")" in raw):  # "(020) 1234 5678" is masked whole
            # "（138-1234-5678）": the brackets around the number are not part of it
            lead = len(raw) - len(raw.lstrip("([（【 "))
            start += lead
            raw = raw[lead:]
        core = raw.lstrip("(")
        explicit = core.startswith(("+", "0"))  # a trunk or international prefix: a phone, whatever its type
        if explicit or phonenumbers.number_type(match.number) in _MOBILE_TYPES:
            spans.append((start, end, _mask_phone_text(core)))
    return spans


def scrub_free_text(text: str | None) -> str:
    """Mask phone numbers, ID numbers, emails and credit codes in text a person typed.

    "王经理 +86 138 1234 5678" -> "王经理 +86138****5678";
    "身份证440106199001011234" -> "身份证440106********1234". Dates, amounts, filing
    numbers (粤B2-20090059-1626X) and ids (l-…, wx…) are left as they are.
    """
    if not text:
        return "" if text is None else text
    text = str(text)
    folded = text.translate(_FOLD)
    spans: list[tuple[int, int, str]] = []
    spans += [(m.start(), m.end(), _mask_email_text(m.group(0))) for m in _EMAIL.finditer(folded)]
    for m in _ID_CANDIDATE.finditer(folded):
        number = _id_number_in(m.group(1))
        if number:
            spans.append((m.start(1), m.end(1), mask_id_number(number)))
    for m in _CODE_CANDIDATE.finditer(folded):
        code = m.group(1).upper()
        if _valid(uscc, code):
            spans.append((m.start(1), m.end(1), mask_licence(code)))
    spans += _phone_spans(folded)
    # Earliest first, the longest of those that start together; a span inside one taken is dropped.
    out, pos = [], 0
    for start, end, masked in sorted(spans, key=lambda s: (s[0], -(s[1] - s[0]))):
        if start < pos:
            continue
        out.append(text[pos:start])
        out.append(masked)
        pos = end
    out.append(text[pos:])
    return scrub_text("".join(out))


# Fields of a gate form that hold identifiers checked by pattern, or a fixed choice: left as
# they are. Every other text field (decided_by, note, reason, feedback, version, …) is free text.
STRUCTURED_FORM_FIELDS = frozenset({"outcome", "appid", "original_id", "filing_number", "screenshots"})


def scrub_form_data(data: dict | None) -> dict:
    """A copy of a gate form's data (a decision's payload, a Resume input) fit for Prefect:
    every free-text value scrubbed. The store keeps the original."""
    out = {}
    for key, value in (data or {}).items():
        if key in STRUCTURED_FORM_FIELDS:
            out[key] = value
        elif isinstance(value, str):
            out[key] = scrub_free_text(value)
        elif isinstance(value, list):
            out[key] = [scrub_free_text(v) if isinstance(v, str) else v for v in value]
        else:
            out[key] = value
    return out
