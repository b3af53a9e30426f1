"""Errors are values with a code and a message a subscriber or operator understands.

One handler in portal.web.errors turns them into JSON (API) or a page; the CLI
prints the message and exits non-zero.
"""

from __future__ import annotations


class PortalError(Exception):
    status = 400

    def __init__(self, code: str, message: str, status: int | None = None, **extra: object):
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status
        self.extra = extra


class NotFound(PortalError):
    status = 404


class Conflict(PortalError):
    status = 409


class Forbidden(PortalError):
    status = 403


class Unauthorized(PortalError):
    status = 401


class TooManyRequests(PortalError):
    status = 429
