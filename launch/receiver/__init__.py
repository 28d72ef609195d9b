"""The callback receiver: WeChat's message push and authenticated staff callbacks (FastAPI).

Routes (launch/receiver/routes/)
    GET  /wechat/auth, GET /wechat/{appid}/events     URL verification: echo `echostr`   push.py
    POST /wechat/auth                                 authorisation-event URL (InfoType)  push.py
    POST /wechat/{appid}/events                       message-event URL (app id in path)  push.py
    POST /gates/{launch_id}/{gate}                    a staff/system decision (JSON form) staff.py
    GET  /gates/{launch_id}/{gate}?token=…            the form a staff link opens         staff.py
    GET  /report                                      the portfolio page (API key only)   report.py
    GET  /healthz                                                                         health.py

The rest of the package: `app.py` builds the app from a `Resources` (`create_app(res)`);
`server.py` is the process's composition root (`weapp-launch api`); `auth.py` and `limits.py`
are the checks as FastAPI dependencies (WeChat timestamp, nonce and signature; API key and
signed links; body size and media type); `workers.py` the inbox writer (group commit) and the
applier threads; `pages.py` the HTML pages (templates in launch/templates); `errors.py` the
refusal shape; `middleware.py` the log line.

A push is acknowledged once its nonce, signature and redacted event are committed in one
transaction; applying it (recording decisions, resuming the parked run — a Prefect call)
happens after the response, in the applier. Refusals are 4xx with
{"error": reason_code, "message": "中文 / English"} and change nothing. Nothing logs a query
string, a token, a signature or a body: uvicorn's access log is off and the receiver logs its
own line (method, path, status, reason code, milliseconds).
"""
