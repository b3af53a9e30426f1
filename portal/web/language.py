"""Which language a page or an API answer speaks, and the error messages in it.

Pages are rendered before the browser has shown its token (it lives in
localStorage), so a page speaks the language its device asked for: the
`ispedge_lang` cookie that app.js keeps equal to the subscriber's stored language
(or this device's override), else Accept-Language, else English. API answers of a
signed-in subscriber speak the stored language (portal.core.language), unless the
portal's own script says this device overrides it (X-Portal-Language).

API error `code`s never change (clients in the field match on them); only the
human `message` is translated: a message in MESSAGES by its exact English text,
any other by its code's sentence in CODES, else a generic sentence.
"""

from __future__ import annotations

from typing import Any

from sanic import Request

from portal import i18n
from portal.core import language as language_case
from portal.core.money import minor_units_or_2
from portal.i18n import N_

COOKIE = "ispedge_lang"
DEVICE_HEADER = "x-portal-language"


def page_language(request: Request | None) -> str:
    if request is None:
        return i18n.DEFAULT
    cookie = request.cookies.get(COOKIE)
    if cookie in i18n.LANGUAGES:
        return str(cookie)
    return i18n.from_accept_language(request.headers.get("accept-language")) or i18n.DEFAULT


async def request_language(request: Request) -> str:
    """The language of an API answer (error messages)."""
    device = request.headers.get(DEVICE_HEADER)
    if device in i18n.LANGUAGES:
        return str(device)
    sub = getattr(request.ctx, "subscriber", None)
    if sub is not None:
        if sub.language in i18n.LANGUAGES:
            return str(sub.language)
        return await language_case.subscriber_language(sub.username)
    return page_language(request)


# Exact English messages subscribers meet, translated as they are.
MESSAGES = (
    N_("wrong username or password"),
    N_("username and password are required"),
    N_("please log in"),
    N_("invalid session, please log in again"),
    N_("your session has expired, please log in again"),
    N_("you have been signed out, please log in again"),
    N_("you have logged out, please log in again"),
    N_("this account is not available"),
    N_("your subscription has expired"),
    N_("this feature is not enabled for your account"),
    N_("WiFi management is not available for your account"),
    N_("buying data is not enabled for your account"),
    N_("plan changes are not enabled for your account"),
    N_("renewal is done by your operator"),
    N_("you are already on this plan"),
    N_("no such plan is offered to you"),
    N_("the price changed, please review it"),
    N_("this price quote has expired: please review it again"),
    N_("no such invoice"),
    N_("no such ticket"),
    N_("no such change"),
    N_("the body is not valid JSON"),
    N_("the body must be a JSON object"),
    N_("a JSON object body is required"),
    N_("enabled must be true or false"),
    N_("band must be 2.4 or 5 (GHz)"),
    N_("enter a new network name or password"),
    N_("the network name (SSID) cannot be empty"),
    N_("the network name (SSID) cannot be only spaces"),
    N_("day must be a date (YYYY-MM-DD) of the last 30 days"),
    N_("amount must be a number"),
    N_("amount must be positive"),
    N_("internal error"),
    N_("something went wrong on our side"),
    N_("language must be one of en, fr, ar"),
)

# One sentence per code, for messages that carry values (or are not in MESSAGES).
CODES: dict[str, str] = {
    "account_disabled": N_("Your account is disabled; please contact your provider."),
    "locked_out": N_("Too many failed sign-ins. Please try again later."),
    "login_busy": N_("Too many sign-ins right now. Please try again in a moment."),
    "login_unavailable": N_("Signing in is not possible right now. Please try again later."),
    "rate_limited": N_("Too many requests. Please try again in a few minutes."),
    "invalid_gb": N_("Enter a whole number of GB within the allowed range."),
    "invalid_amount": N_("This amount is not valid."),
    "insufficient_balance": N_("Your balance is too low for this."),
    "invalid_ssid": N_("This network name is not valid: at most 32 bytes, no control characters."),
    "invalid_passphrase": N_("The WiFi password must be 8 to 63 characters."),
    "passphrase_unsupported": N_("Your router does not let us change this password."),
    "no_such_network": N_("Your router has no such WiFi network."),
    "no_router": N_("We could not find your router. If it is new, please try again later."),
    "acs_unavailable": N_("We cannot reach your router right now. Please try again in a few"
                          " minutes."),
    "acs_error": N_("Your router could not be reached. Please try again later."),
    "invalid_category": N_("Choose one of the offered categories."),
    "unknown_category": N_("There is no such category."),
    "invalid_parental_change": N_("This parental controls change is not valid."),
    "invalid_text": N_("This text is not valid."),
    "too_long": N_("This text is too long."),
    "invalid_status": N_("This status is not valid."),
    "no_such_ticket": N_("There is no such ticket."),
    "invalid_day": N_("Choose a day of the last 30 days."),
    "quote_invalid": N_("This price quote is not valid: please review it again."),
    "quote_expired": N_("This price quote has expired: please review it again."),
    "price_changed": N_("The price changed, please review it."),
    "idempotency_key_reused": N_("This request was already made with other details."),
    "invalid_idempotency_key": N_("This request key is not valid."),
    "invalid_language": N_("This language is not offered."),
    "unknown_plan": N_("No such plan is offered to you."),
    "feature_disabled": N_("This feature is not enabled for your account."),
    "subscription_expired": N_("Your subscription has expired."),
    "missing_fields": N_("Some required fields are missing."),
    "malformed_json": N_("The request is not valid JSON."),
    "unsupported_media_type": N_("The request must be JSON."),
    "body_too_large": N_("The request is too large."),
    "not_found": N_("Nothing was found at this address."),
    "method_not_allowed": N_("This action is not allowed here."),
    "bad_request": N_("The request is not valid."),
    "internal_error": N_("Something went wrong on our side."),
    "insufficient_funds": N_("Your balance is too low for this."),
    "plan_change_limit": N_("You have made today's plan changes. Please try again tomorrow."),
    "quote_required": N_("Please review the price of this change and confirm it again."),
    "quote_mismatch": N_("This price quote is for another change: please review it again."),
    "same_plan": N_("You are already on this plan."),
    "next_cycle_paid": N_("Your next cycle is already paid for on your plan: you can change"
                          " plan once it has started."),
    "nothing_to_change": N_("Enter a new network name or password."),
    "invalid_band": N_("Choose the 2.4 GHz or the 5 GHz network."),
    "no_such_task": N_("There is no such change."),
    "unknown_invoice": N_("There is no such invoice."),
    "invalid_credentials": N_("Wrong username or password."),
    "missing_token": N_("Please log in."),
    "invalid_token": N_("Your session is not valid, please log in again."),
    "wrong_token_type": N_("Your session is not valid, please log in again."),
    "token_expired": N_("Your session has expired, please log in again."),
    "token_revoked": N_("You have been signed out, please log in again."),
    "account_unavailable": N_("This account is not available."),
    "unknown_language": N_("This language is not offered."),
    "invalid_preferences": N_("These notification settings are not valid."),
    "invalid_quiet_hours": N_("Quiet hours need a start and an end, like 22:00 and 07:00,"
                              " that differ."),
    "invalid_subscription": N_("This device cannot receive notifications."),
    "no_such_notification": N_("There is no such notification."),
    "missing_subject": N_("Please write a subject."),
    "missing_message": N_("Please write a message."),
    "subject_too_long": N_("The subject is too long."),
    "message_too_long": N_("The message is too long."),
    "invalid_subject": N_("The subject contains an invalid character."),
    "invalid_message": N_("The message contains an invalid character."),
    "invalid_amount_cents": N_("This amount is not valid."),
    "invalid_before": N_("This page of your wallet does not exist."),
    "invalid_limit": N_("This page size is not valid."),
    "unknown_subscriber": N_("This account is not available."),
    "unknown_reseller": N_("This account is not available."),
    "busy": N_("We are very busy right now. Please try again in a moment."),
    "invalid_plan_id": N_("No such plan is offered to you."),
    "unknown_domain": N_("This portal does not serve this address."),
    "timeout": N_("The request took too long. Please try again."),
    "acs_kind": N_("WiFi management is not available for your account"),
    "no_icon": N_("Nothing was found at this address."),
    "no_logo": N_("Nothing was found at this address."),
    "missing_body": N_("The request must be JSON."),
}
# Codes whose sentence says the error's values (an amount in the reseller's currency).
WITH_VALUES: dict[str, str] = {
    "insufficient_funds": N_("Your balance is too low: {amount} more is needed."),
}
GENERIC = N_("The request could not be completed.")


def _with_values(language: str, code: str, extra: dict[str, Any]) -> str | None:
    if code == "insufficient_funds" and isinstance(extra.get("missing_cents"), int) \
            and isinstance(extra.get("currency"), str):
        currency = extra["currency"]
        amount = i18n.money(extra["missing_cents"], currency, language,
                            minor_units_or_2(currency))
        return i18n.gettext(language, WITH_VALUES[code], amount=amount)
    return None


def error_message(language: str, code: str, message: str, extra: dict[str, Any]) -> str:
    """The error's message in `language`; English keeps the message as raised."""
    if language == i18n.DEFAULT:
        return message
    if message in MESSAGES and i18n.has(language, message):
        return i18n.gettext(language, message)
    said = _with_values(language, code, extra)
    if said is not None:
        return said
    return i18n.gettext(language, CODES.get(code, GENERIC))
