"""Parsing pushes into events: every kind from XML and JSON, round trips, keys, redaction, hostile input.

Sample bodies follow WeChat's published examples (code review: Third-party_Platforms/2.0/api/
code/audit_event.html; fast registration: api_registerminiprogram.html "注册审核事件推送");
the ICP pushes use the field names WxJava / SKIT / Senparc read (see launch/wechat/events.py).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from launch.wechat.crypto import PushCrypto
from launch.wechat.errors import REASON_CODES, PushRejected
from launch.wechat.events import (
    EVENT_ADAPTER,
    MAX_DEPTH,
    MAX_ELEMENTS,
    AuditDelay,
    AuditFail,
    AuditSuccess,
    FastRegisterInfo,
    FastRegisterResult,
    IcpFilingResult,
    IcpVerifyResult,
    NicknameAudit,
    UnknownEvent,
    extract_encrypt,
    load_document,
    open_push,
    parse_event,
    to_json,
    to_xml,
)

AUDIT_SUCCESS_XML = b"""<xml>
<ToUserName><![CDATA[gh_fb9688c2a4b2]]></ToUserName>
<FromUserName><![CDATA[od1P50M-fNQI5Gcq-trm4a7apsU8]]></FromUserName>
<CreateTime>1488856741</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[weapp_audit_success]]></Event>
<SuccTime>1488856741</SuccTime>
</xml>"""

AUDIT_FAIL_XML = """<xml>
<ToUserName><![CDATA[gh_fb9688c2a4b2]]></ToUserName>
<FromUserName><![CDATA[od1P50M-fNQI5Gcq-trm4a7apsU8]]></FromUserName>
<CreateTime>1488856591</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[weapp_audit_fail]]></Event>
<Reason><![CDATA[1:账号信息不符合规范:<br>(1):包含色情因素<br>]]></Reason>
<FailTime>1488856591</FailTime>
<ScreenShot>xxx|yyy|zzz</ScreenShot>
</xml>""".encode()

NICKNAME_AUDIT_XML = """<xml>
<ToUserName><![CDATA[gh_fb9688c2a4b2]]></ToUserName>
<FromUserName><![CDATA[od1P50M-fNQI5Gcq-trm4a7apsU8]]></FromUserName>
<CreateTime>1488856741</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[wxa_nickname_audit]]></Event>
<ret>2</ret>
<nickname><![CDATA[昵称]]></nickname>
<reason><![CDATA[驳回原因]]></reason>
</xml>""".encode()

AUDIT_DELAY_XML = b"""<xml>
<ToUserName><![CDATA[gh_fb9688c2a4b2]]></ToUserName>
<FromUserName><![CDATA[od1P50M-fNQI5Gcq-trm4a7apsU8]]></FromUserName>
<CreateTime>1488856591</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[weapp_audit_delay]]></Event>
<Reason><![CDATA[delay reason]]></Reason>
<DelayTime>1488856591</DelayTime>
</xml>"""

FAST_REGISTER_XML = """<xml>
<AppId><![CDATA[wx5f3f0e9b1c2d3e4f]]></AppId>
<CreateTime>1535442403</CreateTime>
<InfoType><![CDATA[notify_third_fasteregister]]></InfoType>
<appid>wx1e8cd2dad279e29f</appid>
<status>0</status>
<auth_code>queryauthcode@@@NT__q35RW3vOC8D8</auth_code>
<msg>OK</msg>
<info>
<name><![CDATA[腾讯科技（深圳）有限公司]]></name>
<code><![CDATA[91440300708461136T]]></code>
<code_type>1</code_type>
<legal_persona_wechat><![CDATA[mahuateng_wx]]></legal_persona_wechat>
<legal_persona_name><![CDATA[马化腾]]></legal_persona_name>
<component_phone><![CDATA[13812345678]]></component_phone>
</info>
</xml>""".encode()

ICP_VERIFY_XML = b"""<xml>
<AppId><![CDATA[wx5f3f0e9b1c2d3e4f]]></AppId>
<CreateTime>1700000000</CreateTime>
<InfoType><![CDATA[notify_icpfiling_verify_result]]></InfoType>
<task_id><![CDATA[R5PqRPNb6GmG3i0rqd4pTg]]></task_id>
<verify_appid><![CDATA[wx1e8cd2dad279e29f]]></verify_appid>
<result>3</result>
</xml>"""

ICP_FILING_XML = b"""<xml>
<AppId><![CDATA[wx5f3f0e9b1c2d3e4f]]></AppId>
<CreateTime>1700000100</CreateTime>
<InfoType><![CDATA[notify_apply_icpfiling_result]]></InfoType>
<authorizer_appid><![CDATA[wx1e8cd2dad279e29f]]></authorizer_appid>
<beian_status>4</beian_status>
<sms_verify_status>1</sms_verify_status>
</xml>"""

TICKET_XML = b"""<xml>
<AppId>some_appid</AppId>
<CreateTime>1413192605</CreateTime>
<InfoType>component_verify_ticket</InfoType>
<ComponentVerifyTicket>ticket@@@secretvalue</ComponentVerifyTicket>
</xml>"""

SAMPLES = {
    AuditSuccess: AUDIT_SUCCESS_XML,
    AuditFail: AUDIT_FAIL_XML,
    AuditDelay: AUDIT_DELAY_XML,
    NicknameAudit: NICKNAME_AUDIT_XML,
    FastRegisterResult: FAST_REGISTER_XML,
    IcpVerifyResult: ICP_VERIFY_XML,
    IcpFilingResult: ICP_FILING_XML,
    UnknownEvent: TICKET_XML,
}


def _xml_to_json(body: bytes, *, numbers: bool) -> bytes:
    """The same push as JSON (same keys); numbers as JSON numbers or kept as strings."""
    _, fields = load_document(body)

    def conv(v):
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if numbers and isinstance(v, str) and v.isdigit():
            return int(v)
        return v

    return json.dumps(conv(fields), ensure_ascii=False).encode()


# --- each kind, XML and JSON ------------------------------------------------------------------


def test_audit_success():
    e = parse_event(AUDIT_SUCCESS_XML)
    assert isinstance(e, AuditSuccess) and e.kind == "audit_success"
    assert (e.to_user_name, e.succ_time, e.create_time) == ("gh_fb9688c2a4b2", 1488856741, 1488856741)
    assert e.from_user_name == "od1P50M-fNQI5Gcq-trm4a7apsU8"
    assert e.extra == {}


def test_audit_fail_splits_screenshots():
    e = parse_event(AUDIT_FAIL_XML)
    assert isinstance(e, AuditFail)
    assert e.screenshots == ["xxx", "yyy", "zzz"]
    assert e.reason.startswith("1:账号信息不符合规范") and e.fail_time == 1488856591


def test_audit_fail_without_screenshots():
    body = AUDIT_FAIL_XML.replace(b"<ScreenShot>xxx|yyy|zzz</ScreenShot>", b"<ScreenShot></ScreenShot>")
    assert parse_event(body).screenshots == []
    body = AUDIT_FAIL_XML.replace(b"<ScreenShot>xxx|yyy|zzz</ScreenShot>", b"")
    assert parse_event(body).screenshots == []


def test_nickname_audit():
    e = parse_event(NICKNAME_AUDIT_XML)
    assert isinstance(e, NicknameAudit) and e.ret == 2 and e.nickname == "昵称" and e.reason == "驳回原因"
    assert e.to_user_name == "gh_fb9688c2a4b2" and e.event_key == "nickname_audit:gh_fb9688c2a4b2:2:1488856741"


def test_audit_delay():
    e = parse_event(AUDIT_DELAY_XML)
    assert isinstance(e, AuditDelay) and e.delay_time == 1488856591 and e.reason == "delay reason"
    e = parse_event(AUDIT_DELAY_XML.replace(b"<Reason><![CDATA[delay reason]]></Reason>", b""))
    assert e.reason is None


def test_fast_register():
    e = parse_event(FAST_REGISTER_XML)
    assert isinstance(e, FastRegisterResult) and e.ok
    assert (e.component_appid, e.appid, e.status, e.msg) == ("wx5f3f0e9b1c2d3e4f", "wx1e8cd2dad279e29f", 0, "OK")
    assert e.auth_code == "queryauthcode@@@NT__q35RW3vOC8D8"
    assert e.info.name == "腾讯科技（深圳）有限公司"
    assert e.info.code == "91440300708461136T" and e.info.code_type == 1
    assert e.info.legal_persona_wechat == "mahuateng_wx" and e.info.legal_persona_name == "马化腾"
    assert e.info.component_phone == "13812345678"


def test_fast_register_failure_and_observed_variants():
    # failure: no appid; info values empty, code_type 0 and an undocumented info.taskid (seen in the wild)
    body = b"""<xml><AppId><![CDATA[wx5f3f0e9b1c2d3e4f]]></AppId><CreateTime>1712110558</CreateTime>
<InfoType><![CDATA[notify_third_fasteregister]]></InfoType><status>89251</status><msg><![CDATA[legal person checking]]></msg>
<info><name><![CDATA[]]></name><code><![CDATA[f0b0349da13e098c]]></code><code_type>0</code_type>
<legal_persona_wechat><![CDATA[]]></legal_persona_wechat><taskid><![CDATA[f0b0349da13e098c]]></taskid></info></xml>"""
    e = parse_event(body)
    assert isinstance(e, FastRegisterResult) and not e.ok and e.appid is None and e.status == 89251
    assert e.info.code_type == 0 and e.info.name == "" and e.info.extra == {} and e.info.taskid == "f0b0349da13e098c"
    # personal registration: wxuser / idname
    body = b"""<xml><InfoType>notify_third_fasteregister</InfoType><CreateTime>1</CreateTime><status>0</status>
<appid>wx1</appid><info><wxuser><![CDATA[someone_wx]]></wxuser><idname><![CDATA[Li Si]]></idname></info></xml>"""
    e = parse_event(body)
    assert e.info.wxuser == "someone_wx" and e.info.idname == "Li Si"
    # no info at all
    e = parse_event(b"<xml><InfoType>notify_third_fasteregister</InfoType><status>-1</status></xml>")
    assert e.info == FastRegisterInfo() and e.status == -1


def test_icp_verify():
    e = parse_event(ICP_VERIFY_XML)
    assert isinstance(e, IcpVerifyResult) and e.passed and not e.failed
    assert (e.task_id, e.verify_appid, e.result) == ("R5PqRPNb6GmG3i0rqd4pTg", "wx1e8cd2dad279e29f", 3)


def test_icp_filing():
    e = parse_event(ICP_FILING_XML)
    assert isinstance(e, IcpFilingResult)
    assert (e.authorizer_appid, e.beian_status, e.sms_verify_status) == ("wx1e8cd2dad279e29f", 4, 1)
    assert e.status_label.startswith("管局审核中") and not e.filed and not e.rejected
    filed = parse_event(_xml_to_json(ICP_FILING_XML, numbers=True).replace(b'"beian_status": 4', b'"beian_status": 6'))
    assert filed.filed
    assert parse_event(ICP_FILING_XML.replace(b">4<", b">1024<")).not_filed


def test_icp_filing_keeps_unknown_fields():
    body = ICP_FILING_XML.replace(
        b"</xml>", "<icp_beian_number><![CDATA[粤B2-20090059-1626X]]></icp_beian_number></xml>".encode()
    )
    e = parse_event(body)
    assert e.extra == {"icp_beian_number": "粤B2-20090059-1626X"}
    assert parse_event(to_xml(e)) == e


@pytest.mark.parametrize("model,body", list(SAMPLES.items()), ids=lambda x: getattr(x, "__name__", ""))
@pytest.mark.parametrize("numbers", [True, False], ids=["json-numbers", "json-strings"])
def test_same_event_from_json(model, body, numbers):
    from_xml = parse_event(body)
    from_json = parse_event(_xml_to_json(body, numbers=numbers))
    assert isinstance(from_json, model)
    if model is UnknownEvent:
        assert from_json.raw_type == from_xml.raw_type
    else:
        assert from_json == from_xml
        assert from_json.event_key == from_xml.event_key


@pytest.mark.parametrize("model,body", list(SAMPLES.items()), ids=lambda x: getattr(x, "__name__", ""))
def test_round_trips(model, body):
    event = parse_event(body)
    assert parse_event(to_xml(event)) == event
    assert parse_event(to_json(event)) == event
    assert EVENT_ADAPTER.validate_python(event.model_dump()) == event
    assert EVENT_ADAPTER.validate_json(event.model_dump_json()) == event


def test_build_then_parse_from_models():
    built = [
        AuditSuccess(to_user_name="gh_0123456789ab", create_time=1, succ_time=2),
        AuditFail(to_user_name="gh_0123456789ab", create_time=1, fail_time=2, reason="页面空白", screenshots=["a", "b"]),
        AuditDelay(to_user_name="gh_0123456789ab", create_time=1, delay_time=2),
        FastRegisterResult(
            component_appid="wxp",
            create_time=5,
            appid="wxa",
            status=0,
            auth_code="code",
            msg="OK",
            info=FastRegisterInfo(name="某公司", code="91440300708461136T", code_type=1, legal_persona_name="张三"),
        ),
        IcpVerifyResult(task_id="t1", verify_appid="wxa", result=2, create_time=9),
        IcpFilingResult(authorizer_appid="wxa", beian_status=5, create_time=9),
    ]
    for event in built:
        assert parse_event(to_xml(event)) == event
        assert parse_event(to_json(event)) == event


def test_numbers_with_spaces_and_signs():
    e = parse_event(b'{"InfoType":"notify_apply_icpfiling_result","authorizer_appid":" wxa ","beian_status":" 6 "}')
    assert e.authorizer_appid == "wxa" and e.beian_status == 6


# --- unknown events --------------------------------------------------------------------------


def test_component_verify_ticket_is_unknown():
    e = parse_event(TICKET_XML)
    assert isinstance(e, UnknownEvent) and e.kind == "unknown"
    assert e.raw_type == "component_verify_ticket"
    assert e.fields["ComponentVerifyTicket"] == "ticket@@@secretvalue"


@pytest.mark.parametrize(
    "body,raw_type",
    [
        (b"<xml><InfoType>authorized</InfoType><AuthorizerAppid>wxa</AuthorizerAppid></xml>", "authorized"),
        (b"<xml><MsgType>event</MsgType><Event>wxa_privacy_apply</Event></xml>", "wxa_privacy_apply"),
        (b"<xml><ToUserName>gh_1</ToUserName><MsgType>text</MsgType><Content>hi</Content></xml>", ""),
        (b'{"InfoType": "notify_3rd_wxa_auth", "taskid": "x"}', "notify_3rd_wxa_auth"),
        # an audit Event name under another MsgType is not an audit result
        (b"<xml><MsgType>text</MsgType><Event>weapp_audit_success</Event></xml>", "weapp_audit_success"),
    ],
)
def test_other_pushes_are_unknown(body, raw_type):
    e = parse_event(body)
    assert isinstance(e, UnknownEvent) and e.raw_type == raw_type
    assert e.event_key.startswith("unknown:")


# --- event keys ---------------------------------------------------------------------------------


def test_event_key_stable_for_redelivery():
    for body in SAMPLES.values():
        assert parse_event(body).event_key == parse_event(body).event_key
        assert parse_event(body).event_key == parse_event(to_xml(parse_event(body))).event_key


def test_event_keys_distinct():
    events = [parse_event(b) for b in SAMPLES.values()]
    events += [
        parse_event(AUDIT_SUCCESS_XML.replace(b"<SuccTime>1488856741", b"<SuccTime>1488856742")),
        parse_event(AUDIT_SUCCESS_XML.replace(b"gh_fb9688c2a4b2", b"gh_000000000000")),
        parse_event(AUDIT_FAIL_XML.replace(b"<FailTime>1488856591", b"<FailTime>1488856999")),
        parse_event(ICP_FILING_XML.replace(b"<beian_status>4", b"<beian_status>6")),
        parse_event(ICP_FILING_XML.replace(b"<sms_verify_status>1", b"<sms_verify_status>2")),
        parse_event(ICP_VERIFY_XML.replace(b"<result>3", b"<result>2")),
        parse_event(ICP_VERIFY_XML.replace(b"R5PqRPNb6GmG3i0rqd4pTg", b"anothertask")),
        parse_event(FAST_REGISTER_XML.replace(b"<status>0", b"<status>89251")),
        parse_event(FAST_REGISTER_XML.replace(b"<CreateTime>1535442403", b"<CreateTime>1535442404")),
        parse_event(TICKET_XML.replace(b"secretvalue", b"othervalue")),
    ]
    keys = [e.event_key for e in events]
    assert len(set(keys)) == len(keys)


def test_fast_register_key_carries_no_personal_data():
    e = parse_event(FAST_REGISTER_XML)
    for secret in ("91440300708461136T", "马化腾", "mahuateng_wx", "queryauthcode", "13812345678"):
        assert secret not in e.event_key
    # failures of two different companies in the same second still differ
    other = parse_event(FAST_REGISTER_XML.replace(b"91440300708461136T", b"91110000802100433B"))
    assert other.event_key != e.event_key


# --- redaction -------------------------------------------------------------------------------------


def test_fast_register_redacted():
    e = parse_event(FAST_REGISTER_XML)
    r = e.redacted()
    assert r.info.code == "9144************6T"
    assert r.info.legal_persona_name == "马**"
    assert r.info.legal_persona_wechat.startswith("m") and "mahuateng_wx" not in r.info.legal_persona_wechat
    assert r.info.component_phone == "138****5678"
    assert "queryauthcode@@@NT__q35RW3vOC8D8" not in (r.auth_code or "")
    assert r.info.name == e.info.name and r.appid == e.appid and r.status == e.status
    dumped = r.model_dump_json()
    for secret in ("91440300708461136T", "马化腾", "mahuateng_wx", "13812345678", "queryauthcode@@@NT__q35RW3vOC8D8"):
        assert secret not in dumped
    # the original is untouched, and the key does not change by redacting
    assert e.info.code == "91440300708461136T"
    assert isinstance(r, FastRegisterResult)


def test_personal_registration_redacted():
    body = b"""<xml><InfoType>notify_third_fasteregister</InfoType><status>0</status><appid>wx1</appid>
<info><wxuser><![CDATA[someone_wx]]></wxuser><idname><![CDATA[Li Si]]></idname>
<extra_id><![CDATA[440106199001011234]]></extra_id></info></xml>"""
    r = parse_event(body).redacted()
    assert r.info.wxuser == "s*********" and r.info.idname == "L****"
    assert r.info.extra["extra_id"] == "440106********1234"


def test_unknown_and_other_events_redacted():
    r = parse_event(TICKET_XML).redacted()
    assert "secretvalue" not in json.dumps(r.fields)
    body = ICP_FILING_XML.replace(b"</xml>", b"<contact>13812345678</contact></xml>")
    assert parse_event(body).redacted().extra["contact"] == "138****5678"
    for b in (AUDIT_SUCCESS_XML, ICP_VERIFY_XML):
        assert parse_event(b).redacted() == parse_event(b)


# --- envelopes ------------------------------------------------------------------------------------


def test_extract_encrypt_xml_and_json():
    assert extract_encrypt(b"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[abc=]]></Encrypt></xml>") == (
        "gh_1",
        "abc=",
    )
    assert extract_encrypt(b"<xml><AppId>wxp</AppId><Encrypt>abc=</Encrypt></xml>") == ("wxp", "abc=")
    assert extract_encrypt(b'{"ToUserName": "gh_1", "Encrypt": "abc="}') == ("gh_1", "abc=")
    assert extract_encrypt(b'{"Encrypt": "abc="}') == (None, "abc=")


@pytest.mark.parametrize(
    "body,code",
    [
        (b"<xml><ToUserName>gh_1</ToUserName></xml>", "missing-field"),
        (b'{"Encrypt": 5}', "bad-field"),
        (b'{"Encrypt": ""}', "bad-field"),
        (b'{"Encrypt": "abc", "ToUserName": {"a": 1}}', "bad-field"),
        (b"", "empty-body"),
    ],
)
def test_extract_encrypt_rejects(body, code):
    with pytest.raises(PushRejected) as exc:
        extract_encrypt(body)
    assert exc.value.reason_code == code


def test_open_push_end_to_end():
    crypto = PushCrypto("spamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2")
    env = crypto.envelope(ICP_FILING_XML.decode(), "wx5f3f0e9b1c2d3e4f", id_element="AppId")
    opened = open_push(env.body, crypto, msg_signature=env.msg_signature, timestamp=env.timestamp, nonce=env.nonce)
    assert isinstance(opened.event, IcpFilingResult) and opened.envelope_id == "wx5f3f0e9b1c2d3e4f"
    assert opened.plaintext == ICP_FILING_XML.decode()
    with pytest.raises(PushRejected) as exc:
        open_push(env.body, crypto, msg_signature="0" * 40, timestamp=env.timestamp, nonce=env.nonce)
    assert exc.value.reason_code == "bad-signature"


def test_envelope_given_to_parser():
    with pytest.raises(PushRejected) as exc:
        parse_event(b"<xml><ToUserName>gh_1</ToUserName><Encrypt>abc</Encrypt></xml>")
    assert exc.value.reason_code == "still-encrypted"


# --- malformed and hostile input -----------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<xml><InfoType>x</InfoType><Reason>&lol9;</Reason></xml>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><InfoType>x</InfoType><Reason>&xxe;</Reason></xml>"""

XXE_PARAMETER = b"""<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<xml><InfoType>x</InfoType></xml>"""

DTD_ONLY = b"""<?xml version="1.0"?>
<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/x.dtd">
<xml><InfoType>x</InfoType></xml>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, XXE, XXE_PARAMETER, DTD_ONLY], ids=["bomb", "xxe", "xxe-param", "dtd"])
def test_entities_and_dtds_refused(body):
    for fn in (parse_event, extract_encrypt):
        with pytest.raises(PushRejected) as exc:
            fn(body)
        assert exc.value.reason_code == "xml-entities"


def test_too_deep_and_too_many():
    deep = b"<xml>" + b"<a>" * MAX_DEPTH + b"x" + b"</a>" * MAX_DEPTH + b"</xml>"
    many = b"<xml>" + b"<a>1</a>" * MAX_ELEMENTS + b"</xml>"
    deep_json = b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1)
    very_deep_json = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    many_json = json.dumps({"a": list(range(MAX_ELEMENTS + 1))}).encode()
    for body in (deep, many, deep_json, very_deep_json, many_json):
        with pytest.raises(PushRejected) as exc:
            parse_event(body)
        assert exc.value.reason_code == "too-complex", body[:40]


def test_too_large():
    with pytest.raises(PushRejected) as exc:
        load_document(b"<xml>" + b" " * 100 + b"</xml>", max_bytes=50)
    assert exc.value.reason_code == "too-large"


@pytest.mark.parametrize(
    "body,code,field",
    [
        (b"", "empty-body", None),
        (b" \r\n\t", "empty-body", None),
        (b"hello", "unsupported-format", None),
        (b"[1, 2]", "unsupported-format", None),
        (b"<xml><a></xml>", "malformed-xml", None),
        (b"<xml>", "malformed-xml", None),
        (b'<?xml version="1.0" encoding="no-such-codec"?><xml/>', "malformed-xml", None),
        (b"{", "malformed-json", None),
        (b'{"a": NaN}', "malformed-json", None),
        (b'{"a": "\\u0000"}', "bad-characters", None),
        (b'{"a": "\\ud800"}', "bad-characters", None),
        (b"\xff\xfe<\x00x\x00", "unsupported-format", None),
        (b'{"InfoType": 5}', "bad-field", "InfoType"),
        (b'{"InfoType": "notify_apply_icpfiling_result", "beian_status": 6}', "missing-field", "authorizer_appid"),
        (
            b'{"InfoType": "notify_apply_icpfiling_result", "authorizer_appid": "wxa", "beian_status": "six"}',
            "bad-field",
            "beian_status",
        ),
        (
            b'{"InfoType": "notify_apply_icpfiling_result", "authorizer_appid": "wxa", "beian_status": 1.5}',
            "bad-field",
            "beian_status",
        ),
        (
            b'{"InfoType": "notify_apply_icpfiling_result", "authorizer_appid": "wxa", "beian_status": true}',
            "bad-field",
            "beian_status",
        ),
        (
            b'{"InfoType": "notify_apply_icpfiling_result", "authorizer_appid": "wxa", "beian_status": 99999999999999999999}',
            "bad-field",
            "beian_status",
        ),
        (b'{"InfoType": "notify_third_fasteregister", "status": "x"}', "bad-field", "status"),
        (b'{"InfoType": "notify_third_fasteregister", "status": 0, "info": {"code_type": "x"}}', "bad-field", "info.code_type"),
        (b'{"InfoType": "notify_third_fasteregister", "status": 0, "info": [1]}', "bad-field", "info"),
        (b'{"InfoType": "notify_icpfiling_verify_result", "verify_appid": "wxa", "result": 3}', "missing-field", "task_id"),
        (b"<xml><MsgType>event</MsgType><Event>weapp_audit_success</Event><SuccTime>1</SuccTime></xml>", "missing-field", "ToUserName"),
        (b"<xml><MsgType>event</MsgType><Event>weapp_audit_success</Event><ToUserName>gh_1</ToUserName></xml>", "missing-field", "SuccTime"),
        (b"<xml><MsgType>event</MsgType><Event>weapp_audit_fail</Event><ToUserName><a>1</a></ToUserName><FailTime>1</FailTime></xml>", "bad-field", "ToUserName"),
    ],
)
def test_malformed_input(body, code, field):
    with pytest.raises(PushRejected) as exc:
        parse_event(body)
    assert exc.value.reason_code == code
    assert " / " in exc.value.message  # 中文 / English
    if field:
        assert field in exc.value.message


def test_bom_and_leading_whitespace_accepted():
    assert isinstance(parse_event(b"\xef\xbb\xbf\n  " + AUDIT_SUCCESS_XML), AuditSuccess)
    assert isinstance(parse_event(AUDIT_SUCCESS_XML.decode()), AuditSuccess)


# --- property: the parser never raises anything but PushRejected ------------------------------------

_XML_TOKENS = st.sampled_from(
    [
        "<xml>", "</xml>", "<info>", "</info>", "<InfoType>", "</InfoType>", "<Event>", "</Event>",
        "notify_third_fasteregister", "notify_apply_icpfiling_result", "notify_icpfiling_verify_result",
        "weapp_audit_fail", "<status>", "</status>", "<beian_status>", "</beian_status>", "<ToUserName>",
        "</ToUserName>", "<FailTime>", "</FailTime>", "<ScreenShot>", "</ScreenShot>", "<![CDATA[", "]]>",
        "<!DOCTYPE x [", "<!ENTITY e 'v'>", "]>", "&e;", "&amp;", "&#0;", "&#x1F600;", "<?xml version='1.0'?>",
        "12", "-3", "x|y", " ", "\n", "\x00", "é", "<a b='c'>", "</a>", "<Encrypt>", "</Encrypt>",
    ]
)
_JSON_KEYS = st.sampled_from(
    ["InfoType", "Event", "MsgType", "status", "info", "code_type", "beian_status", "authorizer_appid",
     "task_id", "verify_appid", "result", "ToUserName", "SuccTime", "ScreenShot", "Encrypt", "appid", "x"]
)
_JSON_VALUES = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
        st.sampled_from(["notify_third_fasteregister", "notify_apply_icpfiling_result",
                         "notify_icpfiling_verify_result", "weapp_audit_fail", "event", "3", " 6 "]),
    ),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(_JSON_KEYS, children, max_size=6)),
    max_leaves=20,
)


def _only_push_rejected(body):
    for fn in (parse_event, extract_encrypt):
        try:
            fn(body)
        except PushRejected as exc:
            assert exc.reason_code in REASON_CODES


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes(body):
    _only_push_rejected(body)


@settings(max_examples=300, deadline=None)
@given(st.lists(_XML_TOKENS, max_size=40).map(lambda parts: "".join(parts).encode("utf-8")))
def test_arbitrary_xmlish(body):
    _only_push_rejected(body)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_JSON_KEYS, _JSON_VALUES, max_size=8))
def test_arbitrary_json(doc):
    body = json.dumps(doc).encode()
    _only_push_rejected(body)
    try:
        event = parse_event(body)
    except PushRejected:
        return
    # whatever parses has a key, a redacted form, and survives a store round trip
    assert isinstance(event.event_key, str) and event.event_key
    event.redacted()
    assert EVENT_ADAPTER.validate_json(event.model_dump_json()) == event


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text(text):
    _only_push_rejected(text)


# --- property: models built from arbitrary values survive XML and JSON ------------------------------

# XML cannot carry control characters, normalises \r, and values are stripped on reading.
_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\r"), max_size=30
).map(str.strip)
_ID = st.from_regex(r"[A-Za-z0-9_@-]{1,24}", fullmatch=True)
_TIME = st.integers(min_value=0, max_value=2**40)


def _build(cls, **strategies):
    # not st.builds: it would also fill the alias-named parameters of pydantic's signature
    return st.fixed_dictionaries(strategies).map(lambda kwargs: cls(**kwargs))


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        _build(AuditSuccess, to_user_name=_ID, create_time=_TIME, succ_time=st.none() | _TIME),
        _build(
            AuditFail,
            to_user_name=_ID,
            create_time=_TIME,
            fail_time=st.none() | _TIME,
            reason=_TEXT,
            screenshots=st.lists(_ID, max_size=4),
        ),
        _build(AuditDelay, to_user_name=_ID, create_time=_TIME, delay_time=_TIME, reason=st.none() | _TEXT),
        _build(NicknameAudit, to_user_name=_ID, create_time=_TIME, ret=st.integers(0, 9),
               nickname=st.none() | _TEXT, reason=st.none() | _TEXT),
        _build(
            FastRegisterResult,
            component_appid=st.none() | _ID,
            create_time=st.none() | _TIME,
            appid=st.none() | _ID,
            status=st.integers(min_value=-(2**31), max_value=2**31),
            auth_code=st.none() | _ID,
            msg=st.none() | _TEXT,
            info=_build(
                FastRegisterInfo,
                name=st.none() | _TEXT,
                code=st.none() | _ID,
                code_type=st.none() | st.integers(0, 3),
                legal_persona_wechat=st.none() | _ID,
                legal_persona_name=st.none() | _TEXT,
            ),
        ),
        _build(IcpVerifyResult, task_id=_ID, verify_appid=_ID, result=st.integers(0, 9), create_time=_TIME),
        _build(
            IcpFilingResult,
            authorizer_appid=_ID,
            beian_status=st.integers(0, 2000),
            sms_verify_status=st.none() | st.integers(1, 3),
            create_time=st.none() | _TIME,
        ),
    )
)
def test_any_built_event_round_trips(event):
    assert parse_event(to_xml(event)) == event
    assert parse_event(to_json(event)) == event
    assert parse_event(to_xml(event)).event_key == event.event_key
