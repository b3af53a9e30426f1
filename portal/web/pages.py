"""Jinja2 rendering with autoescape on: all user-controlled text is escaped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Request

TEMPLATES = Path(__file__).parent / "templates"
env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))


def render(name: str, **context: Any) -> str:
    return env.get_template(name).render(**context)


TITLES = {404: "Page not found", 401: "Please sign in", 403: "Not allowed",
          429: "Too many requests", 503: "Temporarily unavailable"}


def render_error(request: Request, status: int, message: str, brand: Any = None) -> str:
    title = TITLES.get(status, "Something went wrong" if status >= 500 else "Request refused")
    if status == 404:
        message = ("There is no page at this address. It may have moved, or the link may be"
                   " mistyped.")
    return render("error.html", status=status, title=title, message=message, brand=brand)
