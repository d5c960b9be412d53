"""E-mail through SMTP (Python's ``smtplib``, run in a thread): the message of a notification, and one SMTP transaction
split around the caller's commit so that a crash can never send one delivery twice.

:class:`SmtpTransaction` runs an SMTP mail transaction (RFC 5321 §3.3) in two steps:

1. :meth:`~SmtpTransaction.prepare`: connect, ``EHLO``, ``STARTTLS`` (when configured), ``AUTH``, ``MAIL FROM``,
   ``RCPT TO``, ``DATA`` and the whole message — everything but the end-of-data line (``<CRLF>.<CRLF>``);
2. the caller commits "sent" (fenced by its claim);
3. :meth:`~SmtpTransaction.finish`: the end-of-data line, the server's reply, ``QUIT``.

A server only takes responsibility for a message when it answers the end-of-data with 250; a connection lost before
that aborts the transaction (RFC 5321 §4.1.1.4: the server discards it). So a sender that dies before its commit has
sent nothing (the delivery is retried after its lease), and one that dies after its commit has either sent the message
or not: the delivery is marked sent and is never sent again. **At most once** across crashes: the window in which an
e-mail can be lost is between that commit and the server's reply to the end-of-data (one round trip); a refusal read
in that window puts the delivery back in the queue. Without a crash delivery is retried until the server accepts it
(temporary failures) or refuses it for good (5xx to the message or its recipient).
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr

from smart_trader.core.errors import InvalidInputError
from smart_trader.notifications.rules import Notification
from smart_trader.settings import Settings

END_OF_DATA = b".\r\n"
_LEADING_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where e-mail goes (``SMTP_*`` settings).

    Attributes:
        host / port: the SMTP server (submission port 587 by default).
        username / password: ``AUTH`` credentials, or empty for none.
        sender: the ``From`` address (``Smart Trader <alerts@example.com>`` or a bare address).
        starttls: upgrade the connection with ``STARTTLS`` (certificate verified) before authenticating.
        timeout_s: seconds for the connection and each reply.
    """

    host: str
    port: int = 587
    username: str = ""
    password: str = ""
    sender: str = ""
    starttls: bool = True
    timeout_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig | None:
        """The configuration of ``settings``, or ``None`` when ``SMTP_HOST`` is unset (e-mail is off).

        Raises:
            InvalidInputError: ``SMTP_HOST`` set without a valid ``SMTP_FROM`` address.
        """
        host = settings.smtp_host.strip()
        if not host:
            return None
        _, address = parseaddr(settings.smtp_from)
        if "@" not in address:
            raise InvalidInputError("SMTP_HOST is set: set SMTP_FROM to the sender address, e.g. alerts@example.com")
        return cls(
            host=host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            sender=settings.smtp_from.strip(),
            starttls=settings.smtp_starttls,
        )

    @property
    def sender_address(self) -> str:
        """The bare address of :attr:`sender` (the envelope sender)."""
        return parseaddr(self.sender)[1]


class SmtpRefusedError(Exception):
    """The server refused the message or its recipient: ``code`` and its text. ``permanent`` for 5xx (RFC 5321
    §4.2.1: do not repeat the same transaction), otherwise a temporary refusal worth a retry."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.permanent = 500 <= code < 600


def build_message(
    config: SmtpConfig, delivery: str, recipient: str, notification: Notification, now_ns: int
) -> EmailMessage:
    """The e-mail of ``notification`` to ``recipient``: subject its title, plain-text body, ``Message-ID``
    ``<delivery@sender domain>`` (the same for every attempt of one delivery, so a receiving system can tell a
    repeat), ``Date`` ``now_ns`` (ns since the epoch, UTC: when it is sent), ``Auto-Submitted: auto-generated``
    (RFC 3834)."""
    domain = config.sender_address.rpartition("@")[2] or "smart-trader.invalid"
    msg = EmailMessage(policy=SMTP)
    msg["From"] = config.sender if "<" in config.sender else formataddr(("Smart Trader", config.sender_address))
    msg["To"] = recipient
    msg["Subject"] = " ".join(notification.title.split())  # one line, whatever a program's name holds
    msg["Message-ID"] = f"<{delivery}@{domain}>"
    msg["Date"] = format_datetime(datetime.fromtimestamp(now_ns // 1_000_000_000, UTC))
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Smart-Trader-Kind"] = notification.kind
    text = f"{notification.body}\n\n-- \nSmart Trader notification {notification.id} ({notification.kind}).\n"
    msg.set_content(text, cte="quoted-printable")
    return msg


class SmtpTransaction:
    """One message to one recipient, sent in two steps around the caller's commit (module docstring). Blocking: run
    the steps in a thread. Not reusable.

    Args:
        config: the server.
        message: the message (:func:`build_message`).
        recipient: the envelope recipient (``RCPT TO``).
    """

    def __init__(self, config: SmtpConfig, message: EmailMessage, recipient: str) -> None:
        self.config = config
        self.message = message
        self.recipient = recipient
        self._smtp: smtplib.SMTP | None = None

    def prepare(self) -> None:
        """Everything up to the end-of-data line.

        Raises:
            SmtpRefusedError: the server refused the sender, the recipient or ``DATA``.
            smtplib.SMTPException, OSError: connection, TLS or authentication failed (the connection is closed).
        """
        c = self.config
        smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout_s)
        self._smtp = smtp
        try:
            smtp.ehlo()
            if c.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if c.username:
                smtp.login(c.username, c.password)
            code, text = smtp.mail(c.sender_address)
            if code != 250:
                raise SmtpRefusedError(code, text.decode(errors="replace"))
            code, text = smtp.rcpt(self.recipient)
            if code not in (250, 251):
                raise SmtpRefusedError(code, text.decode(errors="replace"))
            smtp.putcmd("data")
            code, text = smtp.getreply()
            if code != 354:
                raise SmtpRefusedError(code, text.decode(errors="replace"))
            data = _LEADING_DOT.sub(b"..", self.message.as_bytes(policy=SMTP))
            if not data.endswith(b"\r\n"):
                data += b"\r\n"
            smtp.send(data)
        except BaseException:
            self.abort()
            raise

    def finish(self) -> None:
        """Send the end-of-data line and read the server's verdict, then ``QUIT``.

        Raises:
            SmtpRefusedError: the server refused the message (it was not delivered).
            smtplib.SMTPException, OSError: the connection broke: whether the server took the message is unknown.
        """
        smtp = self._smtp
        if smtp is None:
            raise smtplib.SMTPServerDisconnected("prepare() did not succeed")
        try:
            smtp.send(END_OF_DATA)
            code, text = smtp.getreply()
            if code != 250:
                raise SmtpRefusedError(code, text.decode(errors="replace"))
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()  # the message is accepted; a lost QUIT reply changes nothing
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop the connection without the end-of-data line: the server discards the unfinished message."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()
