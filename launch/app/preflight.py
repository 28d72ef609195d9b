"""Preflight against what the store knows: the pure rules, fed with quota counts from the store."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from launch.domain.intake import Intake
from launch.domain.rules import CheckResult, KnownFacts, RuleConfig, check

if TYPE_CHECKING:
    from launch.app.resources import Resources
    from launch.settings import Settings


class ClientRefused(ValueError):
    def __init__(self, result: CheckResult, message: str):
        self.result = result
        super().__init__(message)


def facts_for(store, intake: Intake, exclude_client_id: str | None = None) -> KnownFacts:
    """Quota counts of OTHER clients sharing this intake's identifiers (digests only in the store)."""
    identifiers = intake.identifiers()
    kind, value = intake.subject_key()
    if value not in identifiers.setdefault(kind, []):
        identifiers[kind] = [*identifiers[kind], value]
    usage = store.identifier_usage({k: v for k, v in identifiers.items() if v}, exclude_client_id=exclude_client_id)
    oa = intake.registration.official_account if intake.registration.path == "reuse_official_account" else None
    pending = {oa.appid: pending_fast_registrations(store, oa.appid, exclude_client_id)} if oa else {}
    return KnownFacts(
        mini_programs_per_id_number=usage.get("id_number", {}),
        mini_programs_per_phone=usage.get("phone", {}),
        mini_programs_per_subject=usage.get("credit_code", {}),
        used_emails=frozenset(e for e, n in usage.get("email", {}).items() if n > 0),
        pending_fast_registrations=pending,
    )


def pending_fast_registrations(store, oa_appid: str, exclude_client_id: str | None = None) -> int:
    """Running launches of OTHER clients on the reuse path through the 公众号 ``oa_appid`` whose
    fast registration has not passed yet: a 公众号 with a registration still pending cannot
    start another (rule official-account-registration-pending). A launch that has not reached
    the gate yet counts too (it is about to start one): the stricter reading."""
    count = 0
    for launch in store.list_launches("running"):
        if launch.registration_path != "reuse_official_account" or launch.client_id == exclude_client_id:
            continue
        if any(s.step == "fast-registration" and s.status == "done" for s in store.steps_for(launch.id)):
            continue
        intake = store.client_intake(launch.client_id)
        if ((intake.get("registration") or {}).get("official_account") or {}).get("appid") == oa_appid:
            count += 1
    return count


def check_intake(res: Resources, intake: Intake, today: date, exclude_client_id: str | None = None) -> CheckResult:
    return check(intake, today=today, facts=facts_for(res.store, intake, exclude_client_id),
                 config=res.rules)


def add_client(res: Resources, intake: Intake, today: date) -> tuple[str, CheckResult]:
    """Register a client whose intake passes preflight; the intake is stored encrypted."""
    result = check_intake(res, intake, today)
    if not result.ok:
        raise ClientRefused(
            result,
            f"客户资料有 {len(result.errors)} 个错误，未登记 / {len(result.errors)} error(s) in the intake: client not added",
        )
    identifiers = intake.identifiers()
    kind, value = intake.subject_key()
    if value not in identifiers.get(kind, []):
        identifiers[kind] = [*identifiers.get(kind, []), value]
    from launch.store import DuplicateClientCode

    try:
        client_id = res.store.add_client(
            code=intake.client_code,
            display_name=intake.subject.name,
            mini_program_name=intake.mini_program.name,
            province=intake.subject.province,
            subject_type=str(intake.subject.type.value if hasattr(intake.subject.type, "value") else intake.subject.type),
            registration_path=intake.registration.path,
            intake=intake.model_dump(mode="json"),
            identifiers={k: v for k, v in identifiers.items() if v},
        )
    except DuplicateClientCode:
        raise ClientRefused(
            result, f"client_code: 客户代码 {intake.client_code} 已存在 / client code {intake.client_code} already exists"
        ) from None
    return client_id, result


def check_client(res: Resources, client_id: str, today: date) -> CheckResult | None:
    """Re-check a stored client (for the materials checklist on the launch run)."""
    from launch.domain.intake import parse_intake

    store = res.store
    client = store.get_client(client_id)
    if client is None:
        return None
    intake = parse_intake(store.client_intake(client_id), source=f"client {client_id}")
    return check(intake, today=today, facts=facts_for(store, intake, exclude_client_id=client_id),
                 config=res.rules)
