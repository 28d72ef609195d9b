"""The receiver's FastAPI app, built from the `Resources` its process hands it.

Nothing here reads settings or a store of its own: `create_app(res)` takes them from `res`
(launch.receiver.server builds it from WEAPP_LAUNCH_* for `weapp-launch api`; tests build
theirs with tests.support.resources.make_resources).
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from launch.app import Resources
from launch.receiver.errors import install_handlers
from launch.receiver.middleware import LogMiddleware
from launch.receiver.routes import health, platform, push, report, staff
from launch.receiver.state import ReceiverState
from launch.receiver.workers import APPLIER_INTERVAL_SECONDS, Applier, InboxWriter


def create_app(res: Resources, *, applier: bool = True, applier_interval: float = APPLIER_INTERVAL_SECONDS) -> FastAPI:
    """The receiver over `res` (its store is the one launch.app.decisions writes through).
    With `applier`, a background thread applies inbox rows after each push, at start-up and
    periodically; `app.state.receiver`, `.writer` and `.applier` are there for tests."""
    writer = InboxWriter(res)
    the_applier = Applier(res, applier_interval, writer=writer) if applier else None
    state = ReceiverState(res, writer, the_applier)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(lambda: res.store)  # open (and migrate) the store before serving
        if the_applier is not None:
            the_applier.start()
        try:
            yield
        finally:
            if the_applier is not None:
                await run_in_threadpool(the_applier.stop)
            await run_in_threadpool(writer.stop)

    app = FastAPI(
        title="weapp-launch receiver",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
        lifespan=lifespan,
    )
    app.state.receiver = state
    app.state.applier = the_applier
    app.state.writer = writer
    app.add_middleware(LogMiddleware)
    install_handlers(app)
    for routes in (push, platform, staff, report, health):
        app.include_router(routes.router)
    return app
