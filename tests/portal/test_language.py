"""The subscriber's language (issue 20): which one applies, first choice, changes."""

from __future__ import annotations

import pytest

from portal.core import language
from portal.errors import NotFound, PortalError


@pytest.mark.parametrize(("stored", "default", "expected"), [
    ("ar", "fr", "ar"), (None, "fr", "fr"), (None, None, "en"), ("fr", None, "fr"),
    ("xx", "ar", "ar"), ("", "", "en"),
])
def test_resolve_stored_then_reseller_then_english(stored, default, expected):
    assert language.resolve(stored, default) == expected


@pytest.mark.parametrize(("header", "expected"), [
    ("fr-LB,fr;q=0.9,en;q=0.8", "fr"), ("ar-LB", "ar"), ("de,ar;q=0.5,fr;q=0.4", "ar"),
    ("en;q=0.2, AR;q=0.9", "ar"), ("de-DE", None), ("", None), (None, None),
    ("fr;q=0", None), ("fr;q=abc,ar", "ar"), (";;,,q=,", None), ("*", None),
    ("fr, ar", "fr"), ("x" * 5000, None),
])
def test_accept_language(header, expected):
    assert language.from_accept_language(header) == expected


def test_check_language_refuses_unknown_codes():
    assert language.check_language("ar") == "ar"
    for bad in ("AR", "de", "", None, "en-US"):
        with pytest.raises(PortalError) as err:
            language.check_language(bad)
        assert err.value.code == "invalid_language"


@pytest.mark.db
async def test_stored_language_resolution_and_first_choice(db: str):
    from tests.support import seed

    await seed.reseller_with_plans()
    await seed.subscriber("lang@acme.lb")
    assert await language.subscriber_language("lang@acme.lb") == "en"
    await language.set_reseller_default("acme", "fr")
    assert await language.subscriber_language("lang@acme.lb") == "fr"
    # no usable Accept-Language: nothing stored, the reseller's default applies
    assert await language.at_login("lang@acme.lb", "de-DE") == "fr"
    assert await language.at_login("lang@acme.lb", "ar-LB,fr;q=0.5") == "ar"
    assert await language.subscriber_language("lang@acme.lb") == "ar"
    # a later login from a French browser never overrides the stored choice
    assert await language.at_login("lang@acme.lb", "fr") == "ar"
    assert await language.at_login("nobody@acme.lb", "fr") == "en"
    assert await language.set_language("lang@acme.lb", "fr") == "fr"
    assert await language.subscriber_language("lang@acme.lb") == "fr"
    with pytest.raises(NotFound):
        await language.set_language("nobody@acme.lb", "fr")
    with pytest.raises(PortalError):
        await language.set_reseller_default("acme", "de")
    await language.set_reseller_default("acme", None)
    assert await language.subscriber_language("nobody@acme.lb") == "en"


@pytest.mark.db
async def test_database_refuses_unknown_codes(db: str):
    from tortoise.exceptions import IntegrityError, OperationalError

    from portal.store import db as pdb
    from tests.support import seed

    await seed.reseller_with_plans()
    await seed.subscriber("chk@acme.lb")
    for table, column in (("subscribers", "language"), ("resellers", "default_language")):
        with pytest.raises((IntegrityError, OperationalError)):
            await pdb.execute(f"UPDATE {table} SET {column} = 'de'")
        await pdb.execute(f"UPDATE {table} SET {column} = NULL")
        await pdb.execute(f"UPDATE {table} SET {column} = 'ar'")


@pytest.mark.db
async def test_operator_sets_a_resellers_default_language(db: str, tmp_path):
    from portal.store.models import Reseller
    from tests.support import seed
    from tests.support.portal import ispedge_cli

    await seed.reseller_with_plans()
    await seed.subscriber("cli@acme.lb")
    run = ispedge_cli(db, tmp_path / "state")
    run("reseller", "set", "acme", "--language", "ar")
    assert (await Reseller.get(name="acme")).default_language == "ar"
    assert await language.subscriber_language("cli@acme.lb") == "ar"
    # (--language none clears it: set_reseller_default(None), tested above; one CLI
    # subprocess is enough to show the flag reaches it)
