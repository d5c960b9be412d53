"""The delivery loop: sends the queued e-mails and webhook calls of notifications, with retries and exponential
backoff, idempotent by delivery id.

Each round claims the due deliveries (:func:`~smart_trader.notifications.store.claim_due`: ``sending``, one more
attempt, a lease) in one short transaction, sends them concurrently, then records each outcome in another, fenced by
the claim's attempt number — a sender whose lease ran out and whose delivery another sender took over changes
nothing. Any number of senders may run (``SKIP LOCKED`` on PostgreSQL).

- **E-mail** (:mod:`~smart_trader.notifications.email`): "sent" is committed between the message and the end-of-data
  line, so a crash never sends one delivery twice (at most once across crashes; the window where one can be lost is
  the one round trip after that commit — see the module). ``Message-ID`` is derived from the delivery id.
- **Webhooks** (:mod:`~smart_trader.notifications.webhooks`): signed POST; 2xx is success, anything else (3xx
  included: redirects are not followed) or a network error is retried. **At least once**: a sender that dies after
  the endpoint answered and before its mark leaves the delivery to be sent again after the lease, with the same
  ``Smart-Trader-Event-Id`` (receivers dedupe on it, as with Stripe's).

Backoff: attempt ``n`` failed → next try ``backoff_base_s × 2^(n-1)`` seconds later (at most ``backoff_max_s``);
after ``max_attempts`` attempts the delivery is ``failed``. A permanent refusal (SMTP 5xx to the message or its
recipient; a webhook URL that became invalid) fails it at once. Times are ns since the epoch, UTC.
"""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import httpx
import orjson
import structlog
from sqlalchemy import Connection

from smart_trader.core.clock import now_ns as wall_clock_ns
from smart_trader.core.errors import InvalidInputError
from smart_trader.notifications import store
from smart_trader.notifications.email import SmtpConfig, SmtpRefusedError, SmtpTransaction, build_message
from smart_trader.notifications.store import Claim
from smart_trader.notifications.webhooks import (
    DELIVERY_ID_HEADER,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    SecretBox,
    UnsafeAddressError,
    post,
    signature_header,
)
from smart_trader.settings import Settings

log = structlog.get_logger("smart_trader.notifications")
T = TypeVar("T")
NS = 1_000_000_000


class Writer(Protocol):
    """What the sender needs of the platform's group-commit writer (:class:`~smart_trader.db.writer.BatchWriter`)."""

    async def run(self, job: Callable[[Connection], T]) -> T: ...


Hook = Callable[[str, str], None]
"""Called with (step, delivery id) at ``"prepared"`` (e-mail: all but the end-of-data sent) and ``"marked"`` (its
"sent" committed): lets a test stop a sender exactly there, as a crash would."""


class DeliverySender:
    """Sends due deliveries (module docstring).

    Args:
        writer: the group-commit writer (claims and marks are its jobs).
        secrets: decrypts the webhook endpoints' signing secrets.
        smtp: the SMTP server, or ``None`` when e-mail is off (e-mail deliveries then fail with that reason).
        allow_loopback: webhooks may reach loopback addresses (tests; ``WEBHOOK_ALLOW_LOOPBACK``).
        batch: deliveries claimed per round.
        poll_seconds: pause between rounds that found nothing to do.
        lease_seconds: how long a claim holds a delivery; must exceed one attempt (SMTP and HTTP timeouts).
        max_attempts: attempts before a delivery is ``failed``.
        backoff_base_s / backoff_max_s: the retry delays (seconds).
        http_timeout_s: connect/read/write timeout of a webhook request (seconds).
        now_ns: the wall clock (ns UTC).
        hook: see :data:`Hook`.
    """

    def __init__(
        self,
        writer: Writer,
        secrets: SecretBox,
        smtp: SmtpConfig | None = None,
        *,
        allow_loopback: bool = False,
        batch: int = 20,
        poll_seconds: float = 1.0,
        lease_seconds: float = 120.0,
        max_attempts: int = 8,
        backoff_base_s: float = 30.0,
        backoff_max_s: float = 3600.0,
        http_timeout_s: float = 10.0,
        now_ns: Callable[[], int] = wall_clock_ns,
        hook: Hook | None = None,
    ) -> None:
        self.writer = writer
        self.secrets = secrets
        self.smtp = smtp
        self.allow_loopback = allow_loopback
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.lease_ns = int(lease_seconds * NS)
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.now_ns = now_ns
        self.hook = hook or (lambda step, delivery: None)
        self.http_timeout_s = http_timeout_s
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.failures = 0

    @classmethod
    def from_settings(cls, settings: Settings, writer: Writer, **options: Any) -> DeliverySender:
        """A sender configured by ``SMTP_*``, ``WEBHOOK_ALLOW_LOOPBACK`` (ignored in production) and the signing keys.

        Raises:
            InvalidInputError: ``SMTP_HOST`` without ``SMTP_FROM``; a weak or missing ``SECRET_KEY``.
        """
        _key, keys = settings.signing_keys()
        return cls(
            writer,
            SecretBox(keys),
            SmtpConfig.from_settings(settings),
            allow_loopback=settings.webhook_allow_loopback and settings.environment != "production",
            **options,
        )

    # -- running --------------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Send in the background until :meth:`stop`."""
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        """Stop after the current round (its claims not finished are taken over after their lease)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _loop(self) -> None:
        while True:
            try:
                done = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery round failed; retrying")
                done = 0
            if done < self.batch:
                await asyncio.sleep(self.poll_seconds)

    async def run_once(self) -> int:
        """One round: claim the due deliveries and attempt each; returns how many were attempted."""
        now = self.now_ns()
        claims = await self.writer.run(lambda c: store.claim_due(c, now, self.lease_ns, self.batch))
        if claims:
            await asyncio.gather(*(self._attempt(claim) for claim in claims))
        return len(claims)

    # -- one attempt ----------------------------------------------------------------------------------------------
    async def _attempt(self, claim: Claim) -> None:
        try:
            if claim.notification is None:
                await self._mark(lambda c: store.mark_cancelled(c, claim.id, claim.attempts, "notification gone"))
            elif claim.channel == store.EMAIL:
                await self._email(claim)
            elif claim.channel == store.WEBHOOK:
                await self._webhook(claim)
            else:
                await self._fail(claim, f"unknown channel {claim.channel!r}", permanent=True)
        except Exception as exc:  # a bug or the database: leave the claim to its lease, say why
            log.exception("delivery attempt failed", delivery=claim.id)
            with contextlib.suppress(Exception):
                await self._fail(claim, f"{type(exc).__name__}: {exc}", permanent=False)

    async def _email(self, claim: Claim) -> None:
        assert claim.notification is not None
        if self.smtp is None:
            await self._fail(claim, "e-mail is off (SMTP_HOST is not set)", permanent=True)
            return
        message = build_message(self.smtp, claim.id, claim.target, claim.notification, self.now_ns())
        tx = SmtpTransaction(self.smtp, message, claim.target)
        try:
            await asyncio.to_thread(tx.prepare)
        except SmtpRefusedError as exc:
            await self._fail(claim, f"SMTP refused: {exc}", permanent=exc.permanent)
            return
        except (smtplib.SMTPException, OSError) as exc:
            await self._fail(claim, f"SMTP: {type(exc).__name__}: {exc}", permanent=False)
            return
        try:
            self.hook("prepared", claim.id)
            now = self.now_ns()
            if not await self.writer.run(lambda c: store.mark_sent(c, claim.id, claim.attempts, now)):
                return  # another sender took this delivery over (our lease ran out): it sends it, not us
            self.hook("marked", claim.id)
            try:
                await asyncio.to_thread(tx.finish)
            except SmtpRefusedError as exc:  # refused after the end of data: not delivered, back in the queue
                await self._fail(claim, f"SMTP refused: {exc}", permanent=exc.permanent, was=store.SENT)
                return
            except (smtplib.SMTPException, OSError) as exc:  # the verdict was lost: at most once, it stays sent
                error = f"connection lost after the end of data, delivery unknown: {type(exc).__name__}: {exc}"
                await self.writer.run(lambda c: store.note_error(c, claim.id, error))
                log.warning("e-mail delivery unknown", delivery=claim.id, error=error)
                return
            self.sent += 1
        finally:
            tx.abort()  # without the end of data (not marked, or taken over) the server discards the message

    async def _webhook(self, claim: Claim) -> None:
        n, endpoint = claim.notification, claim.endpoint
        assert n is not None
        if endpoint is None:
            await self._mark(lambda c: store.mark_cancelled(c, claim.id, claim.attempts, "the endpoint was deleted"))
            return
        try:
            secret = self.secrets.decrypt(endpoint.secret)
        except InvalidInputError as exc:
            await self._fail(claim, str(exc), permanent=True)
            return
        body = orjson.dumps({"id": n.id, "kind": n.kind, "created_ns": n.created_ns, "notification": n.document()})
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(secret, self.now_ns() // NS, body),
            EVENT_ID_HEADER: n.id,
            DELIVERY_ID_HEADER: claim.id,
        }
        try:
            status = await post(self._http(), endpoint.url, body, headers, allow_loopback=self.allow_loopback)
        except InvalidInputError as exc:
            await self._fail(claim, f"URL no longer allowed: {exc}", permanent=True)
            return
        except UnsafeAddressError as exc:
            await self._fail(claim, str(exc), permanent=False)
            return
        except httpx.HTTPError as exc:
            await self._fail(claim, f"HTTP: {type(exc).__name__}: {exc}", permanent=False)
            return
        if not 200 <= status < 300:
            await self._fail(claim, f"the endpoint answered {status}", permanent=False)
            return
        now = self.now_ns()
        if await self.writer.run(lambda c: store.mark_sent(c, claim.id, claim.attempts, now)):
            self.sent += 1

    # -- outcomes -------------------------------------------------------------------------------------------------
    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.http_timeout_s, trust_env=False, follow_redirects=False)
        return self._client

    def retry_at(self, attempts: int, now_ns: int) -> int:
        """When attempt ``attempts + 1`` is due after attempt ``attempts`` failed at ``now_ns`` (ns UTC)."""
        delay = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempts - 1))
        return now_ns + int(delay * NS)

    async def _fail(self, claim: Claim, error: str, *, permanent: bool, was: str = store.SENDING) -> None:
        self.failures += 1
        final = permanent or claim.attempts >= self.max_attempts
        due = None if final else self.retry_at(claim.attempts, self.now_ns())
        log.info("delivery attempt failed", delivery=claim.id, attempt=claim.attempts, error=error, final=final)
        await self._mark(lambda c: store.mark_unsent(c, claim.id, claim.attempts, error, due, was=was))

    async def _mark(self, job: Callable[[Connection], bool]) -> None:
        await self.writer.run(job)
