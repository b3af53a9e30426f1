"""E-mail over SMTP (STARTTLS, implicit TLS or plain, optional AUTH), in a thread.

The point of no return is the final "." of DATA: the envelope and the whole
message are sent first, `commit()` runs, and only then the "." that makes the
server take the message. A notifier killed before it leaves nothing at the
server (an unfinished DATA is discarded), so the claim is simply retried.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import smtplib
import socket
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate
from typing import Any

from portal.notifier.channels import Abandoned, Ambiguous, Commit, SendError, tls_context
from portal.notifier.settings import Smtp

_LEADING_DOT = re.compile(rb"(?m)^\.")


def build(cfg: Smtp, row: dict[str, Any]) -> bytes:
    msg = EmailMessage(policy=SMTP_POLICY)
    # Header values carry no CR/LF: the subject was made one line when rendered and
    # the address matched a pattern without whitespace; EmailMessage refuses both anyway.
    msg["From"] = cfg.sender
    msg["To"] = str(row["target"])
    msg["Subject"] = str(row["subject"])
    msg["Date"] = formatdate(localtime=False)
    domain = cfg.sender.rpartition("@")[2] or "localhost"
    # One Message-ID per outbox row (a resend is another row): were a message ever sent
    # twice, the receiving side could tell.
    tag = hashlib.sha256(str(row.get("dedup_key", "")).encode()).hexdigest()[:12]
    msg["Message-ID"] = f"<ispedge-notification-{row['id']}.{tag}@{domain}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(str(row["body"]))
    return msg.as_bytes()


def _check(code: int, reply: bytes, what: str, before: bool) -> None:
    if 200 <= code < 400:
        return
    text = f"{what}: {code} {reply.decode('utf-8', 'replace')}"[:300]
    raise SendError(text, retry=code < 500, before_commit=before)


def _send(cfg: Smtp, row: dict[str, Any], timeout: float,
          commit: Any) -> None:
    data = build(cfg, row)
    ctx = tls_context(cfg.ca_file) if cfg.security != "none" else None
    try:
        if cfg.security == "tls":
            s: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=timeout, context=ctx)
        else:
            s = smtplib.SMTP(cfg.host, cfg.port, timeout=timeout)
        # The final "." is a small write after the body: without this it waits for the
        # server's delayed ACK (~40 ms a message).
        if s.sock is not None:
            s.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, smtplib.SMTPException) as exc:
        raise SendError(f"connect {cfg.host}:{cfg.port}: {exc}", before_commit=True) from None
    try:
        try:
            s.ehlo()
            if cfg.security == "starttls":
                s.starttls(context=ctx)
                s.ehlo()
            if cfg.user:
                s.login(cfg.user, cfg.password)
            code, reply = s.mail(cfg.sender)
            _check(code, reply, "MAIL FROM", True)
            code, reply = s.rcpt(str(row["target"]))
            _check(code, reply, "RCPT TO", True)
            code, reply = s.docmd("DATA")
            if code != 354:
                _check(code if code >= 400 else 451, reply, "DATA", True)
            body = _LEADING_DOT.sub(b"..", data)
            if not body.endswith(b"\r\n"):
                body += b"\r\n"
            s.send(body)
        except smtplib.SMTPAuthenticationError as exc:
            raise SendError(f"AUTH: {exc.smtp_code} {exc.smtp_error!r}"[:300], retry=False,
                            before_commit=True) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(f"SMTP: {exc}"[:300], before_commit=True) from None
        if not commit():
            raise Abandoned("claim taken back")
        try:
            s.send(b".\r\n")
            code, reply = s.getreply()
        except (OSError, smtplib.SMTPException) as exc:
            raise Ambiguous(f"no answer to the end of DATA: {exc}"[:300]) from None
        _check(code, reply, "end of DATA", False)
    finally:
        try:
            s.quit()
        except (OSError, smtplib.SMTPException):
            s.close()


async def send(cfg: Smtp, row: dict[str, Any], timeout_s: float, commit: Commit) -> None:
    loop = asyncio.get_running_loop()

    def commit_from_thread() -> bool:
        return asyncio.run_coroutine_threadsafe(commit(), loop).result(timeout=timeout_s + 30)

    await asyncio.to_thread(_send, cfg, row, timeout_s, commit_from_thread)
