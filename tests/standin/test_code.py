"""Code, review and release: WeChat's errcodes and quirks, and the call log."""

from __future__ import annotations

import pytest

COMMIT = {"template_id": 7, "ext_json": '{"extAppid": "x"}', "user_version": "1.0.0", "user_desc": "first"}


def committed(standin):
    app = standin.authorized()
    assert standin.call("/wxa/commit", app.token, COMMIT)["errcode"] == 0
    return app


def test_submit_audit_needs_a_commit_then_refuses_a_second_review(standin):
    app = standin.authorized()
    assert standin.call("/wxa/submit_audit", app.token, {})["errcode"] == 85086
    assert standin.call("/wxa/commit", app.token, {**COMMIT, "ext_json": {"not": "a string"}})["errcode"] == 47001
    assert standin.call("/wxa/commit", app.token, COMMIT)["errcode"] == 0
    first = standin.call("/wxa/submit_audit", app.token, {"item_list": [{"address": "pages/index"}]})
    assert first["errcode"] == 0 and first["auditid"]
    again = standin.call("/wxa/submit_audit", app.token, {})
    assert again["errcode"] == 85009 and again["errmsg"].startswith("already submit a version under auditing")
    latest = standin.call("/wxa/get_latest_auditstatus", app.token)
    assert latest["status"] == 2 and latest["auditid"] == first["auditid"] and latest["user_version"] == "1.0.0"
    assert standin.calls("/wxa/submit_audit", app.appid) == 3  # 85086, the review, 85009


@pytest.mark.parametrize("standin_config", [{"privacy_scan_seconds": 60}], indirect=True)
def test_61039_while_the_privacy_scan_runs(standin):
    app = committed(standin)
    assert standin.call("/wxa/submit_audit", app.token, {})["errcode"] == 61039
    standin.advance(seconds=61, finish=False)
    assert standin.call("/wxa/submit_audit", app.token, {})["errcode"] == 0


@pytest.mark.parametrize("standin_config", [{"audit_quota_per_month": 1}], indirect=True)
def test_the_monthly_review_quota(standin):
    a, b = committed(standin), committed(standin)
    assert standin.call("/wxa/submit_audit", a.token, {})["errcode"] == 0
    assert standin.call("/wxa/submit_audit", b.token, {})["errcode"] == 85085  # the quota is the platform's


def test_a_scripted_rejection_then_a_pass(standin):
    app = committed(standin)
    standin.control("script", appid=app.appid, kind="review", result="reject", reason="类目不符")
    audit = standin.call("/wxa/submit_audit", app.token, {})["auditid"]
    standin.advance(appid=app.appid, kind="review")
    status = standin.call("/wxa/get_auditstatus", app.token, {"auditid": audit})
    assert status["status"] == 1 and status["reason"] == "类目不符" and status["ScreenShot"]
    assert standin.call("/wxa/release", app.token, {})["errcode"] == 85020
    assert standin.call("/wxa/get_auditstatus", app.token, {"auditid": 1})["errcode"] == 85012
    second = standin.call("/wxa/submit_audit", app.token, {"feedback_info": "已调整类目"})["auditid"]
    standin.advance()
    assert standin.call("/wxa/get_auditstatus", app.token, {"auditid": second})["status"] == 0
    kinds = [p["kind"] for p in standin.pushes() if p["appid"] == app.appid]
    assert kinds[-2:] == ["weapp_audit_fail", "weapp_audit_success"]


@pytest.mark.parametrize("standin_config", [{"review_seconds": 0.2}], indirect=True)
def test_the_clock_finishes_a_review(standin):
    import time

    app = committed(standin)
    standin.call("/wxa/submit_audit", app.token, {})
    deadline = time.monotonic() + 5
    while standin.call("/wxa/get_latest_auditstatus", app.token)["status"] == 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert standin.call("/wxa/get_latest_auditstatus", app.token)["status"] == 0


def test_release_quirks(standin):
    app = committed(standin)
    assert standin.call("/wxa/release", app.token, {})["errcode"] == 85019  # nothing reviewed yet
    standin.call("/wxa/submit_audit", app.token, {})
    assert standin.call("/wxa/release", app.token, {})["errcode"] == 85020  # still in review
    standin.advance()
    assert standin.call("/wxa/release", app.token, content=b"")["errcode"] == 44002  # no body at all
    assert standin.call("/wxa/release", app.token, {"version": "1.0.0"})["errcode"] == 44002  # not `{}`
    assert standin.call("/wxa/release", app.token, content=b"{", headers={"Content-Type": "application/json"})[
        "errcode"] == 47001
    assert standin.call("/wxa/release", app.token, {})["errcode"] == 0
    assert standin.call("/wxa/release", app.token, {})["errcode"] == 85052
    assert standin.state(app.appid)["releases"][0]["version"] == "1.0.0"
    assert standin.calls("/wxa/release", app.appid) == 7


def test_gray_release_and_revert(standin):
    app = committed(standin)
    standin.call("/wxa/submit_audit", app.token, {})
    standin.advance()
    assert standin.call("/wxa/grayrelease", app.token, {"gray_percentage": 10})["errcode"] == 85079  # none live
    assert standin.call("/wxa/revertcoderelease", app.token)["errcode"] == 87012
    assert standin.call("/wxa/release", app.token, {})["errcode"] == 0
    standin.call("/wxa/commit", app.token, {**COMMIT, "user_version": "1.0.1"})
    standin.call("/wxa/submit_audit", app.token, {})
    assert standin.call("/wxa/grayrelease", app.token, {"gray_percentage": 10})["errcode"] == 85080  # in review
    standin.advance()
    assert standin.call("/wxa/grayrelease", app.token, {"gray_percentage": 0})["errcode"] == 85081
    assert standin.call("/wxa/grayrelease", app.token, {"gray_percentage": 20})["errcode"] == 0
    assert standin.call("/wxa/grayrelease", app.token, {"gray_percentage": 10})["errcode"] == 85082
    assert standin.call("/wxa/revertcoderelease", app.token)["errcode"] == 87011  # while gray
    assert standin.call("/wxa/release", app.token, {})["errcode"] == 0
    assert standin.call("/wxa/revertcoderelease", app.token)["errcode"] == 0
    assert standin.call("/wxa/revertcoderelease", app.token)["errcode"] == 87012  # nothing older left


@pytest.mark.parametrize("standin_config", [{"undo_per_day": 1}], indirect=True)
def test_undocodeaudit_and_its_limit(standin):
    app = committed(standin)
    assert standin.call("/wxa/undocodeaudit", app.token)["errcode"] == 85020  # nothing in review
    standin.call("/wxa/submit_audit", app.token, {})
    assert standin.call("/wxa/undocodeaudit", app.token)["errcode"] == 0
    assert standin.call("/wxa/get_latest_auditstatus", app.token)["status"] == 3
    standin.call("/wxa/submit_audit", app.token, {})
    assert standin.call("/wxa/undocodeaudit", app.token)["errcode"] == 87013


def test_trial_qr_code_is_an_image(standin):
    app = committed(standin)
    r = standin.call("/wxa/get_qrcode", app.token, params={"path": "pages/index?x=1"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG"
    assert standin.call("/wxa/get_qrcode", "bad")["errcode"] == 40001  # JSON on error
