"""Issue 14's alert faults on a real stack: both channels down for longer than the whole retry
budget, and an SMS gateway slower than the channel's read timeout.

One stack for the module (server and runner, the store on the suite's private PostgreSQL) and
two real alert sinks (tests/notifiers/conftest.py: an aiosmtpd SMTP server and a loopback HTTP
"SMS gateway"), both tagged for every alert, with the default retry policy (5 tries over ~81
minutes) and breaker (3 failures, a probe every 300 s). One real launch, started on the stack
with every gate but these two and release decided beforehand, parks at two real gates at once:
its filing branch at ``sms-verification`` (the 12381 SMS window, 24 clock hours; the ``sms``
ladder) and its launch run at ``review-submission`` (a staff gate, 1 working day, the standard
ladder; its alerts carry a signed link, signed when each one is sent). One launch only: its
chain of flow runs (registration, the design, implementation and content branches, review,
release) is most of the module's time, and a second launch would add a minute or more on a
busy machine.

The deadline watcher's passes run in this process with an explicit ``now`` (the deployment
runs one every 300 s: hours of outage take seconds here), enqueue and delivery only.

1. Outage: both sinks refuse connections from before the launches start; passes every 15
   minutes for 30 hours (the SMS window opens and closes unseen, every rung of it comes due).
   Both channels are marked down once, every alert waits without spending its tries. The
   mail server comes back, an hour later the gateway: each sink gets every alert exactly once
   (counted by the idempotency key in its own records, no dedupe at the sinks), oldest first,
   "delayed by" on whatever went out more than 15 minutes late, and the SMS-window rungs say
   the window has closed.
2. Slow gateway: the gateway keeps each new message, then answers after the phone channel's
   read timeout (it dedupes on the Idempotency-Key, as an idempotent gateway does). Passes
   every 15 minutes until three more rungs of the staff gate have come due (its 80 %, due,
   overdue, the daily "still overdue": which ones depends on today's working-day calendar; a
   day with nothing due and nothing in the outbox is skipped to the step's next rung): the
   gateway delivers each alert once, every alert ends ``sent`` (none failed for good), and the
   mail sink gets each alert once, at its first try.
3. The launch completes through the simulator; a last pass sends nothing more.

Figures per channel (from the sinks' own records): alerts enqueued / delivered / duplicated /
lost, and what the notes said.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest

from devtools.simulator import Simulator
from launch.app import Resources
from launch.app.watcher import watch_once
from launch.domain.alerts import format_due
from notifiers.deliver import idempotency_key
from tests.faults.conftest import Chain, chain_on, effects_once, new_parked_launch
from tests.flows.helpers import parked_at
from tests.notifiers.conftest import HttpEndpoint, SmtpServer
from tests.support.stack import stack_resources
from tests.support.wait import wait_for

pytestmark = [pytest.mark.server, pytest.mark.faults, pytest.mark.postgres, pytest.mark.timeout(600)]

TAGS = ["ops", "client", "design", "dev", "manager"]  # every actor's tags and the escalation tag
MAIL, PHONE = "ops-mail", "ops-phone"
CHANNELS = (MAIL, PHONE)
OPEN = ("sms-verification", "review-submission")  # where the launch parks (filing branch, launch run)
PASS_EVERY = timedelta(minutes=15)
OUTAGE = timedelta(hours=30)  # longer than the SMS window (24 h) + its last rung (2 h after)
PHONE_LATER = timedelta(hours=1)  # the gateway comes back an hour after the mail server
SLOW_ALERTS = 3  # new alerts the slow gateway must see
SLOW_CAP = timedelta(days=14)  # a long holiday can put the next rung a week away
READ_TIMEOUT = 1.0  # the phone channel's, in the slow-gateway scenario
SLOW_SECONDS = 3.0  # the gateway's answer to a new message comes this late
DELAYED_AFTER = 900  # seconds: the default `delayed_after_seconds`
SMS_BEFORE_DUE = ("notice", "left-12h", "left-4h", "left-1h")  # the sms rungs that speak of time left
LATE_TITLES = ("【延迟 ", "【短信核验窗口已关闭 SMS window closed】", "【已过截止时间 deadline passed】")


def _notifiers(smtp: SmtpServer, http: HttpEndpoint, phone_read_timeout: float | None = None) -> str:
    phone = {"name": PHONE, "url": http.url("/sms"), "tags": TAGS}
    if phone_read_timeout is not None:
        phone["read_timeout"] = phone_read_timeout
    return json.dumps({"channels": [{"name": MAIL, "url": smtp.url(), "tags": TAGS}, phone]})  # JSON is YAML


@pytest.fixture(scope="module")
def chain(private_pg, sinks, tmp_path_factory):
    smtp, http = sinks
    notifiers = _notifiers(smtp, http)  # default retry, breaker, delay
    with chain_on(private_pg, tmp_path_factory.mktemp("faults-alerts"), "faults_alerts", notifiers) as c:
        c.clock = None  # the watcher's `now` where the last scenario left it
        yield c


def _watcher() -> Resources:
    """The watcher as a long-running process holds it: the stack's settings and store, the
    notifiers file read once, now."""
    res = stack_resources()
    watcher = replace(res, _store=res.store, _calendar=res.calendar, _catalogue=res.catalogue)
    config, _, error = watcher.notifier
    assert config is not None and error is None, error
    return watcher


# ---------------------------------------------------------------- what the sinks hold


def _sink_records(smtp: SmtpServer, http: HttpEndpoint) -> dict[str, list[tuple[str | None, str, str]]]:
    """Per channel, in arrival order: (idempotency key, title, text) of each message delivered."""
    mails = [(m["X-Idempotency-Key"], str(m["Subject"]), smtp.inbox.text_of(m)) for m in smtp.inbox.messages]
    with http._lock:
        received = list(zip(http.keys, (p for _, p in http.received), strict=True))
    sms = [(k, p.get("title", ""), p.get("message", "")) for k, p in received]
    return {MAIL: mails, PHONE: sms}


def _per_channel(alerts, records, skip: dict[str, int] | None = None) -> dict[str, dict]:
    """For each channel: the messages of these alerts at its sink (from index ``skip``), by
    alert id, and the figures: enqueued, delivered, duplicated, lost, stray."""
    out = {}
    for ch in CHANNELS:
        recs = records[ch][(skip or {}).get(ch, 0):]
        key_to_alert = {idempotency_key(a.dedupe_key, ch): a for a in alerts}
        by_alert: dict[int, list[tuple[str, str]]] = {}
        order: list[int] = []
        stray = 0
        for key, title, text in recs:
            a = key_to_alert.get(key)
            if a is None:
                stray += 1
                continue
            by_alert.setdefault(a.id, []).append((title, text))
            order.append(a.id)
        out[ch] = {
            "messages": by_alert,
            "order": list(dict.fromkeys(order)),
            "enqueued": len(alerts),
            "delivered": len(by_alert),
            "duplicated": sum(len(v) - 1 for v in by_alert.values()),
            "lost": sum(1 for a in alerts if a.id not in by_alert),
            "stray": stray,
        }
    return out


def _gate(alert) -> str:
    return alert.dedupe_key.rsplit(":", 3)[1]  # {launch}:{gate}:{attempt}:{rung}


def _ok_deliveries(store, alert_id: int) -> dict[str, list]:
    out: dict[str, list] = {}
    for d in store.deliveries_for(alert_id):
        if d.ok:
            out.setdefault(d.channel, []).append(d.at)
    return out


def _our_alerts(store, launch_ids):
    return sorted((a for lid in launch_ids for a in store.list_alerts(launch_id=lid)),
                  key=lambda a: (a.send_after, a.id))


def _passes(start, end, every=PASS_EVERY):
    t = start
    while t < end:
        yield t
        t += every


def _parked(chain: Chain) -> bool:
    store = stack_resources().store
    [(lid, run_id, _)] = chain.launches
    for gate in OPEN:
        step = store.get_step(lid, gate, 1)
        if step is None or step.status != "waiting" or not parked_at(step.flow_run_id or run_id, f"{gate}-1"):
            return False
    return True


# ---------------------------------------------------------------- 1. both channels down


def test_both_channels_down_longer_than_the_retry_budget(scenario, sinks, figures):
    chain = scenario
    smtp, http = sinks
    store = stack_resources().store
    smtp.go_down()
    http.go_down()
    t_start = time.monotonic()
    chain.launches = [new_parked_launch(set(OPEN))]
    wait_for(lambda: _parked(chain), 300, "the launch to park at sms-verification and review-submission")
    parked_in = time.monotonic() - t_start
    ids = [lid for lid, _, _ in chain.launches]
    assert store.list_alerts() == [], "no watcher pass ran yet"

    t0 = stack_resources().now()
    mail_back, phone_back = t0 + OUTAGE, t0 + OUTAGE + PHONE_LATER
    end = phone_back + timedelta(hours=1)
    events: list[tuple[str, str]] = []
    sent_at: dict[tuple[int, str], object] = {}
    passes = 0
    watcher = _watcher()  # as a long-running watcher: the notifiers file read once
    t_passes = time.monotonic()
    for now in _passes(t0, end):
        if now >= mail_back and not smtp.is_up:
            smtp.come_back()
        if now >= phone_back and http._server is None:
            http.come_back()
        p = watch_once(watcher, now, repair_runs=False)
        passes += 1
        assert p.ok, p.errors
        assert p.failed == [], p.failed  # a down channel never uses up an alert's tries
        events += [(e.channel, e.change) for e in p.channel_events]
        if now < mail_back:
            assert p.sent == [], "nothing can be sent while both channels are down"
        if now + PASS_EVERY >= mail_back and now < mail_back:  # the last pass of the outage
            waiting = store.list_alerts(status="waiting")
            outage_alerts = _our_alerts(store, ids)
            assert {a.id for a in waiting} == {a.id for a in outage_alerts}, Counter(a.status for a in outage_alerts)
            assert all(set(a.waiting_for) == set(CHANNELS) for a in waiting), [a.waiting_for for a in waiting]
            most_tries = max(a.attempts for a in outage_alerts)
            assert most_tries < 5, "an alert spent its tries on a dead channel"
            assert smtp.inbox.messages == [] and http.requests == 0
        for s in p.sent:
            for ch in s.channels:
                sent_at.setdefault((s.alert_id, ch), now)
        for w in p.waiting:
            for ch in w.channels:
                sent_at.setdefault((w.alert_id, ch), now)
    passes_s = time.monotonic() - t_passes
    chain.clock = end

    # each channel marked down once (its third failure in a row, in the second pass), back once
    assert sorted(events[:2]) == [(MAIL, "down"), (PHONE, "down")] and events[2:] == [(MAIL, "up"), (PHONE, "up")], \
        events

    alerts = _our_alerts(store, ids)
    a_id = ids[0]
    rungs = {(a.launch_id, _gate(a), a.rung) for a in alerts}
    assert {(a_id, "sms-verification", r) for r in (*SMS_BEFORE_DUE, "expired", "expired-2h")} <= rungs, rungs
    # the staff gate's rungs depend on the working-day calendar from today: its notice at least
    assert (a_id, "review-submission", "notice") in rungs, rungs
    assert all(a.status == "sent" for a in alerts), Counter(a.status for a in alerts)
    assert store.list_alerts(status="waiting") == [] and store.list_alerts(status="failed") == []

    sink = _per_channel(alerts, _sink_records(smtp, http))
    by_id = {a.id: a for a in alerts}
    due_order = [a.id for a in alerts]  # (send_after, id)
    sms_step = store.get_step(a_id, "sms-verification", 1)
    closed_zh, closed_en = format_due(sms_step.due_at, "Asia/Shanghai")
    notes: dict[str, Counter] = {}
    for ch in CHANNELS:
        got = sink[ch]
        assert got["stray"] == 0, f"{ch}: messages that are none of our alerts"
        assert got["lost"] == 0, (ch, [by_id[i].dedupe_key for i in due_order if i not in got["messages"]])
        assert got["duplicated"] == 0, (ch, {by_id[i].dedupe_key: len(m) for i, m in got["messages"].items()
                                             if len(m) > 1})
        assert got["order"] == due_order, (ch, [by_id[i].dedupe_key for i in got["order"]])  # oldest first
        notes[ch] = Counter()
        for a in alerts:
            [(title, text)] = got["messages"][a.id]
            went = sent_at[(a.id, ch)]
            assert [d for d in _ok_deliveries(store, a.id)[ch]] == [went], (ch, a.dedupe_key)
            assert "[[staff-link:" not in text, (ch, a.dedupe_key)  # signed when sent, never the placeholder
            if _gate(a) == "review-submission":
                assert f"/gates/{a_id}/review-submission?token=" in text, (ch, a.dedupe_key)
            late = (went - a.send_after).total_seconds()
            if late > DELAYED_AFTER:
                assert "delayed by" in text and "延迟" in text, (ch, a.dedupe_key, late, text[:300])
                assert title.startswith(LATE_TITLES), (ch, a.dedupe_key, title)  # in front of the title too
                notes[ch]["delayed"] += 1
            else:
                assert "delayed by" not in text, (ch, a.dedupe_key, late)
            if a.launch_id == a_id and _gate(a) == "sms-verification":
                if a.rung in SMS_BEFORE_DUE:  # what it says of the time left is out of date: the window closed
                    assert title.startswith("【短信核验窗口已关闭 SMS window closed】"), (ch, a.rung, title)
                    assert f"The SMS window closed at {closed_en}" in text and f"短信核验窗口已于 {closed_zh} 关闭" in text
                    notes[ch]["window_closed"] += 1
                else:  # "expired …" is still true: only late
                    assert "window closed" not in text and "delayed by" in text, (ch, a.rung)
    assert notes[MAIL]["window_closed"] == notes[PHONE]["window_closed"] == len(SMS_BEFORE_DUE)
    for a in alerts:  # and our own records agree: one successful delivery per channel
        assert {ch: len(v) for ch, v in _ok_deliveries(store, a.id).items()} == {MAIL: 1, PHONE: 1}, a.dedupe_key

    chain.outage_alerts = {a.id for a in alerts}
    chain.sink_marks = {ch: len(r) for ch, r in _sink_records(smtp, http).items()}
    for ch, back in ((MAIL, mail_back), (PHONE, phone_back)):
        got = sink[ch]
        figures.add(
            f"both channels down 30 h: {ch}",
            launches=len(ids), parked_in_s=parked_in, passes=passes, passes_s=passes_s,
            down_h=round((back - t0).total_seconds() / 3600, 2), most_tries=most_tries,
            enqueued=got["enqueued"], delivered=got["delivered"],
            duplicated=got["duplicated"], lost=got["lost"], delayed_by=notes[ch]["delayed"],
            sms_window_closed=notes[ch]["window_closed"], oldest_first=got["order"] == due_order,
        )


# ---------------------------------------------------------------- 2. a slow gateway


def test_gateway_slower_than_the_read_timeout(scenario, sinks, figures):
    chain = scenario
    smtp, http = sinks
    store = stack_resources().store
    ids = [lid for lid, _, _ in chain.launches]
    chain.notifiers.write_text(_notifiers(smtp, http, READ_TIMEOUT), encoding="utf-8")  # read every pass
    http.slow_seconds = SLOW_SECONDS
    http.dedupe = True  # an idempotent gateway: a key it has seen gets 200 and is not delivered again
    marks = dict(chain.sink_marks)
    requests_before, repeats_before = http.requests, http.duplicates
    start = now = chain.clock
    [(lid, _, _)] = chain.launches
    steps = [store.get_step(lid, gate, 1) for gate in OPEN]
    events: list[tuple[str, str]] = []
    first_try: dict[int, object] = {}
    watcher = _watcher()  # the file as it is now
    assert [c.read_timeout for c in watcher.notifier[0].channels] == [None, READ_TIMEOUT]
    t_passes = time.monotonic()
    passes = skipped = 0
    try:
        while True:
            assert now < start + SLOW_CAP, f"fewer than {SLOW_ALERTS} rungs came due in {SLOW_CAP}"
            p = watch_once(watcher, now, repair_runs=False)
            passes += 1
            assert p.ok, p.errors
            assert p.failed == [], p.failed
            events += [(e.channel, e.change) for e in p.channel_events]
            for e in p.enqueued:
                first_try.setdefault(e.alert_id, now)
            busy = [a for a in _our_alerts(store, ids) if a.status != "sent"]
            if len(first_try) >= SLOW_ALERTS and not busy:
                break
            nxt = now + PASS_EVERY
            if not busy:  # nothing to send before the next rung: the passes between would do nothing
                cursors = [c for c in (store.alert_cursor(st.id) for st in steps) if c is not None]
                if cursors and min(cursors) > nxt:
                    skipped += 1
                    nxt = min(cursors)
            now = nxt
        chain.clock = now
    finally:
        http.slow_seconds = 0
    passes_s = time.monotonic() - t_passes

    alerts = [a for a in _our_alerts(store, ids) if a.id not in chain.outage_alerts]
    assert len(alerts) >= 3, [a.dedupe_key for a in alerts]  # "still overdue", once a day
    assert all(a.status == "sent" for a in alerts), [(a.dedupe_key, a.status, a.last_error) for a in alerts]
    sink = _per_channel(alerts, _sink_records(smtp, http), marks)
    requests = http.requests - requests_before
    repeats = http.duplicates - repeats_before
    for ch in CHANNELS:
        got = sink[ch]
        assert got["stray"] == 0 and got["lost"] == 0 and got["duplicated"] == 0, (ch, got)
    # the gateway: each alert delivered once, every one of them first answered too late
    assert repeats >= 1, "no try timed out: the gateway was not slower than the read timeout"
    assert requests == len(alerts) + repeats, (requests, len(alerts), repeats)
    timeouts = Counter()
    for a in alerts:
        recs = [d for d in store.deliveries_for(a.id) if d.channel == PHONE]
        assert [d.ok for d in recs][-1] is True and sum(d.ok for d in recs) == 1, (a.dedupe_key, recs)
        timeouts[a.id] = sum(1 for d in recs if not d.ok)
        assert a.attempts < 5, (a.dedupe_key, a.attempts)
    assert sum(timeouts.values()) >= 1
    # the mail channel is unaffected: each alert once, at its first try, never a failure
    for a in alerts:
        mail = [d for d in store.deliveries_for(a.id) if d.channel == MAIL]
        assert [(d.ok, d.at) for d in mail] == [(True, first_try[a.id])], (a.dedupe_key, mail)
        [(title, text)] = sink[MAIL]["messages"][a.id]
        assert "delayed by" not in text, a.dedupe_key
    down_events = [e for e in events if e[0] == MAIL]
    assert down_events == [], down_events
    for ch in CHANNELS:
        got = sink[ch]
        figures.add(
            f"gateway slower than its read timeout: {ch}",
            read_timeout_s=READ_TIMEOUT if ch == PHONE else "", answer_after_s=SLOW_SECONDS if ch == PHONE else "",
            passes=passes, idle_skips=skipped, clock_h=round((chain.clock - start).total_seconds() / 3600, 1),
            passes_s=passes_s, enqueued=got["enqueued"], delivered=got["delivered"],
            duplicated=got["duplicated"], lost=got["lost"],
            requests=requests if ch == PHONE else "", repeats_deduped=repeats if ch == PHONE else "",
            timed_out_tries=sum(timeouts.values()) if ch == PHONE else 0,
            breaker="/".join(c for n, c in events if n == ch) or "up",
            outbox="sent" if all(a.status == "sent" for a in alerts) else "not all sent",
        )


# ---------------------------------------------------------------- 3. the launches complete


def _play(sims: dict) -> list[str] | None:
    """One round of the simulator (passing answers) for each launch not released yet; the
    launches released, once all are."""
    for sim in sims.values():
        if not sim.released():
            sim.tick()
            sim._maybe_repair()
    done = [lid for lid, sim in sims.items() if sim.released()]
    return done if len(done) == len(sims) else None


def test_the_launches_complete_after_the_alert_faults(scenario, sinks, figures):
    chain = scenario
    smtp, http = sinks
    store = stack_resources().store
    ids = [lid for lid, _, _ in chain.launches]
    t0 = time.monotonic()
    sims = {lid: Simulator(lid, repair_every=30, res=stack_resources()) for lid in ids}  # the watcher's repair as its schedule runs it
    released = wait_for(lambda: _play(sims), 300, "the launch to be released", interval=0.5)
    release_s = time.monotonic() - t0
    assert all(store.get_launch(lid).status == "released" for lid in ids)
    bad = [b for lid in ids for b in effects_once(lid)[1]]
    assert not bad, bad
    before = {ch: len(r) for ch, r in _sink_records(smtp, http).items()}
    alerts_before = len(_our_alerts(store, ids))
    res = _watcher()  # the notifiers file as the last scenario left it
    p = watch_once(res, max(chain.clock + PASS_EVERY, res.now()), repair_runs=False)
    assert p.ok and p.sent == [] and p.enqueued == [], (p.errors, p.sent, p.enqueued)
    assert {ch: len(r) for ch, r in _sink_records(smtp, http).items()} == before
    assert len(_our_alerts(store, ids)) == alerts_before
    figures.add("alert faults: launch runs to release", launches=len(ids), completed=len(released),
                to_release_s=release_s, answered=sum(len(s.answered) for s in sims.values()),
                repairs="+".join(r.kind for s in sims.values() for r in s.repairs) or 0, alerts_total=alerts_before)
