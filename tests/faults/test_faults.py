"""The fault suite: faults under parked launches, each against one real stack.

One stack for the module, the scenarios chained on it: a Prefect server (SQLite) and a
`serve()` runner, the callback receiver as its own process (`weapp-launch api`), the store
on the suite's private PostgreSQL (which one scenario crashes), and alert channels on real
local sinks (an aiosmtpd SMTP server and a loopback HTTP endpoint, each tagged for every
alert). Two launches, carried through every scenario and then run to release:

- A opens email-activation, subject-info and face-verification (and release);
- B opens email-activation, subject-info, every filing gate, review-submission and code
  review (and release).

Every other gate has its passing decision recorded before the launch starts, so the
launches park exactly where the faults happen and spend no time elsewhere.

1. Prefect server SIGKILL: both launches park at email-activation; the server's process
   group is SIGKILLed; A's decision is submitted while it is down (recorded; its resume
   cannot reach Prefect); the server starts again on the same port and database. The runs
   are still parked; B's decision resumes its run at once; A's lost resume is delivered by
   the runner's resume-retry loop or the watcher's repair pass (run here every 5 s with its
   default grace, as its schedule would), whichever comes first — the figures say which.
2. PostgreSQL crash mid-decision: both launches park at subject-info; four submitters (two
   per launch: a duplicate each) are held inside their write transaction (a test session
   holds an EXCLUSIVE lock on `decisions`), then PostgreSQL is stopped in immediate mode (a
   crash: every session cut, nothing in flight commits) and started again; the submitters
   retry. Each gate gets exactly one decision, the duplicates are refused, both runs resume.
3. Two watchers at once: with A at face-verification and B at filing-materials and
   review-submission, two watcher passes in two processes start at the same moment, twice
   (now, and 50 hours on, when reminders and overdue rungs are due): each alert is enqueued
   once and reaches each channel once.
4. Receiver killed between the inbox write and the apply: with the EXCLUSIVE lock on
   `decisions` held again, A's face-verification push is answered `success` (inbox row and
   nonce committed) and the receiver's applier blocks inside the decision's transaction;
   the receiver's process group is SIGKILLed there. The row stays unapplied; a fresh
   receiver's start-up drain applies it: one decision, the row applied once, the run resumed.
5. Storm on B: four WeChat events (face verification, first review, SMS verified, code review
   passed), each sent ten times with fresh nonces, all at once and all early (their gates are
   not open), then eight concurrent CLI submissions each of filing-materials (waiting),
   filing-submission and bureau-review (both early). Every push is answered `success`, each
   event is one inbox row, each gate gets one decision, the duplicates are refused.
6. Both launches run to release: the early decisions are taken at their gates without a
   suspend, every decision is one per gate attempt, every side effect ran once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from devtools.simulator import WeChatPusher, push_for
from launch.app.decisions import submit_decision
from tests.faults.conftest import (
    ROOT,
    Chain,
    chain_on,
    decisions_per_attempt,
    effects_once,
    log_errors,
    new_parked_launch,
    passing,
    run_to_release,
    sigkill_group,
    stack_on,
)
from tests.flows.helpers import parked_at, pause_keys_seen
from tests.support.processes import flow_run_processes
from tests.support.stack import stack_resources
from tests.support.wait import wait_for

pytestmark = [pytest.mark.server, pytest.mark.faults, pytest.mark.postgres, pytest.mark.timeout(1500)]

FIRST, SECOND = "email-activation", "subject-info"  # the registration gates of faults 1 and 2
TAGS = ["ops", "client", "design", "dev", "manager"]  # every actor's tags and the escalation tag
PUSHED = ("face-verification", "first-review", "sms-verification", "code-review")  # WeChat's, early
STAFF_EARLY = ("filing-submission", "bureau-review")  # people's, early, through the CLI
HOLD_B = "filing-materials"  # B's filing waits here (the CLI storm answers it)
STORM_GATES = (*PUSHED, *STAFF_EARLY)
A_OPEN = {FIRST, SECOND, "face-verification"}
B_OPEN = {FIRST, SECOND, HOLD_B, "review-submission", *STORM_GATES}
COPIES = 10  # sends of each storm event
CLI_THREADS = 8


@pytest.fixture(scope="module")
def chain(private_pg, sinks, tmp_path_factory):
    smtp, http = sinks
    notifiers = json.dumps({  # JSON is YAML
        "channels": [
            {"name": "ops-mail", "url": smtp.url(), "tags": TAGS},
            {"name": "ops-sms", "url": http.url("/sms"), "tags": TAGS},
        ],
        "retry": {"attempts": 3, "backoff_seconds": [60]},
    })
    with chain_on(private_pg, tmp_path_factory.mktemp("faults"), "faults", notifiers, wechat=True) as c:
        c.a = new_parked_launch(A_OPEN)
        c.b = new_parked_launch(B_OPEN)
        c.launches = [c.a, c.b]
        yield c


def _all_parked(chain: Chain, key_of) -> bool:
    return all(parked_at(run_id, key_of(lid)) for lid, run_id, _ in chain.launches)


def test_prefect_server_sigkilled_with_launches_parked(scenario, figures):
    chain, stack = scenario, scenario.stack
    store = stack_resources().store
    t0 = time.monotonic()
    n = len(chain.launches)
    wait_for(lambda: _all_parked(chain, lambda lid: f"{FIRST}-1"), 600, f"{n} launches to park at {FIRST}-1")
    parked_in = time.monotonic() - t0
    # A parked run holds no process (the last one may still be exiting).
    wait_for(lambda: not flow_run_processes(stack.api_url), 60, "the parked runs' processes to exit")
    held_after = len(flow_run_processes(stack.api_url))

    # SIGKILL the server with its whole process group.
    t_kill = time.monotonic()
    sigkill_group(stack.server)
    lost_id = chain.launches[0][0]
    t_submit = time.monotonic()
    try:
        during = submit_decision(stack_resources(), lost_id, FIRST, passing(FIRST), "cli")
        during_outcome = f"{during.status}, resumed={during.resumed}"
    except Exception as exc:  # noqa: BLE001 - what the CLI meets while Prefect is down
        during_outcome = f"raised {type(exc).__name__}"
    submit_seconds = time.monotonic() - t_submit
    recorded_while_down = store.get_decision(lost_id, FIRST, 1)
    assert recorded_while_down is not None, "a decision submitted while Prefect is down must be recorded"

    stack.start_server()  # same port, same database
    down_seconds = time.monotonic() - t_kill
    t_back = time.monotonic()
    stack.apply_env()
    runner_survived = stack.runner.poll() is None
    if not runner_survived:
        stack.start_runner()
    # Nothing was lost: every run is still parked at its gate, its Resume form still there.
    assert _all_parked(chain, lambda lid: f"{FIRST}-1"), [
        (lid, prefect_state(run_id)) for lid, run_id, _ in chain.launches]

    resumed_now = []
    for lid, _, _ in chain.launches[1:]:
        result = submit_decision(stack_resources(), lid, FIRST, passing(FIRST), "cli")
        assert result.status == "recorded", result
        resumed_now.append(result.resumed)
    assert all(resumed_now), "a decision after the restart must resume its parked run at once"

    # The decision submitted while the server was down: its resume was lost; the watcher's
    # repair pass (every 5 s here, default grace) or a resume-retry loop must apply it.
    from launch.app.watcher import repair

    repairs = []

    def first_done():
        step = store.get_step(lost_id, FIRST, 1)
        if step is not None and step.status == "done":
            return True
        report = repair(stack_resources())
        repairs.extend(r for r in report.repaired if r.kind == "resume" and r.launch_id == lost_id)
        return False

    wait_for(first_done, 240, f"the decision recorded while Prefect was down to resume {lost_id}", interval=5)
    lost_resume_seconds = time.monotonic() - t_back
    wait_for(lambda: _all_parked(chain, lambda lid: f"{SECOND}-1"), 600, f"every launch to park at {SECOND}-1")

    counts = [decisions_per_attempt(lid).get((FIRST, 1)) for lid, _, _ in chain.launches]
    assert counts == [1] * n, counts
    figures.add(
        "server SIGKILL, launches parked",
        parked=n, parked_in_s=parked_in, processes_while_parked=held_after,
        server_down_s=down_seconds, runner_survived=runner_survived,
        submit_while_down=during_outcome, submit_while_down_s=submit_seconds,
        resumed=n, resumed_at_once=sum(resumed_now),
        lost_resume_applied_after_s=lost_resume_seconds,
        lost_resume_by="watcher repair pass" if repairs else "runner's resume-retry loop",
        decisions_once=f"{counts.count(1)}/{n}",
    )


def prefect_state(run_id: str):
    from launch.orchestration.prefect import read_state

    return read_state(run_id)


def test_store_postgres_restarted_mid_decision(scenario, figures):
    chain, pg = scenario, scenario.pg
    store = stack_resources().store
    n = len(chain.launches)
    assert _all_parked(chain, lambda lid: f"{SECOND}-1")
    # Hold every submitter inside its write transaction: reads pass, the INSERT waits.
    lock = pg.connect(chain.database)
    lock.execute("LOCK TABLE decisions IN EXCLUSIVE MODE")
    results: list[tuple[str, str]] = []
    errors: Counter = Counter()
    guard = threading.Lock()

    def submitter(lid: str, ids: dict) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                r = submit_decision(stack_resources(), lid, SECOND, passing(SECOND, ids), "cli")
            except Exception as exc:  # noqa: BLE001 - the database went away mid-transaction: retry
                with guard:
                    errors[type(exc).__name__] += 1
                time.sleep(0.5)
                continue
            with guard:
                results.append((lid, r.status))
            return

    threads = [threading.Thread(target=submitter, args=(lid, ids), daemon=True)
               for lid, _, ids in chain.launches for _ in range(2)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: pg.lock_waiters(chain.database) >= len(threads), 60,
                 f"{len(threads)} submitters to wait inside their transactions", interval=0.2)
        in_flight = pg.lock_waiters(chain.database)
        assert not results, results  # nobody got through the lock
        t_crash = time.monotonic()
        stop_seconds = pg.stop("immediate")  # a crash: nothing in flight commits
    finally:
        try:
            lock.close()
        except Exception:  # noqa: BLE001 - its server is gone
            pass
    time.sleep(1.0)
    start_seconds = pg.start()
    down_seconds = time.monotonic() - t_crash
    for t in threads:
        t.join(150)
    assert not any(t.is_alive() for t in threads), "a submitter never got an answer"
    back_in = time.monotonic() - t_crash

    statuses = Counter(status for _, status in results)
    per_launch = {lid: Counter(s for l2, s in results if l2 == lid) for lid, _, _ in chain.launches}
    assert all(c["recorded"] == 1 and c["duplicate"] == 1 for c in per_launch.values()), per_launch
    counts = [decisions_per_attempt(lid).get((SECOND, 1)) for lid, _, _ in chain.launches]
    assert counts == [1] * n, counts
    assert sum(errors.values()) >= len(threads), f"the crash should have cut every held submitter: {errors}"

    def all_taken():
        return all((s := store.get_step(lid, SECOND, 1)) is not None and s.status == "done"
                   for lid, _, _ in chain.launches)

    wait_for(all_taken, 600, f"every launch to take its {SECOND} decision")
    figures.add(
        "store PostgreSQL crash mid-decision",
        launches_parked=n, submitters_in_flight=in_flight, pg_stop_s=stop_seconds, pg_start_s=start_seconds,
        pg_down_s=down_seconds, errors_seen=sum(errors.values()), error_kinds="+".join(sorted(errors)),
        decisions_recorded=f"{statuses['recorded']}/{n}", duplicates_refused=statuses["duplicate"],
        answered_after_crash_s=back_in, resumed=n,
    )


def _pusher(stack) -> WeChatPusher:
    env = stack.env
    return WeChatPusher(env["WEAPP_LAUNCH_PUBLIC_URL"], env["WEAPP_LAUNCH_WECHAT_TOKEN"],
                        env["WEAPP_LAUNCH_WECHAT_ENCODING_AES_KEY"], env["WEAPP_LAUNCH_WECHAT_COMPONENT_APPID"])


def _parked_where_they_should_be(chain) -> bool:
    store = stack_resources().store
    a_id, _, _ = chain.a
    b_id, b_run, _ = chain.b
    a_step = store.get_step(a_id, "face-verification", 1)
    b_filing = store.get_step(b_id, HOLD_B, 1)
    if a_step is None or a_step.status != "waiting" or b_filing is None or b_filing.status != "waiting":
        return False
    return (parked_at(a_step.flow_run_id, "face-verification-1") and parked_at(b_filing.flow_run_id, f"{HOLD_B}-1")
            and parked_at(b_run, "review-submission-1"))


def _two_passes(stack, shift_hours: float, tag: str) -> list[dict]:
    go = stack.base / f"go-{tag}"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "tests.faults.watch_pass", "--go", str(go), "--shift-hours", str(shift_hours),
         "--worker-id", f"watcher-{tag}-{i}"],
        env=stack.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) for i in (1, 2)]
    for p in procs:  # each has imported everything, opened the store and read the notifiers file
        line = p.stdout.readline().strip()
        assert line == "ready", f"watcher pass did not get ready: {line} {p.stderr.read()[-3000:] if p.poll() else ''}"
    go.touch()  # both start their pass now
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, f"watcher pass exited {p.returncode}: {out[-2000:]} {err[-3000:]}"
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def test_two_watchers_at_once_send_each_alert_once(scenario, sinks, figures):
    chain = scenario
    smtp, http = sinks
    store = stack_resources().store
    t0 = time.monotonic()
    wait_for(lambda: _parked_where_they_should_be(chain), 600, f"A at face-verification, B at {HOLD_B} "
             "and review-submission")
    parked_in = time.monotonic() - t0
    before = {a.id for a in store.list_alerts()}
    assert not before, "no watcher pass ran yet"

    reports = _two_passes(chain.stack, 0, "now") + _two_passes(chain.stack, 50, "later")
    assert all(not r["started_late"] for r in reports), "a watcher process started after the signal"
    alerts = store.list_alerts()
    assert len(alerts) >= 6, [a.dedupe_key for a in alerts]

    enqueued = Counter(e["key"] for r in reports for e in r["enqueued"])
    assert set(enqueued) == {a.dedupe_key for a in alerts}, "an alert in the outbox that no pass reports, or back"
    assert set(enqueued.values()) == {1}, [k for k, n in enqueued.items() if n > 1]
    sent = Counter(s["alert_id"] for r in reports for s in r["sent"])
    assert set(sent.values()) == {1} and len(sent) == len(alerts), sent
    assert all(a.status == "sent" for a in alerts), [(a.dedupe_key, a.status) for a in alerts]

    channels = ("ops-mail", "ops-sms")
    delivered = {c: Counter() for c in channels}
    for a in alerts:
        for d in store.deliveries_for(a.id):
            if d.ok:
                delivered[d.channel][a.id] += 1
    received = {"ops-mail": len(smtp.inbox.messages), "ops-sms": len(http.messages)}
    for c in channels:
        assert set(delivered[c].values()) == {1} and len(delivered[c]) == len(alerts), (c, delivered[c])
        assert received[c] == len(alerts), (c, received[c], len(alerts))
    by_worker = Counter(r["worker_id"] for r in reports for _ in r["sent"])
    enq_by_worker = Counter(r["worker_id"] for r in reports for _ in r["enqueued"])
    for c in channels:
        figures.add(
            f"two watchers at once: {c}",
            launches_parked=2, parked_in_s=parked_in if c == channels[0] else "", passes=len(reports),
            alerts_enqueued=len(alerts), enqueued_twice=sum(1 for n in enqueued.values() if n > 1),
            delivered=len(delivered[c]), received=received[c],
            duplicated=max(0, received[c] - len(alerts)), lost=len(alerts) - len(delivered[c]),
            enqueued_by="/".join(str(enq_by_worker[w]) for w in sorted(enq_by_worker)),
            sent_by="/".join(str(by_worker[w]) for w in sorted(by_worker)),
        )


def test_receiver_killed_between_inbox_write_and_apply(scenario, figures):
    chain, stack, pg = scenario, scenario.stack, scenario.pg
    store = stack_resources().store
    a_id, _, ids = chain.a
    step = store.get_step(a_id, "face-verification", 1)
    assert step.status == "waiting" and parked_at(step.flow_run_id, "face-verification-1")
    pusher = _pusher(stack)
    path, message = push_for("face-verification", {"outcome": "passed"}, ids["appid"], ids["original_id"],
                             pusher.component_appid)

    lock = pg.connect(chain.database)
    lock.execute("LOCK TABLE decisions IN EXCLUSIVE MODE")  # the applier will wait inside its transaction
    try:
        status = pusher.send(path, message)
        assert status == 200, status
        pending = [e for e in store.unapplied_events() if e.gate == "face-verification"]
        assert len(pending) == 1, pending
        row_id = pending[0].id
        wait_for(lambda: pg.lock_waiters(chain.database) >= 1, 30, "the receiver's applier to start applying",
                 interval=0.1)
        sigkill_group(stack.api)  # killed between the inbox write and the apply
    finally:
        lock.close()
    time.sleep(1.0)
    row = store.get_event(row_id)
    assert row.applied_at is None, "nothing applied the row: its applier died mid-transaction"
    assert store.get_decision(a_id, "face-verification", 1) is None
    assert store.get_step(a_id, "face-verification", 1).status == "waiting"

    t0 = time.monotonic()
    stack.start_api()  # a fresh receiver: its start-up drain applies what the dead one left
    wait_for(lambda: store.get_event(row_id).applied_at is not None, 60, "the fresh receiver to apply the row")
    applied_in = time.monotonic() - t0
    wait_for(lambda: store.get_step(a_id, "face-verification", 1).status == "done", 240,
             "A's filing run to take the decision")
    resumed_in = time.monotonic() - t0
    row = store.get_event(row_id)
    decisions = [d for d in store.history(a_id) if d.gate == "face-verification"]
    assert row.result == "applied" and row.launch_id == a_id, (row.result, row.error)
    assert len(decisions) == 1 and decisions[0].inbox_id == row_id and decisions[0].channel == "wechat", decisions
    assert len([e for e in store.events_for(a_id) if e.gate == "face-verification"]) == 1
    figures.add(
        "receiver SIGKILL between inbox write and apply",
        pushes=1, answered="success", inbox_rows=1, unapplied_after_kill=1,
        applied_by="start-up drain", applied_after_start_s=applied_in, gate_taken_after_s=resumed_in,
        decisions=f"{len(decisions)}/1", row_applied_once=row.result == "applied",
    )


def test_storm_of_duplicate_and_early_callbacks(scenario, figures):
    chain, stack = scenario, scenario.stack
    store = stack_resources().store
    b_id, b_run, ids = chain.b
    assert store.get_step(b_id, HOLD_B, 1).status == "waiting"
    for gate in STORM_GATES:
        assert store.get_step(b_id, gate, 1) is None, f"{gate} is open already: its decision would not be early"
    pusher = _pusher(stack)
    events = {
        "face-verification": push_for("face-verification", {"outcome": "passed"}, ids["appid"], ids["original_id"],
                                      pusher.component_appid),
        "first-review": push_for("first-review", {"outcome": "passed"}, ids["appid"], ids["original_id"],
                                 pusher.component_appid),
        "sms-verification": push_for("sms-verification", {"outcome": "verified"}, ids["appid"], ids["original_id"],
                                     pusher.component_appid),
        "code-review": push_for("code-review", {"outcome": "passed"}, ids["appid"], ids["original_id"],
                                pusher.component_appid),
    }
    sends = [events[g] for g in events for _ in range(COPIES)]
    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        statuses = Counter(pool.map(lambda push: pusher.send(*push), sends))
    storm_seconds = time.monotonic() - t0
    assert statuses == Counter({200: len(sends)}), statuses

    wait_for(lambda: all(store.get_decision(b_id, g, 1) for g in PUSHED) and not store.unapplied_events(), 120,
             "every early push to be applied")
    rows = [e for e in store.events_for(b_id)]
    assert len(rows) == len(events), [(e.kind, e.result) for e in rows]
    assert all(e.result in ("applied", "duplicate") for e in rows), [(e.kind, e.result, e.error) for e in rows]

    # Concurrent duplicate CLI decisions: the waiting filing-materials, and early ones for staff gates.
    results: dict[str, Counter] = {g: Counter() for g in (HOLD_B, *STAFF_EARLY)}
    guard = threading.Lock()
    barrier = threading.Barrier(len(results) * CLI_THREADS)

    def cli(gate: str) -> None:
        barrier.wait(30)
        r = submit_decision(stack_resources(), b_id, gate, passing(gate), "cli")
        with guard:
            results[gate][r.status] += 1

    threads = [threading.Thread(target=cli, args=(g,)) for g in results for _ in range(CLI_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for gate, c in results.items():
        assert c == Counter({"recorded": 1, "duplicate": CLI_THREADS - 1}), (gate, c)
    per_attempt = decisions_per_attempt(b_id)
    for gate in (*STORM_GATES, HOLD_B):
        assert per_attempt.get((gate, 1)) == 1, (gate, per_attempt)
    assert set(per_attempt.values()) == {1}, per_attempt
    figures.add(
        "storm of duplicate and early callbacks",
        pushes=len(sends), answered_success=statuses[200], distinct_events=len(events), inbox_rows=len(rows),
        rows_applied=sum(1 for e in rows if e.result == "applied"),
        rows_duplicate=sum(1 for e in rows if e.result == "duplicate"),
        cli_submissions=len(results) * CLI_THREADS, cli_recorded=sum(c["recorded"] for c in results.values()),
        duplicates_refused=sum(c["duplicate"] for c in results.values()),
        gates_decided_once=f"{sum(1 for g in (*STORM_GATES, HOLD_B) if per_attempt.get((g, 1)) == 1)}/"
                           f"{len(STORM_GATES) + 1}",
        storm_s=storm_seconds,
    )
    chain.storm_ok = True


def test_every_launch_completes(scenario, figures):
    chain = scenario
    store = stack_resources().store
    t0 = time.monotonic()
    ids = [lid for lid, _, _ in chain.launches]
    released = run_to_release(ids, 600)
    b_id, b_run, _ = chain.b
    filing_run = store.get_branch(b_id, "filing").flow_run_id
    suspended = set(pause_keys_seen(filing_run)) | set(pause_keys_seen(b_run))
    early = STORM_GATES
    taken_without_suspend = [g for g in early if f"{g}-1" not in suspended]
    if getattr(chain, "storm_ok", False):  # the early decisions of the storm were taken at their gates
        assert taken_without_suspend == list(early), suspended
        assert all(store.get_decision(b_id, g, 1).consumed_at is not None for g in early)
    effects_total, bad = 0, []
    for lid in ids:
        n, not_once = effects_once(lid)
        effects_total += n
        bad += not_once
        assert set(decisions_per_attempt(lid).values()) == {1}, decisions_per_attempt(lid)
    assert not bad, bad
    assert not store.unapplied_events()
    figures.add(
        "launches run to release",
        launches=len(ids), completed=len(released), to_release_s=time.monotonic() - t0,
        early_taken_without_suspend=(f"{len(taken_without_suspend)}/{len(early)}" if getattr(chain, "storm_ok", False)
                                     else "n/a (storm did not run)"),
        effects=effects_total, effects_not_once=len(bad),
    )
    stack = chain.stack
    figures.add(
        "logs: exceptions seen (top 3)",
        server=log_errors(stack.base / "server.log"), runner=log_errors(stack.runner_log),
        receiver=log_errors(stack.base / "api.log"),
    )
