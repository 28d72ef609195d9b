"""errcode -> typed errors, and the words they carry (pure)."""

from __future__ import annotations

import pytest

from launch.wechat.platform.code import ReleaseBody
from launch.wechat.platform.client import _encode
from launch.wechat.platform.errors import (
    DailyQuotaExceeded,
    IcpError,
    IcpFilingRejected,
    RateLimited,
    ReleaseError,
    ReviewError,
    TokenInvalid,
    WeChatApiError,
    WeChatBusy,
    error_for,
    rejected_from,
    scrub,
)
from launch.wechat.platform.icp import map_hints


@pytest.mark.parametrize(
    ("code", "cls", "retryable"),
    [
        (40001, TokenInvalid, False), (42001, TokenInvalid, False), (40014, TokenInvalid, False),
        (-1, WeChatBusy, True), (45009, DailyQuotaExceeded, True), (45011, RateLimited, True),
        (9402202, RateLimited, True),
        (85009, ReviewError, False), (85085, ReviewError, False), (85086, ReviewError, False),
        (86002, ReviewError, False), (85008, ReviewError, False), (61039, ReviewError, False),
        (44002, ReleaseError, False), (85019, ReleaseError, False), (85020, ReleaseError, False),
        (85052, ReleaseError, False), (12345, WeChatApiError, False),
    ],
)
def test_errcode_families(code, cls, retryable):
    err = error_for(code, "some errmsg rid: 1234")
    assert type(err) is cls
    assert err.errcode == code and err.retryable is retryable
    assert "rid: 1234" in str(err)  # WeChat's request id is kept for support


def test_messages_are_bilingual_and_name_the_rule():
    err = error_for(85009, "already submitted")
    assert "审核中" in err.zh and "under review" in err.en
    assert err.zh in str(err) and err.en in str(err) and "85009" in str(err)
    assert "{}" in error_for(44002).en


def test_unknown_icp_codes_are_icp_errors():
    assert isinstance(error_for(86328, path="/wxa/icp/query_icp_verifytask"), IcpError)


def test_tokens_never_reach_a_message():
    text = "invalid url https://x/y?access_token=SECRET1&component_access_token=SECRET2 ticket=SECRET3"
    assert "SECRET" not in scrub(text)
    err = error_for(40001, text)
    assert "SECRET" not in str(err) and "SECRET" not in err.errmsg


def test_hints_become_fields_and_map_to_ours():
    err = rejected_from(86202, "invalid args", [
        {"errcode": 40097, "err_field": "icp_subject.principal_info.mobile", "errmsg": "手机号格式错误"},
        {"errcode": 40097, "err_field": "icp_applets.base_info.comment", "errmsg": "备注少于20字"},
        {"errcode": 40097, "err_field": "icp_materials.other", "errmsg": "x"},
    ])
    assert isinstance(err, IcpFilingRejected)
    assert err.fields() == {"icp_subject.principal_info.mobile": ["手机号格式错误"],
                            "icp_applets.base_info.comment": ["备注少于20字"], "icp_materials.other": ["x"]}
    assert "icp_subject.principal_info.mobile" in err.en
    mapped = map_hints(err, {"icp_subject.principal_info": "principal", "icp_applets.base_info.comment": "ICP-REMARK"})
    assert set(mapped) == {"principal", "ICP-REMARK", "icp_materials.other"}


def test_release_body_is_always_the_empty_object():
    assert _encode(ReleaseBody()) == b"{}"
    assert _encode(None) == b"{}"  # no POST goes out empty
    with pytest.raises(ValueError):
        ReleaseBody(anything=1)
