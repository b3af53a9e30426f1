"""Jinja2 rendering with autoescape on: all user-controlled text is escaped.

One environment per language with Jinja2's i18n extension ({% trans %}, _()):
the page's language comes from portal.web.language.page_language.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, cast

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sanic import Request

from portal import i18n
from portal.i18n import N_
from portal.web.language import page_language

TEMPLATES = Path(__file__).parent / "templates"


@cache
def environment(language: str) -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES),
                      autoescape=select_autoescape(default=True), extensions=["jinja2.ext.i18n"])
    # install_gettext_translations is added to the environment by the i18n extension
    cast(Any, env).install_gettext_translations(i18n.translations(language), newstyle=True)
    return env


env = environment(i18n.DEFAULT)  # kept for callers that render outside a request


def _current_request() -> Request | None:
    try:
        return Request.get_current()
    except Exception:  # rendered outside a request (tests, tools)
        return None


def render(name: str, language: str | None = None, **context: Any) -> str:
    lang = i18n.known(language or page_language(_current_request()))
    # The JS catalog rides in the page as a JSON data block (CSP: no inline script runs).
    catalog = Markup(_script_json(lang))
    return environment(lang).get_template(name).render(
        lang=lang, dir=i18n.direction(lang), short_name=i18n.SHORT_NAMES[lang],
        languages=[(c, i18n.NAMES[c]) for c in i18n.LANGUAGES], i18n_catalog=catalog,
        **context)


@cache
def _script_json(language: str) -> str:
    """JSON safe inside <script type="application/json">: no "<", ">" or "&" as such."""
    text = json.dumps(i18n.js_catalog(language), ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


TITLES = {404: N_("Page not found"), 401: N_("Please sign in"), 403: N_("Not allowed"),
          429: N_("Too many requests"), 503: N_("Temporarily unavailable")}
NOT_FOUND = N_("There is no page at this address. It may have moved, or the link may be"
               " mistyped.")


def render_error(request: Request, status: int, message: str, brand: Any = None,
                 language: str | None = None) -> str:
    lang = i18n.known(language or page_language(request))
    title = TITLES.get(status, N_("Something went wrong") if status >= 500
                       else N_("Request refused"))
    if status == 404:
        message = i18n.gettext(lang, NOT_FOUND)
    return render("error.html", language=lang, status=status, title=i18n.gettext(lang, title),
                  message=message, brand=brand)
