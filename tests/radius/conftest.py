"""FreeRADIUS fixtures shared with the coa tests."""

from tests.coa.conftest import database  # noqa: F401
