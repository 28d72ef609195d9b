"""WeChat third-party platform (开放平台 第三方平台) server API client: operate WeChat, not
only listen to it (issue 12).

    errors.py        errcode → typed errors (zh / en naming the rule)
    client.py        PlatformClient: tokens in the query, errcode decoding, the one retry policy
    tokens.py        PlatformTokens: ticket → component token → authorizer tokens, one refresher
                     across processes (the store's lease), ``remember_ticket`` for the receiver
    auth.py          pre-auth code, authorisation links (PC, mobile), api_query_auth
    code.py          commit, trial QR, submit_audit, audit status, undo, release ({}), revert, gray
    icp.py           ICP filing: entrance info, face-check task, media upload, apply (hints), cancel,
                     cached look-ups
    registration.py  enterprise fast registration (new version), reuse of a 公众号's qualifications

Infrastructure layer: imports launch.settings / launch.store, httpx, pydantic; never Prefect.
Without a configured platform (component app id and secret) nothing here is built and the
manual gates stay as they are.
"""
