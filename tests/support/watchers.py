"""Two deadline watchers over one store, their passes at the same moments."""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from datetime import datetime
from typing import Callable, Iterable

from launch.app import Resources
from launch.app.watcher import PassReport, watch_once
from launch.store import Store


def passes_side_by_side(res: Resources, config, moments: Iterable[datetime], *,
                        before: Callable[[datetime], None] | None = None) -> list[PassReport]:
    """At each moment (after `before(moment)`, if given), two watchers — each `res`'s settings
    over a Store object of its own (its own engine and connections), with these channels —
    start a pass together (a barrier), enqueue and deliver only. Returns every pass's report;
    fails if a pass raised or reported errors."""
    settings = res.settings
    watchers = [replace(res, _store=Store(settings.store_url, settings.fernet_key(),
                                          settings.derived_secret("blind-index")),
                        _calendar=res.calendar, _catalogue=res.catalogue, _notifier=(config, None, None))
                for _ in range(2)]
    reports: list[PassReport] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    try:
        for now in moments:
            if before is not None:
                before(now)
            barrier = threading.Barrier(2)

            def one_pass(i: int, now=now, barrier=barrier) -> None:
                try:
                    barrier.wait(30)
                    r = watch_once(watchers[i], now, worker_id=f"watcher-{i}", repair_runs=False)
                    with lock:
                        reports.append(r)
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)

            threads = [threading.Thread(target=one_pass, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
    finally:
        for w in watchers:
            w._store.close()
    assert not errors, errors
    assert all(r.ok for r in reports), [r.errors for r in reports]
    return reports


# Late alerts say so in front of the title (notifiers.lateness): strip it to compare with the stored title.
LATE_NOTE = re.compile(r"^【(?:延迟|已过截止时间|短信核验窗口已关闭|已过时)[^】]*】")
