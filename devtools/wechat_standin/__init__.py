"""A local WeChat: the third-party platform's server API for a launch, with WeChat's checks and
quirks, state per authorised mini-program, and WeChat's signed, AES-encrypted pushes sent to
the receiver (`weapp-launch wechat-standin`; tests: tests/support/standin.py).

    config.py   StandinConfig (secrets, receiver, lifetimes, quotas), StandinClock, StandinScript
    errors.py   the errcodes answered, with WeChat's errmsg and the source of each
    world.py    tokens, authorizers, reviews, releases, ICP filing, face tasks, registrations
    lookups.py  the ICP look-ups' fixed data and apply_icp_filing's required fields
    pushes.py   the pusher: messages -> launch.wechat.crypto envelopes -> the receiver, retried,
                dropped on purpose
    app.py      the HTTP API (WeChat's paths) and the control API under /_standin/
"""

from __future__ import annotations

import threading
import time

from devtools.wechat_standin.app import Standin, create_app
from devtools.wechat_standin.config import Outcome, StandinClock, StandinConfig, StandinScript

__all__ = ["Outcome", "RunningStandin", "Standin", "StandinClock", "StandinConfig", "StandinScript", "create_app",
           "serve", "start_in_thread"]


def serve(config: StandinConfig, *, host: str = "127.0.0.1", port: int = 8090,
          script: StandinScript | None = None) -> None:
    """Run the stand-in in the foreground (the CLI's `wechat-standin`)."""
    import uvicorn

    standin = Standin(config, script)
    standin.start()
    try:
        uvicorn.run(create_app(standin), host=host, port=port, access_log=False, log_level="info")
    finally:
        standin.stop()


class RunningStandin:
    """A stand-in served by uvicorn on a thread (tests, the demo); `url` is its base URL."""

    def __init__(self, standin: Standin, server, thread: threading.Thread, url: str):
        self.standin, self.server, self.thread, self.url = standin, server, thread, url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.standin.stop()


def start_in_thread(config: StandinConfig | None = None, *, script: StandinScript | None = None,
                    port: int | None = None, timeout: float = 10.0) -> RunningStandin:
    """Serve a stand-in on 127.0.0.1 (a free port unless given) in a daemon thread; returns once
    it accepts connections."""
    import uvicorn

    standin = Standin(config, script)
    from devtools.stack import free_port

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(standin), host="127.0.0.1", port=port, access_log=False,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="wechat-standin", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the WeChat stand-in did not start")
        time.sleep(0.02)
    standin.start()
    return RunningStandin(standin, server, thread, f"http://127.0.0.1:{port}")
