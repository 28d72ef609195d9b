"""Clients and their profile-change counters: ``clients``, ``client_identifiers``,
``client_profile_changes``. The intake is encrypted; identifiers are kept only as
blind-index digests."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from launch.store.models import Client, ClientIdentifier, ClientProfileChange
from launch.store.records import ClientRecord, ProfileChangeRecord, to_record
from launch.store.unit_of_work import DuplicateClientCode, NotFound, UnitOfWork, _aware, _check, _new_id, _now
from launch.store.vocab import IdentifierKind

_CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class ClientRepository(UnitOfWork):
    """Clients, their identifiers (as digests) and profile-change counters."""

    def _identifier_rows(self, identifiers: Mapping[str, Iterable[str]] | None) -> set[tuple[str, str]]:
        pairs: set[tuple[str, str]] = set()
        for kind, values in (identifiers or {}).items():
            _check(kind, IdentifierKind, "identifier kind")
            if isinstance(values, str):
                values = [values]
            for value in values:
                if value is None or not str(value).strip():
                    continue
                pairs.add((kind, self._index.digest(kind, str(value))))
        return pairs

    def identifier_digest(self, kind: str, value: str) -> str:
        """The blind-index digest of an identifier, as stored (to find a client by it later
        without keeping the value). Raises ValueError for an unknown kind or an empty value."""
        return self._index.digest(_check(kind, IdentifierKind, "identifier kind"), value)

    def add_client(
        self,
        code: str,
        display_name: str,
        mini_program_name: str,
        province: str,
        subject_type: str,
        registration_path: str,
        intake: dict[str, Any],
        identifiers: Mapping[str, Iterable[str]] | None = None,
        *,
        created_at: datetime | None = None,
        session: Session | None = None,
    ) -> str:
        """Store a client; the intake is encrypted, identifiers only as blind-index digests.

        Returns the new id ("c-" + 10 hex). Raises DuplicateClientCode if ``code`` is taken.
        """
        if not _CODE_RE.match(code):
            raise ValueError(f"client code {code!r}: use lowercase letters, digits, '-' or '_' (max 64)")
        pairs = self._identifier_rows(identifiers)
        ciphertext = self._cipher.encrypt(intake)
        created_at = _aware(created_at, "created_at") if created_at else _now()
        with self._write(session) as s:
            if s.scalar(select(Client.id).where(Client.code == code)) is not None:
                raise DuplicateClientCode(code)
            client_id = _new_id("c")
            try:
                with s.begin_nested():
                    s.add(
                        Client(
                            id=client_id,
                            code=code,
                            display_name=display_name,
                            mini_program_name=mini_program_name,
                            province=province,
                            subject_type=subject_type,
                            registration_path=registration_path,
                            intake_ciphertext=ciphertext,
                            created_at=created_at,
                        )
                    )
                    s.flush()
                    s.add_all(ClientIdentifier(client_id=client_id, kind=k, digest=d) for k, d in sorted(pairs))
            except IntegrityError as exc:
                if s.scalar(select(Client.id).where(Client.code == code)) is not None:
                    raise DuplicateClientCode(code) from exc
                raise
            return client_id

    def update_client_intake(
        self,
        client_id: str,
        intake: dict[str, Any],
        identifiers: Mapping[str, Iterable[str]] | None = None,
        *,
        session: Session | None = None,
    ) -> None:
        """Replace the encrypted intake; when ``identifiers`` is given, replace those too."""
        ciphertext = self._cipher.encrypt(intake)
        with self._write(session) as s:
            row = s.get(Client, client_id)
            if row is None:
                raise NotFound(f"no client {client_id!r}")
            row.intake_ciphertext = ciphertext
            if identifiers is not None:
                pairs = self._identifier_rows(identifiers)
                s.execute(
                    ClientIdentifier.__table__.delete().where(ClientIdentifier.client_id == client_id)
                )
                s.add_all(ClientIdentifier(client_id=client_id, kind=k, digest=d) for k, d in sorted(pairs))

    def get_client(self, client_id: str, *, session: Session | None = None) -> ClientRecord | None:
        with self._read(session) as s:
            row = s.get(Client, client_id)
            return to_record(ClientRecord, row) if row else None

    def get_client_by_code(self, code: str, *, session: Session | None = None) -> ClientRecord | None:
        with self._read(session) as s:
            row = s.scalar(select(Client).where(Client.code == code))
            return to_record(ClientRecord, row) if row else None

    def list_clients(self, *, session: Session | None = None) -> list[ClientRecord]:
        with self._read(session) as s:
            rows = s.scalars(select(Client).order_by(Client.created_at, Client.code))
            return [to_record(ClientRecord, r) for r in rows]

    def client_intake(self, client_id: str, *, session: Session | None = None) -> dict[str, Any]:
        """The decrypted intake. Raises NotFound."""
        with self._read(session) as s:
            token = s.scalar(select(Client.intake_ciphertext).where(Client.id == client_id))
        if token is None:
            raise NotFound(f"no client {client_id!r}")
        return self._cipher.decrypt(token)

    def identifier_usage(
        self,
        identifiers: Mapping[str, Iterable[str]],
        exclude_client_id: str | None = None,
        *,
        session: Session | None = None,
    ) -> dict[str, dict[str, int]]:
        """How many clients (other than ``exclude_client_id``) already use each value.

        Input raw values; they are digested here. Output is keyed by the raw input values,
        every input value present (0 when unused).
        """
        wanted: dict[str, dict[str, str]] = {}  # kind -> raw value -> digest
        for kind, values in identifiers.items():
            _check(kind, IdentifierKind, "identifier kind")
            if isinstance(values, str):
                values = [values]
            wanted[kind] = {v: self._index.digest(kind, v) for v in values if v is not None and str(v).strip()}
        counts: dict[tuple[str, str], int] = {}
        conditions = [
            and_(ClientIdentifier.kind == kind, ClientIdentifier.digest.in_(sorted(set(by_value.values()))))
            for kind, by_value in wanted.items()
            if by_value
        ]
        if conditions:
            stmt = (
                select(ClientIdentifier.kind, ClientIdentifier.digest, func.count(func.distinct(ClientIdentifier.client_id)))
                .where(or_(*conditions))
                .group_by(ClientIdentifier.kind, ClientIdentifier.digest)
            )
            if exclude_client_id is not None:
                stmt = stmt.where(ClientIdentifier.client_id != exclude_client_id)
            with self._read(session) as s:
                for kind, digest, n in s.execute(stmt):
                    counts[(kind, digest)] = int(n)
        return {
            kind: {value: counts.get((kind, digest), 0) for value, digest in by_value.items()}
            for kind, by_value in wanted.items()
        }

    def profile_changes(
        self,
        client_id: str,
        *,
        exclude: tuple[str, int] | None = None,
        session: Session | None = None,
    ) -> list[ProfileChangeRecord]:
        """The client's recorded profile changes, oldest first; ``exclude`` = (launch id,
        attempt) leaves out one decision's own rows (so a replay does not count it twice)."""
        stmt = (
            select(ClientProfileChange)
            .where(ClientProfileChange.client_id == client_id)
            .order_by(ClientProfileChange.changed_at, ClientProfileChange.id)
        )
        if exclude is not None:
            stmt = stmt.where(
                or_(ClientProfileChange.launch_id != exclude[0], ClientProfileChange.attempt != exclude[1])
            )
        with self._read(session) as s:
            return [to_record(ProfileChangeRecord, r) for r in s.scalars(stmt)]

    def record_profile_changes(
        self,
        client_id: str,
        launch_id: str,
        attempt: int,
        changes: Iterable[tuple[str, int, datetime]],
        *,
        session: Session | None = None,
    ) -> int:
        """Count (field, times, at) changes of one decided profile gate. Idempotent per
        (client, launch, attempt, field): a second call adds nothing. Returns rows added."""
        added = 0
        with self._write(session) as s:
            for field, count, at in changes:
                if count <= 0:
                    continue
                _, created = self._insert_or_get(
                    s,
                    ClientProfileChange(
                        client_id=client_id, launch_id=launch_id, attempt=attempt, field=field,
                        count=int(count), changed_at=_aware(at, "changed_at"),
                    ),
                    lambda field=field: s.scalar(select(ClientProfileChange).where(
                        ClientProfileChange.client_id == client_id,
                        ClientProfileChange.launch_id == launch_id,
                        ClientProfileChange.attempt == attempt,
                        ClientProfileChange.field == field,
                    )),
                )
                added += int(created)
        return added
