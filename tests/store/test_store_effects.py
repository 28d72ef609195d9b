from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from launch.store import NotFound


def test_note_effect_counts(store, launch_id):
    assert store.note_effect(launch_id, "send-intake-mail", "run-1") == 1
    assert store.note_effect(launch_id, "send-intake-mail", "run-2") == 2
    assert store.note_effect(launch_id, "submit-audit", "run-1") == 1
    effects = {e.effect_key: e for e in store.effects_for(launch_id)}
    assert effects["send-intake-mail"].count == 2 and effects["send-intake-mail"].flow_run_id == "run-2"
    assert effects["submit-audit"].count == 1
    with pytest.raises(NotFound):
        store.note_effect("l-0000000000", "x")


def test_note_effect_concurrent_threads(store, make_store, launch_id):
    stores = [store, make_store()]
    barrier = threading.Barrier(8)

    def go(i):
        barrier.wait()
        return [stores[i % 2].note_effect(launch_id, "e", f"run-{i}") for _ in range(5)]

    with ThreadPoolExecutor(8) as pool:
        counts = [c for per_thread in pool.map(go, range(8)) for c in per_thread]
    assert sorted(counts) == list(range(1, 41))  # every increment saw a distinct count
    assert store.effects_for(launch_id)[0].count == 40


def test_several_processes_write_at_once(store, db_url, keys, launch_id):
    """Separate processes (flow runs, receiver, watcher) writing the same database."""
    script = textwrap.dedent(
        """
        import sys
        from datetime import UTC, datetime
        from launch.store import Store
        url, fernet, index, launch_id, n = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3]), sys.argv[4], sys.argv[5]
        store = Store(url, fernet.encode(), index)
        for i in range(20):
            store.note_effect(launch_id, "shared", f"proc-{n}")
            store.put_event("system", f"proc-{n}-{i}", "tick", {}, received_at=datetime.now(UTC))
            store.record_decision(launch_id, "gate", i + 1, f"by-{n}", f"proc-{n}", "system", {})
        store.close()
        """
    )
    args = [db_url, keys.fernet.decode(), keys.index.hex(), launch_id]
    procs = [
        subprocess.Popen([sys.executable, "-c", script, *args, str(n)], stderr=subprocess.PIPE, text=True)
        for n in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert store.effects_for(launch_id)[0].count == 80
    assert len(store.unapplied_events(limit=1000)) == 80
    assert len(store.history(launch_id)) == 20  # one decision per gate attempt across processes
