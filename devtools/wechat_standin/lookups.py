"""Small fixed answers of the ICP look-ups, and the fields apply_icp_filing requires.

Shapes (developers.weixin.qq.com/doc/oplatform/openApi/miniprogram-management/record/…):
- query_icp_service_content_types -> items [{type, parent_type, name, remark}]; parent_type 0
  is a first-level type; applyIcpFiling takes second-level types only (doc example: 生活缴费,
  type 1, parent 500 生活服务).
- query_icp_nrlx_types (前置审批) -> items [{type, name, remark}]
- query_icp_subject_types -> items [{type, name, remark}]
- query_icp_certificate_types -> items [{type, subject_type, name, remark}]
- query_icp_district_code -> items [{type (1 province, 2 city, 3 district), code, name, sub_list}]
The values are a sample, not WeChat's current lists (the doc says never to hard-code them).
"""

from __future__ import annotations

SERVICE_CONTENT_TYPES = [
    {"type": 500, "parent_type": 0, "name": "生活服务", "remark": ""},
    {"type": 1, "parent_type": 500, "name": "生活缴费", "remark": "水电煤气话费等"},
    {"type": 2, "parent_type": 500, "name": "招聘", "remark": ""},
    {"type": 600, "parent_type": 0, "name": "餐饮服务", "remark": ""},
    {"type": 601, "parent_type": 600, "name": "点餐", "remark": "堂食点餐与外卖"},
    {"type": 602, "parent_type": 600, "name": "会员服务", "remark": ""},
]

NRLX_TYPES = [
    {"type": 1, "name": "新闻", "remark": ""},
    {"type": 2, "name": "出版", "remark": ""},
    {"type": 9, "name": "以上都不涉及", "remark": "不涉及前置审批时选择此项"},
]

SUBJECT_TYPES = [
    {"type": 1, "name": "企业", "remark": ""},
    {"type": 5, "name": "个人", "remark": ""},
    {"type": 7, "name": "个体工商户", "remark": ""},
]

CERTIFICATE_TYPES = [
    {"type": 1, "subject_type": 1, "name": "营业执照（个人或企业）", "remark": ""},
    {"type": 2, "subject_type": 5, "name": "居民身份证", "remark": ""},
]

DISTRICTS = [
    {"type": 1, "code": 440000, "name": "广东省", "sub_list": [
        {"type": 2, "code": 440100, "name": "广州市", "sub_list": [
            {"type": 3, "code": 440106, "name": "天河区"}]},
        {"type": 2, "code": 440300, "name": "深圳市", "sub_list": [
            {"type": 3, "code": 440305, "name": "南山区"}]}]},
    {"type": 1, "code": 110000, "name": "北京市", "sub_list": [
        {"type": 2, "code": 110100, "name": "市辖区", "sub_list": [
            {"type": 3, "code": 110105, "name": "朝阳区"}]}]},
]

# A subset of applyIcpFiling's required fields (doc: Body.icp_subject / icp_applets tables),
# as the dotted paths WeChat's hints[].err_field names them.
REQUIRED_FILING_FIELDS = (
    "icp_subject.base_info.type",
    "icp_subject.base_info.name",
    "icp_subject.base_info.province",
    "icp_subject.base_info.city",
    "icp_subject.base_info.district",
    "icp_subject.base_info.address",
    "icp_subject.organize_info.certificate_type",
    "icp_subject.organize_info.certificate_number",
    "icp_subject.organize_info.certificate_address",
    "icp_subject.organize_info.certificate_photo",
    "icp_subject.principal_info.name",
    "icp_subject.principal_info.mobile",
    "icp_subject.principal_info.certificate_type",
    "icp_subject.principal_info.certificate_number",
    "icp_subject.principal_info.certificate_photo_front",
    "icp_subject.principal_info.certificate_photo_back",
    "icp_applets.base_info.appid",
    "icp_applets.base_info.name",
    "icp_applets.base_info.service_content_types",
    "icp_applets.base_info.nrlx_details",
    "icp_applets.base_info.comment",
    "icp_applets.principal_info.name",
    "icp_applets.principal_info.mobile",
    "icp_applets.principal_info.certificate_type",
    "icp_applets.principal_info.certificate_number",
    "icp_applets.principal_info.certificate_photo_front",
    "icp_applets.principal_info.certificate_photo_back",
    "icp_applets.principal_info.verify_task_id",
)

# Fields that carry media_ids from upload_icp_media
MEDIA_FIELDS = (
    "icp_subject.organize_info.certificate_photo",
    "icp_subject.principal_info.certificate_photo_front",
    "icp_subject.principal_info.certificate_photo_back",
    "icp_applets.principal_info.certificate_photo_front",
    "icp_applets.principal_info.certificate_photo_back",
)


def sample_filing(appid: str, verify_task_id: str, media_id: str) -> dict:
    """A complete apply_icp_filing body (tests, the demo): every media field is `media_id`."""
    person = {"name": "张三", "mobile": "13800000000", "email": "owner@example.com", "certificate_type": 2,
              "certificate_number": "110101199001011234", "certificate_photo_front": media_id,
              "certificate_photo_back": media_id, "verify_task_id": verify_task_id}
    return {
        "icp_subject": {
            "base_info": {"type": 1, "name": "示例餐饮有限公司", "province": 440000, "city": 440100,
                          "district": 440106, "address": "天河路 1 号", "comment": ""},
            "organize_info": {"certificate_type": 1, "certificate_number": "91440101MA5XXXXXXX",
                              "certificate_address": "天河路 1 号", "certificate_photo": media_id},
            "principal_info": dict(person),
        },
        "icp_applets": {
            "base_info": {"appid": appid, "name": "示例点餐", "service_content_types": [601, 602],
                          "nrlx_details": [{"type": 9}],
                          "comment": "示例门店的堂食点餐与会员积分服务，不涉及支付以外的金融业务。"},
            "principal_info": dict(person),
        },
        "icp_materials": {},
    }

# getAllCategories (GET /cgi-bin/wxopen/getallcategories) -> {categories_list {categories [{id, name,
# level, father, children, sensitive_type, qualify}]}}: a small sample tree (level 1 and 2 only, as
# WeChat answers it); sensitive_type 1 needs a qualification (addcategory's certicates).
ALL_CATEGORIES = [
    {"id": 1, "name": "工具", "level": 1, "father": 0, "children": [2, 3], "sensitive_type": 0},
    {"id": 2, "name": "备忘录", "level": 2, "father": 1, "children": [], "sensitive_type": 0},
    {"id": 3, "name": "信息查询", "level": 2, "father": 1, "children": [], "sensitive_type": 0},
    {"id": 304, "name": "商家自营", "level": 1, "father": 0, "children": [305, 306], "sensitive_type": 0},
    {"id": 305, "name": "百货", "level": 2, "father": 304, "children": [], "sensitive_type": 0},
    {"id": 306, "name": "食品", "level": 2, "father": 304, "children": [], "sensitive_type": 1,
     "qualify": {"exter_list": [{"inner_list": [{"name": "食品经营许可证"}]}], "remark": ""}},
    {"id": 150, "name": "生活服务", "level": 1, "father": 0, "children": [151, 152], "sensitive_type": 0},
    {"id": 151, "name": "家政", "level": 2, "father": 150, "children": [], "sensitive_type": 0},
    {"id": 152, "name": "综合生活服务平台", "level": 2, "father": 150, "children": [], "sensitive_type": 0},
    {"id": 632, "name": "餐饮服务", "level": 1, "father": 0, "children": [633], "sensitive_type": 0},
    {"id": 633, "name": "点餐平台", "level": 2, "father": 632, "children": [], "sensitive_type": 0},
]
