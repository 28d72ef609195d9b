"""Scrubbing free text staff type (who decided, notes, reasons) before Prefect sees it."""

from __future__ import annotations

from launch.domain.catalogue import default_catalogue

import random

import pytest
from stdnum.cn import ric, uscc


from launch.domain.masking import (
    STRUCTURED_FORM_FIELDS,
    mask_id_number,
    mask_phone,
    scrub_form_data,
    scrub_free_text,
    scrub_text,
)


def _id_number(body17: str) -> str:
    return body17 + ric.calc_check_digit(body17 + "0")  # stdnum wants a placeholder check digit


ID = _id_number("44010619900307123")
ID_X = next(
    n for n in (_id_number(f"11010519491231{i:03d}") for i in range(1000)) if n.endswith("X")
)
CODE = "91440101MA5C0000" + "0" + uscc.calc_check_digit("91440101MA5C00000")


def test_sample_values_are_valid():
    assert ric.is_valid(ID) and ric.is_valid(ID_X) and ID_X.endswith("X")
    assert uscc.is_valid(CODE)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("13812345678", "138****5678"),
        ("电话13812345678请回电", "电话138****5678请回电"),
        ("+86 138 1234 5678", "+86138****5678"),
        ("+8613812345678", "+86138****5678"),
        ("0086 138-1234-5678", "0086138****5678"),
        ("138-1234-5678", "138****5678"),
        ("138 1234 5678", "138****5678"),
        ("王经理（138-1234-5678）", "王经理（138****5678）"),
        ("手机：１３８１２３４５６７８。", "手机：138****5678。"),  # full-width digits from a Chinese IME
        ("座机 020-12345678", "座机 020****5678"),
        ("tel +86-20-1234-5678", "tel +8620****5678"),
    ],
)
def test_phone_numbers_are_masked(text, expected):
    assert scrub_free_text(text) == expected


def test_id_numbers_are_masked():
    assert scrub_free_text(f"身份证号{ID}，请核对") == f"身份证号{mask_id_number(ID)}，请核对"
    assert scrub_free_text(f"ID {ID_X}") == f"ID {mask_id_number(ID_X)}"
    assert scrub_free_text(f"ID {ID_X.lower()}") == f"ID {mask_id_number(ID_X)}"
    spaced = f"{ID[:6]} {ID[6:14]} {ID[14:]}"
    assert scrub_free_text(f"证件 {spaced} 已核") == f"证件 {mask_id_number(ID)} 已核"
    dashed = f"{ID[:6]}-{ID[6:14]}-{ID[14:]}"
    assert ID[-4:] in scrub_free_text(dashed) and ID[6:14] not in scrub_free_text(dashed)
    # A mistyped check digit still tells region and birth date: masked all the same.
    wrong = ID[:-1] + ("0" if ID[-1] != "0" else "1")
    assert wrong[6:14] not in scrub_free_text(f"证件 {wrong[:6]} {wrong[6:14]} {wrong[14:]}")
    # First-generation 15-digit card (YYMMDD, no check digit).
    old = "440106900307123"
    assert scrub_free_text(f"旧证{old}") == f"旧证{mask_id_number(old)}"


def test_emails_and_credit_codes_are_masked():
    assert scrub_free_text("邮件 zhang.san@example.com 联系") == "邮件 z***@example.com 联系"
    assert scrub_free_text("13812345678@qq.com") == "1***@qq.com"
    assert scrub_free_text("a@b.cn") == "*@b.cn"
    assert scrub_free_text(f"统一社会信用代码{CODE}") == f"统一社会信用代码{CODE[:4]}{'*' * 12}{CODE[-2:]}"


def test_several_numbers_in_one_chinese_note():
    note = f"客户张先生（身份证 {ID}）电话 +86 139-8765-4321，备用 13712340004，邮箱 zs@example.cn"
    out = scrub_free_text(note)
    for raw in (ID, "139-8765-4321", "98765", "13712340004", "zs@"):
        assert raw not in out
    assert mask_id_number(ID) in out and "+86139****4321" in out and "137****0004" in out
    assert out.startswith("客户张先生（身份证 ") and "z*@example.cn" not in out  # 2-char local: all stars
    assert "**@example.cn" in out


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-21 09:30 完成",
        "2026年11月21日",
        "20261121",
        "备案号 粤B2-20090059-1626X 已下发",
        "京ICP备2023012345号-1X",
        "l-1a2b3c4d5e / c-0f9e8d7c6b",
        "run 3f2a9c1e-8b7d-4e6f-9a0b-1c2d3e4f5a6b",
        "金额 ¥13,800.00，尾款 13800 元，合计 1380000 元",
        "版本 1.2.3（构建 20261121.4）",
        "AppID wxd1e2f3a4b5c6d7e8，原始 ID gh_0123456789ab",
        "第 3 次驳回，等待 20 个工作日",
        "",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert scrub_free_text(text) == text


def test_scrubbing_is_idempotent_and_never_lengthens():
    rng = random.Random(7)
    samples = [
        f"王经理 +86 138 1234 5678 {ID} a@b.cn {CODE}",
        "(020) 1234 5678",
        "8613812345678",
        "x@y.io 和 ab@cd.io",
    ]
    for _ in range(200):
        body = f"{rng.randint(110000, 659999)}{rng.randint(1950, 2010)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        samples.append(f"备注{_id_number(body + str(rng.randint(100, 999)))}，电话1{rng.randint(3, 9)}"
                       f"{rng.randint(100000000, 999999999)}")
    for text in samples:
        once = scrub_free_text(text)
        assert scrub_free_text(once) == once
        assert len(once) <= len(text)


def test_none_and_legacy_guard():
    assert scrub_free_text(None) == ""
    # Whatever the structured pass misses, the old digit-count guard still masks.
    assert scrub_free_text("x" + "123456789012345678") == scrub_text("x123456789012345678")


def test_form_data_scrubs_free_text_only():
    data = {
        "decided_by": "李四 13812345678",
        "outcome": "approved",
        "note": f"证件{ID}",
        "reason": "电话 +86 139 8765 4321",
        "feedback": "联系 zhang@example.com",
        "filing_number": "粤B2-20090059-1626X",
        "appid": "wx13812345678abcde",  # a made-up appid with a phone-like run: left alone
        "screenshots": ["13812345678"],
        "version": "1.0.0",
    }
    out = scrub_form_data(data)
    assert out["decided_by"] == "李四 138****5678"
    assert out["note"] == f"证件{mask_id_number(ID)}"
    assert out["reason"] == "电话 +86139****4321"
    assert out["feedback"] == "联系 z***@example.com"
    for key in ("outcome", "filing_number", "appid", "screenshots", "version"):
        assert out[key] == data[key]
    assert data["decided_by"] == "李四 13812345678"  # a copy: the caller's data is unchanged
    assert scrub_form_data(None) == {}


def test_every_form_field_is_either_structured_or_scrubbed():
    """A new free-text field is scrubbed by default; this names the ones that are not."""
    fields = {name for form in {g.form for g in default_catalogue().gates.values()} for name in form.model_fields}
    assert STRUCTURED_FORM_FIELDS <= fields | {"screenshots"}
    assert {"decided_by", "note", "reason", "feedback"} <= fields - STRUCTURED_FORM_FIELDS


def test_masks_match_the_existing_formats():
    assert scrub_free_text("13812345678") == mask_phone("13812345678")
    assert scrub_free_text("+8613812345678") == mask_phone("+8613812345678")
    assert scrub_free_text(ID) == mask_id_number(ID)
