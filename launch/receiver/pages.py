"""The receiver's pages for people: the form a staff link opens, the error page of a refused
link, and the portfolio (GET /report). Rendered from Jinja2 templates in launch/templates with
autoescape; every response carries a Content-Security-Policy whose nonce the page's inline
style (and script) carry."""

from __future__ import annotations

import secrets
import typing
from functools import lru_cache
from typing import Any

from fastapi.responses import HTMLResponse

from launch.app import Resources

LINK_NOT_VALID = "链接无效 / Link not valid"


@lru_cache(maxsize=1)
def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("launch", "templates"),
        autoescape=True,  # every value is escaped; nothing is marked safe
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def page_response(doc: str, status: int, nonce: str, *, images: bool = False) -> HTMLResponse:
    """`images`: the page shows data: images (the portfolio chart) and runs no script."""
    if images:
        csp = (f"default-src 'none'; img-src data:; style-src 'nonce-{nonce}'; form-action 'none'; "
               "base-uri 'none'; frame-ancestors 'none'")
    else:
        csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
               "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")
    return HTMLResponse(
        doc,
        status_code=status,
        headers={
            "Content-Security-Policy": csp,
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def render_error(message: str, nonce: str, title: str | None = None) -> str:
    return _environment().get_template("link_error.html.j2").render(
        title=title or LINK_NOT_VALID, message=message, nonce=nonce)


def error_page(message: str, status: int, title: str | None = None) -> HTMLResponse:
    nonce = new_nonce()
    return page_response(render_error(message, nonce, title), status, nonce)


# ---------------------------------------------------------------- the gate form


def _field_kind(annotation) -> tuple[str, list[str]]:
    """("select", options) | ("list", []) | ("text", [])."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "select", [str(a) for a in typing.get_args(annotation)]
    if origin is list:
        return "list", []
    if args and len(args) == 1 and args[0] is not annotation:
        return _field_kind(args[0])
    return "text", []


def _max_length(field) -> int | None:
    for meta in field.metadata:
        value = getattr(meta, "max_length", None)
        if value is not None:
            return int(value)
    return None


def form_fields(form_cls) -> list[dict[str, Any]]:
    """What the template needs of each field of a gate's form model."""
    fields = []
    for name, field in form_cls.model_fields.items():
        kind, options = _field_kind(field.annotation)
        fields.append({
            "name": name,
            "title": field.title or name,
            "required": field.is_required(),
            "hint": field.description or "",
            "kind": kind,
            "options": options,
            "default": field.default if isinstance(field.default, str) else None,
            "limit": _max_length(field) if kind == "text" else None,
        })
    return fields


def render_gate_form(res: Resources, launch, gate_id: str, step, nonce: str) -> str:
    """The form of `gate_id` for `launch`, with the latest attempt's state (`step`, or None)."""
    gate = res.catalogue.gate(gate_id)
    return _environment().get_template("gate_form.html.j2").render(
        gate=gate, launch_id=launch.id, step=step, fields=form_fields(gate.form), nonce=nonce)


# ---------------------------------------------------------------- the portfolio


def render_portfolio(res: Resources, nonce: str) -> str:
    """The portfolio page from the receiver's store, catalogue and calendar (launch/app/report.py)."""
    from launch.app.report import build_portfolio, render_html

    portfolio = build_portfolio(res.store, catalogue=res.catalogue, calendar=res.calendar, now=res.now(),
                                settings=res.settings)
    return render_html(portfolio, nonce=nonce)
