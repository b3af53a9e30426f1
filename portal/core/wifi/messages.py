"""What a WiFi change's status message says, in any of the portal's languages.

A task keeps its English `message` (old clients read it) and, beside it, a stable
`message_code` with its values; the portal says the code in the subscriber's
language. A task stored before codes existed is said from its status where that tells
(done, waiting for the router), else shown as stored.
"""

from __future__ import annotations

import json
from typing import Any

from portal import i18n
from portal.i18n import N_

TEXTS: dict[str, str] = {
    "done": N_("Done."),
    "next_contact": N_("Will apply when your router next connects."),
    "router_refused": N_("Your router refused the change (code {code})."),
    "acs_unavailable": N_("We could not reach your router's management service; nothing"
                          " was changed."),
    "acs_error": N_("Your router's management service refused the request; nothing was"
                    " changed."),
}


def text(code: str, params_json: str, stored: str, status: str, offline: bool,
         language: str) -> str:
    """The task's message in `language` (English: the stored message, unchanged)."""
    if i18n.known(language) == i18n.DEFAULT:
        return stored
    if code not in TEXTS:  # an old row: its status says as much as its English did
        if status == "done":
            code = "done"
        elif status == "pending" and offline:
            code = "next_contact"
        else:
            return stored
    try:
        params: dict[str, Any] = json.loads(params_json or "{}")
        # the router's fault code ("cwmp.9007") is the router's word: isolated, as
        # portal.core.billing.lines isolates user text (app.js makes it a <bdi>)
        values = {key: f"\u2068{value}\u2069" for key, value in params.items()}
        return i18n.gettext(language, TEXTS[code], **values)
    except (ValueError, KeyError, TypeError):
        return stored
