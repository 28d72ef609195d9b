"""Fresh, valid intakes for tests: each call gets new ID numbers, phones, email and code.

WeChat's quotas (5 mini-programs per ID card or phone) would otherwise stop a test
session that registers many clients from the same example file.
"""

from __future__ import annotations

import itertools
import random
import uuid
from pathlib import Path

from stdnum.cn import ric, uscc

from launch.domain.intake import Intake, load_intake

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_seq = itertools.count(1)


def fresh_id_number(rng: random.Random, region: str = "110105") -> str:
    body = f"{region}{rng.randint(1986, 2004)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(100, 999)}"
    return body + ric.calc_check_digit(body + "0")  # stdnum expects a placeholder check digit


def fresh_phone(rng: random.Random) -> str:
    return f"13{rng.randint(5, 9)}{rng.randint(10_000_000, 99_999_999)}"


def fresh_credit_code(rng: random.Random) -> str:
    body = "91440101" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
    return body + uscc.calc_check_digit(body)


def fresh_intake(example: str = "client-acme.yaml", seed: int | None = None) -> tuple[Intake, dict]:
    """(intake, the raw personal values used) — the raw values let a test look for leaks."""
    rng = random.Random(seed if seed is not None else uuid.uuid4().int)
    data = load_intake(EXAMPLES / example).model_dump(mode="json")
    raw: dict[str, list[str]] = {"id_number": [], "phone": [], "credit_code": []}
    # The same person keeps one identity wherever the example repeats them (legal rep = principal, …).
    replaced: dict[str, tuple[str, str]] = {}
    for person_path in (("legal_representative",), ("principal",), ("mini_program", "admin")):
        node = data
        for part in person_path:
            node = node.get(part) if node else None
        if node:
            old = node["id_number"]
            if old not in replaced:
                replaced[old] = (fresh_id_number(rng, old[:6]), fresh_phone(rng))
                raw["id_number"].append(replaced[old][0])
                raw["phone"].append(replaced[old][1])
            node["id_number"], node["phone"] = replaced[old]
    data["emergency_contact"]["phone"] = fresh_phone(rng)
    raw["phone"].append(data["emergency_contact"]["phone"])
    if data["subject"].get("credit_code") and example == "client-acme.yaml":
        data["subject"]["credit_code"] = fresh_credit_code(rng)
    if data["subject"].get("credit_code"):
        raw["credit_code"].append(data["subject"]["credit_code"])
    n = next(_seq)
    data["client_code"] = f"t{n}-{uuid.uuid4().hex[:8]}"
    if data["registration"].get("email"):
        data["registration"]["email"] = f"launch-{uuid.uuid4().hex[:10]}@example.com"
    return Intake.model_validate(data), raw


PLATFORM_PHONE = "020-88886666"  # the platform's (agency's) contact phone: a sample value


def platform_intake(seed: int | None = None) -> tuple[Intake, dict]:
    """The example enterprise on the platform's fast-registration path (platform_fast_registration)."""
    intake, raw = fresh_intake("client-acme.yaml", seed=seed)
    data = intake.model_dump(mode="json")
    data["registration"] = {"path": "platform_fast_registration", "component_phone": PLATFORM_PHONE}
    return Intake.model_validate(data), raw
