"""Rate limits (45009) and "system busy" (-1) on demand, for the client's retries."""

from __future__ import annotations


def test_rate_limit_per_call(standin):
    app = standin.authorized()
    standin.control("rate_limit", path="/wxa/get_latest_auditstatus", calls=2, window=60)
    answers = [standin.call("/wxa/get_latest_auditstatus", app.token)["errcode"] for _ in range(3)]
    assert answers == [85058, 85058, 45009]
    standin.advance(seconds=61, finish=False)
    assert standin.call("/wxa/get_latest_auditstatus", app.token)["errcode"] == 85058
    standin.control("rate_limit", path="/wxa/get_latest_auditstatus", calls=0)


def test_busy_then_fine(standin):
    app = standin.authorized()
    standin.control("fail", path="/wxa/commit", errcode=-1, count=2)
    commit = {"template_id": 1, "ext_json": "{}", "user_version": "1.0.0", "user_desc": ""}
    answers = [standin.call("/wxa/commit", app.token, commit) for _ in range(3)]
    assert [a["errcode"] for a in answers] == [-1, -1, 0]
    assert answers[0]["errmsg"].startswith("system error")
    assert standin.calls("/wxa/commit") == 3
