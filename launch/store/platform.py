"""WeChat third-party platform credentials: ``wechat_component`` and ``wechat_authorizers``
(revision 0006, issue 12).

What is kept: the latest pushed ``component_verify_ticket``, the ``component_access_token``
derived from it, and for each authorised mini program its ``authorizer_refresh_token`` and
current ``authorizer_access_token``. Every ticket and token is ENCRYPTED at rest with the
store's key (``FieldCipher``, as personal data) and comes back only inside a record whose
``repr`` hides it, so a record printed or logged by mistake shows no secret.

One refresher across processes: a token is refreshed by whoever wins a compare-and-set LEASE
on its row — ``claim_*_refresh`` is a single conditional UPDATE (lease free or expired → ours),
so two workers never both ask WeChat. The HTTP call happens outside any transaction (no row
lock held across the network); ``save_*_token`` writes the new token only while the caller
still holds the lease, and frees it. A refresher that dies leaves a lease that expires by
itself (``lease_seconds``). The life cycle on top of this is launch/wechat/platform/tokens.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from launch.store.models import WeChatAuthorizer, WeChatComponent
from launch.store.unit_of_work import NotFound, UnitOfWork, _aware

__all__ = ["AuthorizerTokenState", "ComponentTokenState", "PlatformRepository", "COMPONENT_ROW"]

COMPONENT_ROW = "component"  # one third-party platform per deployment (the settings name one app id)


@dataclass(frozen=True, slots=True)
class ComponentTokenState:
    """The platform's ticket and token, decrypted. Secrets are kept out of ``repr``."""

    component_appid: str | None
    ticket: str | None = field(repr=False)
    ticket_at: datetime | None
    token: str | None = field(repr=False)
    token_expires_at: datetime | None
    refresh_owner: str | None
    refresh_lease_until: datetime | None


@dataclass(frozen=True, slots=True)
class AuthorizerTokenState:
    """An authorised mini program's tokens, decrypted. Secrets are kept out of ``repr``."""

    appid: str
    refresh_token: str = field(repr=False)
    token: str | None = field(repr=False)
    token_expires_at: datetime | None
    func_info: list[int]
    authorized_at: datetime
    revoked_at: datetime | None
    refresh_owner: str | None
    refresh_lease_until: datetime | None


class PlatformRepository(UnitOfWork):
    """The platform's ticket and tokens, and the refresh leases."""

    # ------------------------------------------------------------ secrets at rest

    def _seal(self, value: str | None) -> str | None:
        return None if value is None else self._cipher.encrypt({"v": value})

    def _open(self, sealed: str | None) -> str | None:
        return None if sealed is None else self._cipher.decrypt(sealed)["v"]

    # ------------------------------------------------------------ component

    def _component_row(self, s: Session, at: datetime) -> WeChatComponent:
        row, _ = self._insert_or_get(
            s,
            WeChatComponent(id=COMPONENT_ROW, updated_at=at),
            lambda: s.scalar(select(WeChatComponent).where(WeChatComponent.id == COMPONENT_ROW).with_for_update()),
        )
        return row

    def remember_verify_ticket(
        self, ticket: str, at: datetime, *, component_appid: str | None = None, session: Session | None = None
    ) -> bool:
        """Keep ``ticket`` as the latest component_verify_ticket unless a newer one is already
        kept (pushes may arrive out of order). Returns whether it was kept."""
        if not ticket:
            raise ValueError("empty component_verify_ticket")
        at = _aware(at, "at")
        with self._write(session) as s:
            row = self._component_row(s, at)
            if row.ticket_at is not None and row.ticket_at > at:
                return False
            row.ticket_enc = self._seal(ticket)
            row.ticket_at = at
            if component_appid:
                row.component_appid = component_appid
            row.updated_at = at
            return True

    def component_state(self, *, session: Session | None = None) -> ComponentTokenState | None:
        with self._read(session) as s:
            row = s.get(WeChatComponent, COMPONENT_ROW)
            if row is None:
                return None
            return ComponentTokenState(
                component_appid=row.component_appid,
                ticket=self._open(row.ticket_enc),
                ticket_at=row.ticket_at,
                token=self._open(row.token_enc),
                token_expires_at=row.token_expires_at,
                refresh_owner=row.refresh_owner,
                refresh_lease_until=row.refresh_lease_until,
            )

    def claim_component_refresh(self, owner: str, now: datetime, lease_seconds: float = 30.0) -> bool:
        """Compare-and-set: take the component token's refresh lease if it is free or expired."""
        now = _aware(now, "now")
        with self.session() as s:
            self._component_row(s, now)  # make sure the row exists
        return self._claim(WeChatComponent, WeChatComponent.id == COMPONENT_ROW, owner, now, lease_seconds)

    def save_component_token(self, owner: str, token: str, expires_at: datetime, *, at: datetime) -> bool:
        """Store a fresh token if ``owner`` still holds the lease; frees the lease. False: the lease
        was lost (expired and taken by another refresher) — the token is dropped, theirs wins."""
        return self._save(
            WeChatComponent, WeChatComponent.id == COMPONENT_ROW, owner,
            {"token_enc": self._seal(token), "token_expires_at": _aware(expires_at, "expires_at")}, at,
        )

    def release_component_refresh(self, owner: str) -> None:
        self._release(WeChatComponent, WeChatComponent.id == COMPONENT_ROW, owner)

    # ------------------------------------------------------------ authorizers

    def save_authorizer(
        self,
        appid: str,
        refresh_token: str,
        *,
        at: datetime,
        token: str | None = None,
        expires_at: datetime | None = None,
        func_info: list[int] | None = None,
        session: Session | None = None,
    ) -> AuthorizerTokenState:
        """Store (or replace, on a new authorisation) a mini program's refresh token and, when
        given, its current access token. A re-authorisation clears ``revoked_at``."""
        if not appid or not refresh_token:
            raise ValueError("appid and refresh_token are required")
        at = _aware(at, "at")
        with self._write(session) as s:
            row, created = self._insert_or_get(
                s,
                WeChatAuthorizer(appid=appid, refresh_token_enc=self._seal(refresh_token), authorized_at=at,
                                 updated_at=at),
                lambda: s.scalar(select(WeChatAuthorizer).where(WeChatAuthorizer.appid == appid).with_for_update()),
            )
            row.refresh_token_enc = self._seal(refresh_token)
            row.token_enc = self._seal(token)
            row.token_expires_at = _aware(expires_at, "expires_at") if expires_at else None
            if func_info is not None:
                row.func_info = {"ids": sorted(set(func_info))}
            if not created:
                row.authorized_at = at
            row.revoked_at = None
            row.updated_at = at
            s.flush()
            return self._authorizer_record(row)

    def _authorizer_record(self, row: WeChatAuthorizer) -> AuthorizerTokenState:
        return AuthorizerTokenState(
            appid=row.appid,
            refresh_token=self._open(row.refresh_token_enc) or "",
            token=self._open(row.token_enc),
            token_expires_at=row.token_expires_at,
            func_info=list((row.func_info or {}).get("ids", [])),
            authorized_at=row.authorized_at,
            revoked_at=row.revoked_at,
            refresh_owner=row.refresh_owner,
            refresh_lease_until=row.refresh_lease_until,
        )

    def authorizer_state(self, appid: str, *, session: Session | None = None) -> AuthorizerTokenState | None:
        with self._read(session) as s:
            row = s.get(WeChatAuthorizer, appid)
            return self._authorizer_record(row) if row else None

    def authorizer_appids(self, *, include_revoked: bool = False, session: Session | None = None) -> list[str]:
        stmt = select(WeChatAuthorizer.appid).order_by(WeChatAuthorizer.appid)
        if not include_revoked:
            stmt = stmt.where(WeChatAuthorizer.revoked_at.is_(None))
        with self._read(session) as s:
            return list(s.scalars(stmt))

    def revoke_authorizer(self, appid: str, at: datetime, *, session: Session | None = None) -> bool:
        """The client withdrew the authorisation (push ``unauthorized``): forget its tokens."""
        at = _aware(at, "at")
        with self._write(session) as s:
            row = s.get(WeChatAuthorizer, appid, with_for_update=True)
            if row is None:
                return False
            row.token_enc = None
            row.token_expires_at = None
            row.revoked_at = at
            row.updated_at = at
            return True

    def claim_authorizer_refresh(self, appid: str, owner: str, now: datetime, lease_seconds: float = 30.0) -> bool:
        now = _aware(now, "now")
        with self._read(None) as s:
            if s.get(WeChatAuthorizer, appid) is None:
                raise NotFound(f"no authorised mini program {appid!r}")
        return self._claim(WeChatAuthorizer, WeChatAuthorizer.appid == appid, owner, now, lease_seconds)

    def save_authorizer_token(
        self, appid: str, owner: str, token: str, expires_at: datetime, *, at: datetime,
        refresh_token: str | None = None,
    ) -> bool:
        values: dict[str, Any] = {"token_enc": self._seal(token), "token_expires_at": _aware(expires_at, "expires_at")}
        if refresh_token:  # WeChat may hand back a new refresh token: keep the latest
            values["refresh_token_enc"] = self._seal(refresh_token)
        return self._save(WeChatAuthorizer, WeChatAuthorizer.appid == appid, owner, values, at)

    def release_authorizer_refresh(self, appid: str, owner: str) -> None:
        self._release(WeChatAuthorizer, WeChatAuthorizer.appid == appid, owner)

    # ------------------------------------------------------------ the lease (compare-and-set)

    def _claim(self, model, where, owner: str, now: datetime, lease_seconds: float) -> bool:
        stmt = (
            update(model)
            .where(where)
            .where(or_(model.refresh_lease_until.is_(None), model.refresh_lease_until <= now,
                       model.refresh_owner == owner))
            .values(refresh_owner=owner, refresh_lease_until=now + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False)
        )
        with self.session() as s:
            return s.execute(stmt).rowcount == 1

    def _save(self, model, where, owner: str, values: dict[str, Any], at: datetime) -> bool:
        stmt = (
            update(model)
            .where(where)
            .where(model.refresh_owner == owner)
            .values(**values, refresh_owner=None, refresh_lease_until=None, updated_at=_aware(at, "at"))
            .execution_options(synchronize_session=False)
        )
        with self.session() as s:
            return s.execute(stmt).rowcount == 1

    def _release(self, model, where, owner: str) -> None:
        stmt = (
            update(model)
            .where(where)
            .where(model.refresh_owner == owner)
            .values(refresh_owner=None, refresh_lease_until=None)
            .execution_options(synchronize_session=False)
        )
        with self.session() as s:
            s.execute(stmt)
