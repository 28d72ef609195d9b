"""The receiver's two worker threads: the inbox writer (group commit) and the applier.

Both take the process's `Resources`: the writer lands accepted pushes (nonce, signature and
inbox row in one transaction) through `launch.app.inbox.land_batch`; the applier drains the
inbox through `launch.app.inbox.apply_pending` after each accepted push, at start-up and
every `interval` seconds, and purges nonces older than their lifetime now and then.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from datetime import timedelta

from launch.app import Resources
from launch.app.inbox import apply_pending, land_batch, nonce_lifetime

log = logging.getLogger("weapp_launch.api")

NONCE_SCOPE = "wechat"
APPLIER_INTERVAL_SECONDS = 30.0
NONCE_PURGE_EVERY_SECONDS = 600.0


class InboxWriter:
    """One thread writes every accepted push: what queued up while the previous transaction
    ran goes into the next one (group commit). Requests wait on a Future for their commit.

    One writer instead of a transaction per request thread: SQLite has one write lock, and
    threads contending for it back off in sleeps of up to 100 ms; batching also pays one
    commit for many pushes. If a batch fails, its pushes are retried one by one so one bad
    push cannot fail the others."""

    def __init__(self, res: Resources, max_batch: int = 128):
        self.res = res
        self.nonce_ttl = nonce_lifetime(res.settings)
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pending = 0
        self._last_submit = 0.0

    def submit(self, landing) -> Future:
        future: Future = Future()
        with self._lock:
            self._pending += 1
            self._last_submit = time.monotonic()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="weapp-inbox-writer", daemon=True)
                self._thread.start()
        self._queue.put((landing, future))
        return future

    def busy(self) -> bool:
        return self._pending > 0

    def wait_idle(self, timeout: float, quiet: float = 0.01) -> None:
        """Block (up to `timeout`) until no push has been waiting for `quiet` seconds."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._pending == 0 and time.monotonic() - self._last_submit >= quiet:
                return
            time.sleep(0.002)

    def stop(self, timeout: float = 10.0) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout)
        self._thread = None

    def _land(self, landings: list) -> list:
        return land_batch(self.res, landings, nonce_scope=NONCE_SCOPE, nonce_ttl_seconds=self.nonce_ttl)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            try:
                results = self._land([landing for landing, _ in batch])
                for (_, future), result in zip(batch, results):
                    future.set_result(result)
            except Exception:  # noqa: BLE001 - isolate the push that fails
                for landing, future in batch:
                    try:
                        future.set_result(self._land([landing])[0])
                    except Exception as exc:  # noqa: BLE001
                        future.set_exception(exc)
            finally:
                with self._lock:
                    self._pending -= len(batch)
            if stop:
                return


class Applier:
    """A daemon thread draining the inbox: at start, when kicked, and every `interval` seconds."""

    def __init__(self, res: Resources, interval: float = APPLIER_INTERVAL_SECONDS, writer: InboxWriter | None = None):
        self.res = res
        self.interval = interval
        self.nonce_ttl = nonce_lifetime(res.settings)
        self.writer = writer
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_purge = 0.0
        self.passes = 0

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._wake.set()  # drain once at start-up: rows a crash left unapplied
            self._thread = threading.Thread(target=self._run, name="weapp-inbox-applier", daemon=True)
            self._thread.start()

    def kick(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.drain()
                self._purge_nonces()
            except Exception as exc:  # noqa: BLE001 - never let the thread die
                log.warning("inbox applier pass failed: %s", type(exc).__name__)
            self.passes += 1

    def drain(self, batch: int = 100) -> int:
        done = 0
        # pushes waiting to be written go first: their response waits on it, applying does not
        between = (lambda: self.writer.wait_idle(0.2)) if self.writer is not None else None
        while not self._stop.is_set():
            outcomes = apply_pending(self.res, limit=batch, between=between)
            applied = [o for o in outcomes if o.result is not None]
            done += len(applied)
            if len(outcomes) < batch or not applied:
                break
        return done

    def _purge_nonces(self) -> None:
        now = time.monotonic()
        if now - self._last_purge < NONCE_PURGE_EVERY_SECONDS:
            return
        self._last_purge = now
        self.res.store.purge_nonces(self.res.now() - timedelta(seconds=self.nonce_ttl))
