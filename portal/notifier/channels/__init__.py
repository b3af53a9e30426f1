"""One module per channel; each sends one outbox row and says how it went.

Every channel does what it can before the point of no return, then calls
`commit()` (which commits state 'sending' and says whether the claim is still
ours), and only then sends the last step. Its outcome is one of the exceptions
below, or nothing (delivered).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Coroutine
from functools import lru_cache
from typing import Any

Commit = Callable[[], Coroutine[Any, Any, bool]]


class SendError(Exception):
    """Not delivered; `retry`: worth another attempt later (else permanent)."""

    def __init__(self, message: str, retry: bool = True, before_commit: bool = False):
        super().__init__(message)
        self.retry = retry
        self.before_commit = before_commit  # nothing was committed: the row is 'claimed'


class Ambiguous(Exception):
    """The last step went out and no answer came: maybe delivered (never resent)."""


class Abandoned(Exception):
    """The claim was taken back before the point of no return: nothing was sent."""


@lru_cache(maxsize=8)
def tls_context(ca_file: str = "") -> ssl.SSLContext:
    """Made once per trust store: loading it costs ~0.1-0.4 s, each send paid it."""
    return ssl.create_default_context(cafile=ca_file or None)
