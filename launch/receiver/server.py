"""`weapp-launch api`: the HTTP process's composition root. It builds the process's
`Resources` from WEAPP_LAUNCH_* settings once and serves `create_app(res)` with uvicorn."""

from __future__ import annotations

import logging
from typing import Optional

import typer

from launch.app import Resources
from launch.receiver.app import create_app


def _configure_logging() -> None:
    logger = logging.getLogger("weapp_launch")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def serve_api(res: Resources, *, host: str | None = None, port: int | None = None) -> None:
    """Run the receiver with uvicorn on settings.api_host:api_port (access log off: it would
    print query strings, which carry signatures and link tokens)."""
    import uvicorn

    _configure_logging()
    uvicorn.run(
        create_app(res),
        host=host or res.settings.api_host,
        port=port or res.settings.api_port,
        access_log=False,
        server_header=False,
        log_level="info",
    )


def api_command(
    host: Optional[str] = typer.Option(None, "--host", help="Bind address (default WEAPP_LAUNCH_API_HOST)"),
    port: Optional[int] = typer.Option(None, "--port", help="Port (default WEAPP_LAUNCH_API_PORT)"),
) -> None:
    """Run the callback receiver (WeChat push, staff links) / 运行回调接收服务。"""
    # Called from Python rather than by Typer, the defaults are OptionInfo objects: ignore them.
    res = Resources.from_settings()
    try:
        serve_api(res, host=host if isinstance(host, str) else None, port=port if isinstance(port, int) else None)
    finally:
        res.close()
