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


def render_error(request: Request, status: int, message: str) -> str:
    return render("error.html", status=status, message=message, brand=None)
