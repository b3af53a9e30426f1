"""The subscriber's language: which one applies, how it is first chosen and changed.

One rule everywhere (portal pages, PDFs, API error messages, notifications): the
subscriber's own choice, else their reseller's default, else English. The stored
column is NULL until the subscriber (or Accept-Language at their first login)
chooses; migration 0017 keeps unknown codes out of both columns.
"""

from __future__ import annotations

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.errors import NotFound, PortalError
from portal.i18n import DEFAULT, LANGUAGES, RTL, from_accept_language
from portal.store import journal
from portal.store.models import Reseller, Subscriber
from portal.store.tx import transaction

__all__ = ["DEFAULT", "LANGUAGES", "RTL", "at_login", "check_language",
           "from_accept_language", "resolve", "set_language", "set_reseller_default",
           "subscriber_language"]


def check_language(code: str | None) -> str:
    if code not in LANGUAGES:
        raise PortalError("invalid_language", f"language must be one of {', '.join(LANGUAGES)}")
    assert code is not None
    return code


def resolve(stored: str | None, reseller_default: str | None) -> str:
    """Stored choice -> reseller default -> 'en' (an unknown value counts as unset)."""
    for code in (stored, reseller_default):
        if code in LANGUAGES:
            assert code is not None
            return code
    return DEFAULT


async def subscriber_language(username: str) -> str:
    """The language to speak to this subscriber in (pages, PDFs, messages, notifications)."""
    sub = await Subscriber.get_or_none(username=username).only("language", "reseller_id")
    if sub is None:
        return DEFAULT
    reseller = await Reseller.get_or_none(id=sub.reseller_id).only("default_language")
    return resolve(sub.language, reseller.default_language if reseller else None)


async def set_language(username: str, language: str, actor: str | None = None) -> str:
    """The subscriber (or an operator) chooses the language; returns it."""
    code = check_language(language)

    async def change(tx: BaseDBAsyncClient) -> str:
        updated = await Subscriber.filter(username=username).using_db(tx).update(language=code)
        if not updated:
            raise NotFound("unknown_subscriber", f"no subscriber {username!r}")
        await journal.audit(tx, actor or f"subscriber:{username}", "subscriber.set_language",
                            username, language=code)
        return code

    return await transaction(change, lock=username)


async def at_login(username: str, accept_language: str | None) -> str:
    """The language a signing-in subscriber gets. The first login stores the browser's
    Accept-Language choice when none is stored; a later login from a browser in another
    language never overrides the subscriber's choice. One indexed read when one is stored."""
    sub = await Subscriber.get_or_none(username=username).only("language", "reseller_id")
    if sub is None:
        return DEFAULT
    if sub.language in LANGUAGES:
        return str(sub.language)
    code = from_accept_language(accept_language)
    if code is not None:

        async def store(tx: BaseDBAsyncClient) -> int:
            return await Subscriber.filter(username=username, language__isnull=True) \
                .using_db(tx).update(language=code)

        if await transaction(store, lock=username):
            return code
        return await subscriber_language(username)  # chosen meanwhile on another device
    reseller = await Reseller.get_or_none(id=sub.reseller_id).only("default_language")
    return resolve(None, reseller.default_language if reseller else None)


async def set_reseller_default(name: str, language: str | None,
                               actor: str = "operator:cli") -> None:
    code = None if language in (None, "") else check_language(language)

    async def change(tx: BaseDBAsyncClient) -> None:
        if not await Reseller.filter(name=name).using_db(tx).update(default_language=code):
            raise NotFound("unknown_reseller", f"no reseller named {name!r}")
        await journal.audit(tx, actor, "reseller.set_default_language", None,
                            reseller=name, language=code)

    await transaction(change)
