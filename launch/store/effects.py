"""The effects ledger: ``effects`` (how often each side-effecting task ran per launch)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from launch.store.models import Effect
from launch.store.records import EffectRecord, to_record
from launch.store.unit_of_work import UnitOfWork, _aware, _now


class EffectRepository(UnitOfWork):
    """Counts of side-effecting task executions."""

    def note_effect(
        self,
        launch_id: str,
        effect_key: str,
        flow_run_id: str | None = None,
        *,
        at: datetime | None = None,
        session: Session | None = None,
    ) -> int:
        """Count one execution of a side-effecting task; returns the count after this one."""
        at = _aware(at, "at") if at else _now()

        def bump(s: Session) -> bool:
            result = s.execute(
                update(Effect)
                .where(Effect.launch_id == launch_id, Effect.effect_key == effect_key)
                .values(count=Effect.count + 1, flow_run_id=flow_run_id, ran_at=at)
                .execution_options(synchronize_session=False)
            )
            return result.rowcount == 1

        with self._write(session) as s:
            self._require_launch(s, launch_id)
            if not bump(s):
                try:
                    with s.begin_nested():
                        s.add(Effect(launch_id=launch_id, effect_key=effect_key, flow_run_id=flow_run_id, ran_at=at, count=1))
                except IntegrityError:
                    if not bump(s):
                        raise
            return int(
                s.scalar(select(Effect.count).where(Effect.launch_id == launch_id, Effect.effect_key == effect_key))
            )

    def effects_for(self, launch_id: str, *, session: Session | None = None) -> list[EffectRecord]:
        stmt = select(Effect).where(Effect.launch_id == launch_id).order_by(Effect.effect_key)
        with self._read(session) as s:
            return [to_record(EffectRecord, r) for r in s.scalars(stmt)]
