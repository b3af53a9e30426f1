"""Path parameters the database can hold.

Sanic's `<x:int>` accepts any number of digits; a 20-digit id reaches the database
driver and raises OverflowError (a 500). Every `<x:int>` route in the portal gets
this bounded type instead: an id outside the smallest id column (SERIAL, a signed
32-bit integer on PostgreSQL: asyncpg refuses a larger value for it) does not match
the route, so the client gets the standard 404.
"""

from __future__ import annotations

import re

from sanic import Sanic

ID_MAX = 2**31 - 1


def bounded_int(value: str) -> int:
    # Named uniquely: sanic-routing binds a cast into its generated module by __name__.
    if len(value) > 20:
        raise ValueError("too long for an id")
    number = int(value)
    if not -ID_MAX <= number <= ID_MAX:
        raise ValueError("out of range for an id")
    return number


def register_bounded_int(app: Sanic) -> None:
    """Before any route is added: `<x:int>` now means bounded_int."""
    app.router.register_pattern("int", bounded_int, re.compile(r"^-?\d+$"))
