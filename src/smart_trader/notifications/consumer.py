"""The notification consumer: challenge warnings, breaches, locks and passes, and payment receipts and grants, turned
into notifications, their WebSocket document and their e-mail and webhook deliveries — in the consumer's transaction.

For each event :func:`~smart_trader.notifications.rules.draft_for` says whether it notifies anyone (a challenge event's
user is found through its challenge: ``challenges.store``, read only). Then, in the one transaction
:func:`~smart_trader.workers.consumer.apply` runs with the event's idempotency mark:

- the ``notifications`` row (id derived from the event id, ``created_ns`` the event's ``ts_event``: a rebuild from the
  same events gives the same rows; inserted only when its event has none yet);
- an outbox row on the topic ``notifications.<user_id>`` (stream ``notifications``, event type
  ``notification.created``, event id = the notification's id; skipped when already written), which the relay
  publishes to the WebSocket channel ``notifications`` like every other document;
- the deliveries: an e-mail to the user's address when e-mail is on and the user wants the kind
  (``notification_preferences``, default :data:`~smart_trader.notifications.rules.EMAIL_DEFAULT_KINDS`), and one per
  webhook endpoint of the user that takes the kind; none for a disabled user. Sent later by
  :class:`~smart_trader.notifications.sender.DeliverySender`, idempotent by the delivery's derived id.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import structlog
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from smart_trader.challenges import store as challenge_store
from smart_trader.core.clock import now_ns as wall_clock_ns
from smart_trader.core.errors import NotFoundError
from smart_trader.db.outbox import event_row, outbox
from smart_trader.gateway import users
from smart_trader.gateway.hub import notifications_topic
from smart_trader.notifications import rules, store
from smart_trader.notifications.rules import ChallengeContext, Notification
from smart_trader.settings import Settings
from smart_trader.workers.envelope import Envelope

log = structlog.get_logger("smart_trader.notifications")
NOTIFICATION_CREATED = "notification.created"
CONTEXTS = 10_000
"""Challenge contexts one consumer keeps in memory."""
STREAM = "notifications"


class NotificationConsumer:
    """The ``notifications`` consumer of the ``challenges`` and ``payments`` streams (any number of replicas: the
    order of events does not matter, each makes at most one notification).

    Args:
        email: queue e-mail deliveries (on when ``SMTP_HOST`` is set: :meth:`from_settings`). Off, notifications are
            still stored, published and sent to webhooks.
    """

    name = "notifications"
    streams: tuple[str, ...] = ("challenges", "payments")
    ordered = False

    def __init__(self, *, email: bool = False) -> None:
        self.email = email
        # challenge id / account id → its context: a challenge row's user, program and phase never change (a
        # promotion opens a new row), so what was read once is read for good; bounded, misses are not kept
        self._contexts: OrderedDict[str, ChallengeContext] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings) -> NotificationConsumer:
        """The consumer with e-mail on when ``SMTP_HOST`` is set."""
        return cls(email=bool(settings.smtp_host.strip()))

    def handle(self, conn: Connection, event: Envelope) -> None:
        """Make ``event``'s notification, its outbox document and its deliveries (module docstring), or nothing for an
        event that notifies nobody. Idempotent: applied again it finds its rows and adds none."""
        context: ChallengeContext | None = None
        if event.stream == "challenges":
            if rules.challenge_kind(event) is None:
                return
            context = self._challenge_context(conn, event)
            if context is None:
                log.warning("challenge event without a known challenge", event_id=event.event_id)
                return
        draft = rules.draft_for(event, context)
        if draft is None:
            return
        user = users.get_user(conn, draft.user_id)
        if user is None:
            log.warning("notification for an unknown user dropped", event_id=event.event_id, user_id=draft.user_id)
            return
        n = Notification(
            id=rules.notification_id(event.event_id),
            user_id=user.id,
            kind=draft.kind,
            title=draft.title,
            body=draft.body,
            data=draft.data,
            event_id=event.event_id,
            created_ns=event.ts_event,
        )
        store.insert_notification(conn, n)
        topic = notifications_topic(user.id)
        document: dict[str, Any] = {
            "type": "notification",
            "topic": topic,
            "notification": n.document(),
            "actor": event.payload.get("actor"),
        }
        row = event_row(
            topic,
            NOTIFICATION_CREATED,
            document,
            wall_clock_ns(),
            event_id=n.id,
            stream=STREAM,
            partition_key=user.id,
            ts_event=event.ts_event,
            ts_init=event.ts_init,
        )
        # once: an event applied again finds it; only a known event id is skipped (any other conflict is an error)
        ins = pg_insert(outbox) if conn.dialect.name == "postgresql" else sqlite_insert(outbox)
        conn.execute(ins.on_conflict_do_nothing(index_elements=[outbox.c.event_id]), [row])
        if user.disabled_ns is not None:
            return
        deliveries = []
        if self.email and n.kind in store.email_kinds(conn, user.id):
            deliveries.append(store.delivery_row(n.id, store.EMAIL, user.email, event.ts_event))
        for endpoint in store.endpoints_of(conn, user.id):
            if endpoint.wants(n.kind):
                deliveries.append(store.delivery_row(n.id, store.WEBHOOK, endpoint.id, event.ts_event))
        store.enqueue(conn, deliveries)

    def _challenge_context(self, conn: Connection, event: Envelope) -> ChallengeContext | None:
        """:func:`challenge_context`, remembered by challenge id and account id (at most :data:`CONTEXTS`)."""
        challenge_id, account_id = rules.challenge_ref(event)
        key = challenge_id or account_id
        if key is None:
            return None
        found = self._contexts.get(key)
        if found is not None:
            self._contexts.move_to_end(key)
            return found
        found = challenge_context(conn, challenge_id, account_id)
        if found is not None:
            self._contexts[key] = found
            if len(self._contexts) > CONTEXTS:
                self._contexts.popitem(last=False)
        return found


def challenge_context(conn: Connection, challenge_id: str | None, account_id: str | None) -> ChallengeContext | None:
    """The user, program, phase and next phase of a challenge (by id, else by its account), or ``None``."""
    row = challenge_store.get_challenge(conn, challenge_id) if challenge_id else None
    if row is None and account_id:
        row = challenge_store.challenge_of_account(conn, account_id)
    if row is None:
        return None
    try:
        program = challenge_store.program_of(conn, row.program_id)
    except NotFoundError:
        return ChallengeContext(str(row.user_id))
    index = int(row.phase_index)
    phases = program.phases
    phase = phases[index].name if 0 <= index < len(phases) else None
    following = phases[index + 1].name if 0 <= index + 1 < len(phases) else None
    return ChallengeContext(str(row.user_id), program.name, phase, following)
