"""Parse a (decrypted) WeChat push into typed events; build pushes back for a simulator.

Bodies are XML (`<xml>…</xml>`) or JSON (`{…}`), sniffed by their first non-space
character. XML goes through defusedxml with DTDs, entity declarations and external
references refused; nesting and element counts are capped while parsing. JSON and
XML use the same keys; numbers may arrive as strings.

Field names of the pushes, as documented by WeChat and as the public SDKs read them:

- Code review (Event weapp_audit_success / weapp_audit_fail / weapp_audit_delay):
  ToUserName, FromUserName, CreateTime, MsgType=event, Event, SuccTime | FailTime,
  Reason, ScreenShot ("|"-separated media ids) | DelayTime [, Reason].
  Source: developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/code/audit_event.html
- Fast registration (InfoType notify_third_fasteregister), on the authorisation-event URL:
  AppId (the platform), CreateTime, InfoType, appid (the new mini-program), status,
  auth_code, msg, info{name, code, code_type, legal_persona_wechat, legal_persona_name,
  component_phone}; the personal variant's info has wxuser, idname, component_phone.
  Source: developers.weixin.qq.com/doc/oplatform/openApi/register-management/
  fast-registration-ent/api_registerminiprogram.html ("注册审核事件推送"); WxJava
  WxOpenXmlMessage.Info. A forum report (developers.weixin.qq.com/community/develop/doc/
  000ea6b8eacff0172d517778561c00) shows empty info values, code_type 0 and an extra
  info.taskid: hence every info field is optional and unknown ones are kept.
- Admin face check for filing (InfoType notify_icpfiling_verify_result):
  task_id, verify_appid, result (2 failed, 3 passed) [, along_with_auth_result].
  Source: WxJava WxOpenXmlMessage ("小程序管理员人脸核身完成事件"), SKIT.FlurlHttpClient.Wechat.
- Filing result (InfoType notify_apply_icpfiling_result): authorizer_appid, beian_status
  ("当备案审核被驳回或通过时会推送该事件"; statuses as getIcpEntranceInfo: 2 platform review,
  3 platform rejected, 4 bureau review, 5 bureau rejected, 6 filed, 1024+ not filed).
  Source: WxJava WxOpenXmlMessage, SKIT NotifyApplyICPFilingResultEvent (REF applyIcpFiling
  .html#事件推送), Senparc RequestMessageIcpFilingApply. No SDK or doc we found lists a
  filing number, rejection reasons or sms_verify_status in this push: those come from
  get_icp_entrance_info / get_online_icp_order (sms_verify_status, audit_data{key_name,
  error, suggest}). sms_verify_status is accepted if present; anything else the push
  carries is kept in `extra`, never dropped.
  Both ICP pushes are documented as JSON but observed as XML on the authorisation-event
  URL (blog.csdn.net/LiuAustin/article/details/133610472): both are accepted.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, Union
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

from launch.domain.masking import mask_licence, mask_name, mask_phone, scrub_text
from launch.wechat.errors import (
    BAD_CHARACTERS,
    BAD_FIELD,
    EMPTY_BODY,
    MALFORMED_JSON,
    MALFORMED_XML,
    MISSING_FIELD,
    STILL_ENCRYPTED,
    TOO_COMPLEX,
    TOO_LARGE,
    UNSUPPORTED_FORMAT,
    XML_ENTITIES,
    BadPayload,
)

__all__ = [
    "AnyEvent",
    "AuditDelay",
    "AuditFail",
    "AuditSuccess",
    "EVENT_ADAPTER",
    "FastRegisterInfo",
    "FastRegisterResult",
    "IcpFilingResult",
    "IcpVerifyResult",
    "NicknameAudit",
    "OpenedPush",
    "PushEvent",
    "UnknownEvent",
    "event_from_fields",
    "extract_encrypt",
    "load_document",
    "open_push",
    "parse_event",
    "to_json",
    "to_xml",
]

# Defensive limits. Real pushes nest 3 deep (<xml><info><name>) with ~20 elements;
# the caller caps the body size (WEAPP_LAUNCH_MAX_BODY_BYTES), this is a backstop.
MAX_DEPTH = 16
MAX_ELEMENTS = 2000
MAX_BODY_BYTES = 1024 * 1024

Fields = dict[str, Any]


# --- reading a body ---------------------------------------------------------------


class _TooComplex(Exception):
    pass


class _DictBuilder:
    """ElementTree parser target building plain nested values, with depth/count limits."""

    def __init__(self) -> None:
        self.stack: list[dict] = []
        self.count = 0
        self.root: dict | None = None

    def start(self, tag: str, attrib: dict) -> None:
        self.count += 1
        if len(self.stack) >= MAX_DEPTH or self.count > MAX_ELEMENTS:
            raise _TooComplex()
        node = {"tag": tag, "children": [], "text": []}
        if self.stack:
            self.stack[-1]["children"].append(node)
        else:
            self.root = node
        self.stack.append(node)

    def end(self, tag: str) -> None:
        self.stack.pop()

    def data(self, text: str) -> None:
        if self.stack:
            self.stack[-1]["text"].append(text)

    def close(self) -> dict | None:
        return self.root


def _node_value(node: dict) -> Any:
    if not node["children"]:
        return "".join(node["text"])
    out: Fields = {}
    for child in node["children"]:
        _put(out, child["tag"], _node_value(child))
    return out


def _put(out: Fields, key: str, value: Any) -> None:
    if key in out:  # a repeated element becomes a list
        if isinstance(out[key], list):
            out[key].append(value)
        else:
            out[key] = [out[key], value]
    else:
        out[key] = value


def _parse_xml(data: bytes) -> Fields:
    builder = _DictBuilder()
    try:
        parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        parser.feed(data)
        root = parser.close()
    except DefusedXmlException:
        raise BadPayload(
            XML_ENTITIES, "XML 含 DTD 或实体声明 / XML with a DTD, entity declaration or external reference refused"
        ) from None
    except _TooComplex:
        raise BadPayload(TOO_COMPLEX, "XML 嵌套过深或元素过多 / XML nested too deep or too many elements") from None
    except ParseError as exc:
        raise BadPayload(MALFORMED_XML, f"XML 格式错误 / malformed XML ({_short(exc)})") from None
    except Exception:  # anything else a parser may raise on hostile input (encodings, …)
        raise BadPayload(MALFORMED_XML, "XML 格式错误 / malformed XML") from None
    if root is None:
        raise BadPayload(MALFORMED_XML, "XML 无根元素 / XML without a root element")
    value = _node_value(root)
    return value if isinstance(value, dict) else {}


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _parse_json(data: bytes) -> Fields:
    try:
        value = json.loads(data, parse_constant=_reject_constant)
    except RecursionError:
        raise BadPayload(TOO_COMPLEX, "JSON 嵌套过深 / JSON nested too deep") from None
    except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadPayload(MALFORMED_JSON, f"JSON 格式错误 / malformed JSON ({_short(exc)})") from None
    if not isinstance(value, dict):
        raise BadPayload(MALFORMED_JSON, "JSON 顶层必须是对象 / JSON top level must be an object")
    # depth and count, iteratively
    count = 0
    todo: list[tuple[Any, int]] = [(value, 1)]
    while todo:
        node, depth = todo.pop()
        count += 1
        if depth > MAX_DEPTH or count > MAX_ELEMENTS:
            raise BadPayload(TOO_COMPLEX, "JSON 嵌套过深或元素过多 / JSON nested too deep or too many elements")
        if isinstance(node, dict):
            todo.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            todo.extend((v, depth + 1) for v in node)
    return value


def _check_characters(value: Fields) -> None:
    """Refuse NUL and unpaired surrogates anywhere: the store (PostgreSQL text/jsonb) cannot hold them."""
    todo: list[Any] = [value]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                todo.append(k)
                todo.append(v)
        elif isinstance(node, list):
            todo.extend(node)
        elif isinstance(node, str):
            if "\x00" in node:
                raise BadPayload(BAD_CHARACTERS, "值含 NUL 字符 / a value contains a NUL character")
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                raise BadPayload(BAD_CHARACTERS, "值含无效 Unicode / a value contains invalid Unicode") from None


def load_document(body: bytes | bytearray | memoryview | str, *, max_bytes: int = MAX_BODY_BYTES) -> tuple[str, Fields]:
    """Sniff and parse a body into ("xml" | "json", top-level fields). Raises PushRejected."""
    if isinstance(body, str):
        data = body.encode("utf-8", "surrogatepass")
    elif isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
    else:
        raise BadPayload(UNSUPPORTED_FORMAT, "消息体类型错误 / body must be bytes or str")
    if len(data) > max_bytes:
        raise BadPayload(TOO_LARGE, f"消息体过大 / body larger than {max_bytes} bytes")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    data = data.lstrip(b" \t\r\n")
    if not data:
        raise BadPayload(EMPTY_BODY, "消息体为空 / empty body")
    if data[:1] == b"<":
        fmt, fields = "xml", _parse_xml(data)
    elif data[:1] == b"{":
        fmt, fields = "json", _parse_json(data)
    else:
        raise BadPayload(UNSUPPORTED_FORMAT, "既不是 XML 也不是 JSON / body is neither XML nor JSON")
    _check_characters(fields)
    return fmt, fields


def extract_encrypt(body: bytes | str) -> tuple[str | None, str]:
    """From a safe-mode envelope, (ToUserName or AppId, Encrypt). Raises PushRejected."""
    _, fields = load_document(body)
    encrypt = fields.get("Encrypt")
    if encrypt is None:
        raise BadPayload(MISSING_FIELD, "缺少字段 Encrypt / field Encrypt is missing")
    if not isinstance(encrypt, str) or not encrypt.strip():
        raise BadPayload(BAD_FIELD, "字段 Encrypt 无效 / field Encrypt is invalid")
    to = fields.get("ToUserName", fields.get("AppId"))
    if to is not None and not isinstance(to, str):
        raise BadPayload(BAD_FIELD, "字段 ToUserName 无效 / field ToUserName is invalid")
    return (to.strip() if isinstance(to, str) else None), encrypt.strip()


# --- field types --------------------------------------------------------------------

_INT_RE = re.compile(r"[+-]?[0-9]{1,19}")


def _to_int(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError("not an integer")
    if isinstance(v, int):
        n = v
    elif isinstance(v, float) and v.is_integer():
        n = int(v)
    elif isinstance(v, str) and _INT_RE.fullmatch(v.strip()):
        n = int(v.strip())
    else:
        raise ValueError("not an integer")
    if not -(2**63) <= n < 2**63:
        raise ValueError("integer out of range")
    return n


def _to_opt_int(v: Any) -> int | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    return _to_int(v)


def _to_str(v: Any) -> str:
    if isinstance(v, str):
        return v.strip()
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    raise ValueError("not a string")


def _to_opt_str(v: Any) -> str | None:
    return None if v is None else _to_str(v)


def _to_media_ids(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [p.strip() for p in v.split("|") if p.strip()]
    if isinstance(v, list):
        out: list[str] = []
        for item in v:
            out.extend(_to_media_ids(_to_str(item)))
        return out
    raise ValueError("not a list of media ids")


Int = Annotated[int, BeforeValidator(_to_int)]
OptInt = Annotated[int | None, BeforeValidator(_to_opt_int)]
Str = Annotated[str, BeforeValidator(_to_str)]
OptStr = Annotated[str | None, BeforeValidator(_to_opt_str)]
MediaIds = Annotated[list[str], BeforeValidator(_to_media_ids)]


def _digest(*parts: Any) -> str:
    canonical = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _k(v: Any) -> str:
    return "-" if v is None or v == "" else str(v)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


# --- models -------------------------------------------------------------------------


class _Wire(BaseModel):
    """Base of everything read from the wire: aliases are the wire names, leftovers go to `extra`."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True)

    extra: dict[str, Any] = Field(default_factory=dict, description="Wire fields not mapped, kept for storage.")

    # wire keys that only say which model this is (rebuilt by wire())
    _discriminators: ClassVar[dict[str, str]] = {}
    # at least one of these (python names) must be present
    _required_any: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _alias_map(cls) -> dict[str, str]:
        """wire name -> python name"""
        return {(f.alias or name): name for name, f in cls.model_fields.items() if name not in ("kind", "extra")}

    @classmethod
    def _split(cls, fields: Fields) -> Fields:
        known = cls._alias_map()
        data: Fields = {}
        extra: Fields = {}
        for key, value in fields.items():
            if key in known:
                data[known[key]] = value
            elif key == "extra" and isinstance(value, dict):  # a model_dump() being re-validated
                extra.update(value)
            elif key not in cls._discriminators:
                extra[key] = value
        data["extra"] = extra
        return data

    @classmethod
    def from_fields(cls, fields: Fields):
        try:
            obj = cls.model_validate(cls._split(fields))
        except ValidationError as exc:
            raise _rejection(cls, exc) from None
        if cls._required_any and all(getattr(obj, n) is None for n in cls._required_any):
            names = " / ".join(cls._wire_name(n) for n in cls._required_any)
            raise BadPayload(MISSING_FIELD, f"缺少字段 {names} / field {names} is missing")
        return obj

    @classmethod
    def _wire_name(cls, name: str) -> str:
        f = cls.model_fields.get(name)
        return (f.alias or name) if f is not None else name

    def wire(self) -> Fields:
        """The fields as WeChat sends them (for to_xml / to_json and a simulator)."""
        out: Fields = dict(self._discriminators)
        for name, f in type(self).model_fields.items():
            if name in ("kind", "extra"):
                continue
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, _Wire):
                value = value.wire()
            out[f.alias or name] = value
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out


def _rejection(cls: type[_Wire], exc: ValidationError) -> BadPayload:
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ())]
    if loc:
        loc[0] = cls._wire_name(loc[0])
    name = ".".join(loc) or cls.__name__
    if err.get("type") == "missing":
        return BadPayload(MISSING_FIELD, f"缺少字段 {name} / field {name} is missing")
    return BadPayload(BAD_FIELD, f"字段 {name} 无效 / field {name} is invalid")


class _Audit(_Wire):
    to_user_name: Str = Field(alias="ToUserName", description="Original id (gh_…) of the mini-program.")
    from_user_name: OptStr = Field(default=None, alias="FromUserName")
    create_time: OptInt = Field(default=None, alias="CreateTime")

    def redacted(self):
        return self.model_copy(update={"extra": _scrub(self.extra)})


class AuditSuccess(_Audit):
    kind: Literal["audit_success"] = "audit_success"
    succ_time: OptInt = Field(default=None, alias="SuccTime")

    _discriminators: ClassVar[dict[str, str]] = {"MsgType": "event", "Event": "weapp_audit_success"}
    _required_any: ClassVar[tuple[str, ...]] = ("succ_time", "create_time")

    @property
    def event_key(self) -> str:
        return f"audit_success:{self.to_user_name}:{_k(self.succ_time)}:{_k(self.create_time)}"


class AuditFail(_Audit):
    kind: Literal["audit_fail"] = "audit_fail"
    fail_time: OptInt = Field(default=None, alias="FailTime")
    reason: Str = Field(default="", alias="Reason")
    screenshots: MediaIds = Field(default_factory=list, alias="ScreenShot", description="Media ids of screenshots.")

    _discriminators: ClassVar[dict[str, str]] = {"MsgType": "event", "Event": "weapp_audit_fail"}
    _required_any: ClassVar[tuple[str, ...]] = ("fail_time", "create_time")

    @property
    def event_key(self) -> str:
        return f"audit_fail:{self.to_user_name}:{_k(self.fail_time)}:{_k(self.create_time)}"

    def wire(self) -> Fields:
        out = super().wire()
        if self.screenshots:
            out["ScreenShot"] = "|".join(self.screenshots)
        else:
            out.pop("ScreenShot", None)
        return out


class AuditDelay(_Audit):
    kind: Literal["audit_delay"] = "audit_delay"
    delay_time: OptInt = Field(default=None, alias="DelayTime")
    reason: OptStr = Field(default=None, alias="Reason")

    _discriminators: ClassVar[dict[str, str]] = {"MsgType": "event", "Event": "weapp_audit_delay"}
    _required_any: ClassVar[tuple[str, ...]] = ("delay_time", "create_time")

    @property
    def event_key(self) -> str:
        return f"audit_delay:{self.to_user_name}:{_k(self.delay_time)}:{_k(self.create_time)}"


class NicknameAudit(_Audit):
    """名称审核结果事件推送 (wxa_nickname_audit, on the message-event URL): WeChat's review of a
    name the platform set with setnickname. ret 3 passed, 2 rejected (with reason). Doc:
    developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/Mini_Program_Basic_Info/wxa_nickname_audit.html"""

    kind: Literal["nickname_audit"] = "nickname_audit"
    ret: OptInt = Field(default=None, alias="ret")
    nickname: OptStr = Field(default=None, alias="nickname")
    reason: OptStr = Field(default=None, alias="reason")

    _discriminators: ClassVar[dict[str, str]] = {"MsgType": "event", "Event": "wxa_nickname_audit"}
    _required_any: ClassVar[tuple[str, ...]] = ("ret",)

    @property
    def event_key(self) -> str:
        return f"nickname_audit:{self.to_user_name}:{_k(self.ret)}:{_k(self.create_time)}"


def _info_fields(v: Any) -> Any:
    if v is None or (isinstance(v, str) and not v.strip()):
        return {}
    if isinstance(v, dict):
        return FastRegisterInfo._split(v)
    return v  # let validation refuse it


class FastRegisterInfo(_Wire):
    """The `info` block echoed back by fast registration. code, legal_persona_*, wxuser, idname
    and component_phone are personal or identifying data: log `redacted()` only."""

    name: OptStr = None  # enterprise name (public)
    code: OptStr = None  # unified social credit code / licence number
    code_type: OptInt = None  # 1 USCC, 2 organisation code, 3 licence registration number
    legal_persona_wechat: OptStr = None
    legal_persona_name: OptStr = None
    component_phone: OptStr = None  # the platform's contact phone
    wxuser: OptStr = None  # personal registration: the user's WeChat id
    idname: OptStr = None  # personal registration: the user's name
    taskid: OptStr = None  # the registration task (seen in WeChat's pushes, community thread 000ea6b8eacff0172d517778561c00)

    def redacted(self) -> FastRegisterInfo:
        return self.model_copy(
            update={
                "code": mask_licence(self.code) if self.code else self.code,
                "legal_persona_wechat": mask_name(self.legal_persona_wechat)
                if self.legal_persona_wechat
                else self.legal_persona_wechat,
                "legal_persona_name": mask_name(self.legal_persona_name)
                if self.legal_persona_name
                else self.legal_persona_name,
                "component_phone": mask_phone(self.component_phone) if self.component_phone else self.component_phone,
                "wxuser": mask_name(self.wxuser) if self.wxuser else self.wxuser,
                "idname": mask_name(self.idname) if self.idname else self.idname,
                "extra": _scrub(self.extra),
            }
        )


class FastRegisterResult(_Wire):
    kind: Literal["fast_register_result"] = "fast_register_result"
    component_appid: OptStr = Field(default=None, alias="AppId", description="The third-party platform's appid.")
    create_time: OptInt = Field(default=None, alias="CreateTime")
    appid: OptStr = Field(default=None, alias="appid", description="The new mini-program (absent on failure).")
    status: Int = Field(alias="status", description="0 = created; otherwise an error code, see msg.")
    auth_code: OptStr = Field(default=None, alias="auth_code", description="Authorisation code: a credential.")
    msg: OptStr = Field(default=None, alias="msg")
    info: Annotated[FastRegisterInfo, BeforeValidator(_info_fields)] = Field(
        default_factory=FastRegisterInfo, alias="info"
    )

    _discriminators: ClassVar[dict[str, str]] = {"InfoType": "notify_third_fasteregister"}

    @property
    def ok(self) -> bool:
        return self.status == 0

    @property
    def event_key(self) -> str:
        # Identifying personal fields enter only through a digest, never in clear.
        digest = _digest(
            self.component_appid,
            self.auth_code,
            self.msg,
            self.info.name,
            self.info.code,
            self.info.legal_persona_wechat,
            self.info.wxuser,
        )[:16]
        return f"fast_register:{_k(self.appid)}:{self.status}:{_k(self.create_time)}:{digest}"

    def redacted(self) -> FastRegisterResult:
        """A copy safe to log or store in clear: credit code, legal person, phone and auth_code masked."""
        return self.model_copy(
            update={
                "info": self.info.redacted(),
                "auth_code": mask_licence(self.auth_code) if self.auth_code else self.auth_code,
                "extra": _scrub(self.extra),
            }
        )


class IcpVerifyResult(_Wire):
    kind: Literal["icp_verify_result"] = "icp_verify_result"
    component_appid: OptStr = Field(default=None, alias="AppId")
    create_time: OptInt = Field(default=None, alias="CreateTime")
    task_id: Str = Field(alias="task_id", description="Face-check task id (create_icp_verifytask).")
    verify_appid: Str = Field(alias="verify_appid", description="The mini-program.")
    result: Int = Field(alias="result", description="2 failed, 3 passed.")
    along_with_auth_result: OptInt = Field(default=None, alias="along_with_auth_result")

    _discriminators: ClassVar[dict[str, str]] = {"InfoType": "notify_icpfiling_verify_result"}

    @property
    def passed(self) -> bool:
        return self.result == 3

    @property
    def failed(self) -> bool:
        return self.result == 2

    @property
    def event_key(self) -> str:
        return f"icp_verify:{self.verify_appid}:{self.task_id}:{self.result}:{_k(self.create_time)}"

    def redacted(self) -> IcpVerifyResult:
        return self.model_copy(update={"extra": _scrub(self.extra)})


BEIAN_STATUS_LABELS: dict[int, str] = {
    2: "平台审核中 / platform review",
    3: "平台审核驳回 / rejected by the platform",
    4: "管局审核中 / bureau review",
    5: "管局审核驳回 / rejected by the bureau",
    6: "已备案 / filed",
}
SMS_VERIFY_LABELS: dict[int, str] = {1: "等待核验 / waiting", 2: "核验完成 / done", 3: "核验超时 / timed out"}


class IcpFilingResult(_Wire):
    kind: Literal["icp_filing_result"] = "icp_filing_result"
    component_appid: OptStr = Field(default=None, alias="AppId")
    create_time: OptInt = Field(default=None, alias="CreateTime")
    authorizer_appid: Str = Field(alias="authorizer_appid", description="The mini-program.")
    beian_status: Int = Field(alias="beian_status")
    sms_verify_status: OptInt = Field(
        default=None, alias="sms_verify_status", description="Only meaningful while beian_status is 4."
    )

    _discriminators: ClassVar[dict[str, str]] = {"InfoType": "notify_apply_icpfiling_result"}

    @property
    def filed(self) -> bool:
        return self.beian_status == 6

    @property
    def rejected(self) -> bool:
        return self.beian_status in (3, 5)

    @property
    def not_filed(self) -> bool:
        return self.beian_status >= 1024

    @property
    def status_label(self) -> str:
        if self.not_filed:
            return "未备案 / not filed"
        return BEIAN_STATUS_LABELS.get(self.beian_status, f"未知状态 {self.beian_status} / unknown status")

    @property
    def event_key(self) -> str:
        return (
            f"icp_filing:{self.authorizer_appid}:{self.beian_status}:"
            f"{_k(self.sms_verify_status)}:{_k(self.create_time)}"
        )

    def redacted(self) -> IcpFilingResult:
        return self.model_copy(update={"extra": _scrub(self.extra)})


# Values of these keys are credentials: masked entirely by UnknownEvent.redacted().
_SECRET_KEYS = frozenset(
    {"ComponentVerifyTicket", "AuthorizationCode", "PreAuthCode", "auth_code", "AuthorizerRefreshToken"}
)


def _redact_unknown(value: Any, key: str | None = None) -> Any:
    if key in _SECRET_KEYS and isinstance(value, (str, int)):
        return mask_licence(str(value))
    if isinstance(value, dict):
        return {k: _redact_unknown(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_unknown(v, key) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


class UnknownEvent(BaseModel):
    """Any other InfoType / Event (component_verify_ticket, authorized, …): stored, acknowledged, never acted on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["unknown"] = "unknown"
    raw_type: str = Field(default="", description="The InfoType or Event value; empty when the push had neither.")
    fields: dict[str, Any] = Field(default_factory=dict, description="Every field as received.")

    @property
    def event_key(self) -> str:
        return f"unknown:{_k(self.raw_type)}:{_digest(self.fields)[:32]}"

    def wire(self) -> Fields:
        return dict(self.fields)

    def redacted(self) -> UnknownEvent:
        return self.model_copy(update={"fields": _redact_unknown(self.fields)})


AnyEvent = Union[
    AuditSuccess, AuditFail, AuditDelay, NicknameAudit, FastRegisterResult, IcpVerifyResult, IcpFilingResult,
    UnknownEvent,
]
PushEvent = Annotated[AnyEvent, Field(discriminator="kind")]
# Re-validates a stored `event.model_dump()` (python names) into its model.
EVENT_ADAPTER: TypeAdapter = TypeAdapter(PushEvent)

_BY_INFO_TYPE: dict[str, type[_Wire]] = {
    "notify_third_fasteregister": FastRegisterResult,
    "notify_icpfiling_verify_result": IcpVerifyResult,
    "notify_apply_icpfiling_result": IcpFilingResult,
}
_BY_EVENT: dict[str, type[_Wire]] = {
    "weapp_audit_success": AuditSuccess,
    "weapp_audit_fail": AuditFail,
    "weapp_audit_delay": AuditDelay,
    "wxa_nickname_audit": NicknameAudit,
}


def _type_value(fields: Fields, key: str) -> str | None:
    value = fields.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadPayload(BAD_FIELD, f"字段 {key} 无效 / field {key} is invalid")
    return value.strip()


def event_from_fields(fields: Fields) -> AnyEvent:
    """Dispatch parsed top-level fields on InfoType, then Event. Raises PushRejected."""
    info_type = _type_value(fields, "InfoType")
    event = _type_value(fields, "Event")
    if info_type is not None:
        model = _BY_INFO_TYPE.get(info_type)
        raw = info_type
    elif event is not None:
        model = _BY_EVENT.get(event)
        raw = event
        if model is not None and fields.get("MsgType", "event") != "event":
            model = None
    else:
        if "Encrypt" in fields:
            raise BadPayload(STILL_ENCRYPTED, "消息仍是密文 / body is an encrypted envelope: decrypt it first")
        model, raw = None, ""
    if model is None:
        return UnknownEvent(raw_type=raw, fields=fields)
    return model.from_fields(fields)


def parse_event(body: bytes | str) -> AnyEvent:
    """Parse a plaintext (decrypted) push, XML or JSON, into its event model. Raises PushRejected."""
    _, fields = load_document(body)
    return event_from_fields(fields)


class OpenedPush(NamedTuple):
    event: AnyEvent
    plaintext: str  # the decrypted message as received
    envelope_id: str | None  # ToUserName (message push) or AppId (authorisation event) of the envelope


def open_push(body: bytes | str, crypto, *, msg_signature: str | None, timestamp: str, nonce: str) -> OpenedPush:
    """Safe-mode body -> verified, decrypted, parsed event. `crypto` is a launch.wechat.crypto.PushCrypto."""
    envelope_id, encrypt = extract_encrypt(body)
    plaintext = crypto.decrypt_verified(msg_signature, timestamp, nonce, encrypt)
    return OpenedPush(parse_event(plaintext), plaintext, envelope_id)


# --- building pushes (simulator, tests) ------------------------------------------------

_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def _xml_value(key: str, value: Any, out: list[str]) -> None:
    if not _XML_NAME.fullmatch(key):
        raise ValueError(f"{key!r} is not an XML element name")
    if isinstance(value, list):
        for item in value:
            _xml_value(key, item, out)
        return
    if isinstance(value, dict):
        out.append(f"<{key}>")
        for k, v in value.items():
            _xml_value(k, v, out)
        out.append(f"</{key}>")
        return
    if value is None:
        return
    if isinstance(value, bool):
        text = "true" if value else "false"
        out.append(f"<{key}>{text}</{key}>")
    elif isinstance(value, (int, float)):
        out.append(f"<{key}>{value}</{key}>")
    else:
        text = str(value).replace("]]>", "]]]]><![CDATA[>")
        out.append(f"<{key}><![CDATA[{text}]]></{key}>")


def to_xml(event_or_fields) -> bytes:
    """`<xml>…</xml>` of an event (its wire() fields) or of a plain dict, WeChat style (CDATA strings)."""
    fields = event_or_fields.wire() if hasattr(event_or_fields, "wire") else event_or_fields
    out = ["<xml>"]
    for key, value in fields.items():
        _xml_value(key, value, out)
    out.append("</xml>")
    return "".join(out).encode("utf-8")


def to_json(event_or_fields) -> bytes:
    fields = event_or_fields.wire() if hasattr(event_or_fields, "wire") else event_or_fields
    return json.dumps(fields, ensure_ascii=False).encode("utf-8")
