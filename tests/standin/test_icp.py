"""ICP filing: entrance info, face-check tasks (24 h notice, 3-day life), media, the
application with hints[], the review stages, cancel, look-ups."""

from __future__ import annotations

from devtools.wechat_standin.lookups import sample_filing


def face_passed(standin, app) -> str:
    task = standin.call("/wxa/icp/create_icp_verifytask", app.token, content=b"")["task_id"]
    standin.advance(appid=app.appid, kind="face")
    return task


def media(standin, app) -> str:
    answer = standin.call("/wxa/icp/upload_icp_media", app.token, method="POST", data={
        "type": "image", "certificate_type": "2", "icp_order_field": "icp_subject.principal_info.certificate_photo_front"},
        files={"media": ("front.jpg", b"\xff\xd8\xff-jpeg-bytes", "image/jpeg")})
    assert answer["errcode"] == 0 and answer["type"] == "image" and answer["create_time"], answer
    return answer["media_id"]


def test_entrance_info_starts_not_filed(standin):
    app = standin.authorized()
    info = standin.call("/wxa/icp/get_icp_entrance_info", app.token)["info"]
    assert info == {"status": 1024, "is_canceling": False, "available": 1}


def test_face_task_result_and_push(standin):
    app = standin.authorized()
    task = standin.call("/wxa/icp/create_icp_verifytask", app.token, {"along_with_auth": True})["task_id"]
    assert standin.call("/wxa/icp/query_icp_verifytask", app.token, {"task_id": task}) == {
        "errcode": 0, "errmsg": "ok", "is_finish": False, "face_status": 1}
    standin.advance(appid=app.appid, kind="face")
    done = standin.call("/wxa/icp/query_icp_verifytask", app.token, {"task_id": task})
    assert done["is_finish"] is True and done["face_status"] == 3 and done["along_with_auth_result"] == 9
    assert standin.pushes("notify_icpfiling_verify_result")[-1]["appid"] == app.appid
    assert standin.call("/wxa/icp/query_icp_verifytask", app.token, {"task_id": "nope"})["errcode"] == 86328


def test_face_notice_lapses_after_24h_and_the_task_after_3_days(standin):
    app = standin.authorized()
    standin.control("script", appid=app.appid, kind="face", result="pass", after=-1)  # only on advance
    task = standin.call("/wxa/icp/create_icp_verifytask", app.token, content=b"")["task_id"]
    standin.advance(seconds=24 * 3600 + 1, finish=False)
    app = standin.refresh(app)  # a day later the old token has long expired
    lapsed = standin.call("/wxa/icp/query_icp_verifytask", app.token, {"task_id": task})
    assert lapsed["is_finish"] is True and lapsed["face_status"] == 2
    standin.advance(seconds=2 * 24 * 3600, finish=False)
    app = standin.refresh(app)
    assert standin.call("/wxa/icp/query_icp_verifytask", app.token, {"task_id": task})["errcode"] == 1


def test_apply_with_missing_and_bad_fields_answers_hints(standin):
    app = standin.authorized()
    body = sample_filing(app.appid, "no-such-task", "no-such-media")
    del body["icp_subject"]["base_info"]["name"]
    body["icp_applets"]["base_info"]["comment"] = "太短"
    refused = standin.call("/wxa/icp/apply_icp_filing", app.token, body)
    assert refused["errcode"] == 86202
    fields = {h["err_field"]: h["errcode"] for h in refused["hints"]}
    assert fields["icp_subject.base_info.name"] == 40097
    assert fields["icp_applets.base_info.comment"] == 40097
    assert fields["icp_subject.organize_info.certificate_photo"] == 86328  # media never uploaded
    assert fields["icp_applets.principal_info.verify_task_id"] == 86328
    assert all(set(h) == {"errcode", "err_field", "errmsg"} for h in refused["hints"])
    assert standin.call("/wxa/icp/get_icp_entrance_info", app.token)["info"]["status"] == 1024


def test_filing_goes_platform_then_bureau_then_filed(standin):
    app = standin.authorized()
    body = sample_filing(app.appid, face_passed(standin, app), media(standin, app))
    assert standin.call("/wxa/icp/apply_icp_filing", app.token, body)["errcode"] == 0
    assert standin.call("/wxa/icp/get_icp_entrance_info", app.token)["info"]["status"] == 2
    assert standin.call("/wxa/icp/apply_icp_filing", app.token, body)["errcode"] == 86202  # under review
    standin.advance(appid=app.appid, kind="filing")
    info = standin.call("/wxa/icp/get_icp_entrance_info", app.token)["info"]
    assert info["status"] == 4 and info["sms_verify_status"] == 1
    standin.advance(appid=app.appid, kind="filing")
    assert standin.call("/wxa/icp/get_icp_entrance_info", app.token)["info"]["status"] == 6
    statuses = [p for p in standin.pushes("notify_apply_icpfiling_result") if p["appid"] == app.appid]
    assert len(statuses) == 2


def test_a_platform_rejection_carries_audit_data_and_can_be_resubmitted(standin):
    app = standin.authorized()
    reasons = [{"key_name": "小程序备注", "error": "备注未说明服务内容", "suggest": "补充服务内容"}]
    standin.control("script", appid=app.appid, kind="filing", result="platform_reject", audit_data=reasons)
    body = sample_filing(app.appid, face_passed(standin, app), media(standin, app))
    standin.call("/wxa/icp/apply_icp_filing", app.token, body)
    standin.advance(appid=app.appid, kind="filing")
    info = standin.call("/wxa/icp/get_icp_entrance_info", app.token)["info"]
    assert info["status"] == 3 and info["audit_data"] == reasons
    assert standin.call("/wxa/icp/apply_icp_filing", app.token, body)["errcode"] == 0


def test_sms_timeout_and_cancel(standin):
    app = standin.authorized()
    standin.control("script", appid=app.appid, kind="filing", result="sms_timeout")
    body = sample_filing(app.appid, face_passed(standin, app), media(standin, app))
    standin.call("/wxa/icp/apply_icp_filing", app.token, body)
    standin.advance(appid=app.appid, kind="filing")
    info = standin.call("/wxa/icp/get_icp_entrance_info", app.token)["info"]
    assert info["status"] == 4 and info["sms_verify_status"] == 3
    assert standin.call("/wxa/icp/cancel_apply_icp_filing", app.token, {})["errcode"] == 0
    assert standin.call("/wxa/icp/get_icp_entrance_info", app.token)["info"]["status"] == 1024
    assert standin.call("/wxa/icp/cancel_apply_icp_filing", app.token, {})["errcode"] == 40097


def test_upload_needs_a_file(standin):
    app = standin.authorized()
    answer = standin.call("/wxa/icp/upload_icp_media", app.token, method="POST",
                          data={"type": "image", "icp_order_field": "x"}, files={"other": ("a", b"1")})
    assert answer["errcode"] == 40097


def test_lookups(standin):
    app = standin.authorized()
    types = standin.call("/wxa/icp/query_icp_service_content_types", app.token)["items"]
    assert {"type", "parent_type", "name", "remark"} <= set(types[0])
    for name in ("query_icp_nrlx_types", "query_icp_subject_types", "query_icp_certificate_types",
                 "query_icp_district_code"):
        answer = standin.call(f"/wxa/icp/{name}", app.token)
        assert answer["errcode"] == 0 and answer["items"], name
