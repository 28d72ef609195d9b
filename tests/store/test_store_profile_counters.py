"""Profile change counters on the client (migration 0004): recorded once per decision,
counted per client, a refused decision marks its step rejected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from launch.store import NotFound

AT = datetime(2026, 6, 20, 4, 0, tzinfo=UTC)


def test_profile_changes_recorded_once_per_decision(store, launch_id):
    client_id = store.get_launch(launch_id).client_id
    changes = [("name", 1, AT), ("categories", 2, AT), ("avatar", 0, AT)]
    assert store.record_profile_changes(client_id, launch_id, 1, changes) == 2
    assert store.record_profile_changes(client_id, launch_id, 1, changes) == 0  # a replay adds nothing
    store.record_profile_changes(client_id, launch_id, 2, [("name", 1, AT + timedelta(days=1))])
    rows = store.profile_changes(client_id)
    assert [(r.field, r.count, r.attempt) for r in rows] == [("categories", 2, 1), ("name", 1, 1), ("name", 1, 2)] \
        or [(r.field, r.count, r.attempt) for r in rows] == [("name", 1, 1), ("categories", 2, 1), ("name", 1, 2)]
    assert all(r.changed_at.tzinfo is not None for r in rows)
    # a decision's own rows left out (the check of that decision must not count itself)
    assert [(r.field, r.attempt) for r in store.profile_changes(client_id, exclude=(launch_id, 2))] in (
        [("categories", 1), ("name", 1)], [("name", 1), ("categories", 1)])


def test_refuse_decided_step(store, launch_id):
    store.open_step(launch_id, "mini-program-profile", 1, started_at=AT, due_at=None, provisional=False)
    store.finish_step(launch_id, "mini-program-profile", 1, status="done", outcome="set", at=AT)
    step = store.refuse_decided_step(launch_id, "mini-program-profile", 1,
                                     note="name_changes: 名称… / name … (rule profile-name-changes)")
    assert step.status == "rejected" and "profile-name-changes" in step.note
    with pytest.raises(NotFound):
        store.refuse_decided_step(launch_id, "mini-program-profile", 9, note="x")
