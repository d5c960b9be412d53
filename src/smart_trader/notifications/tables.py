"""The notifications tables.

- ``notifications``: one row per notification a user gets (in-app inbox), made by the notification consumer from a
  domain event (``event_id`` unique: one notification per event at most). ``id`` is derived from the event id
  (:func:`~smart_trader.notifications.rules.notification_id`) and ``created_ns`` is the event's ``ts_event``, so a
  rebuild from the same events gives the same rows. ``read_ns`` is the user's own mark (wall clock), kept by re-applies.
- ``notification_deliveries``: the queue of e-mails and outgoing webhook calls of a notification (``target``: the
  e-mail address, or the webhook endpoint's id), sent by :class:`~smart_trader.notifications.sender.DeliverySender`.
  Status ``pending`` → ``sending`` (claimed, ``attempts`` counted, ``next_attempt_ns`` is the claim's lease) → ``sent``
  | ``failed`` (given up) | ``cancelled`` (its endpoint was deleted). No foreign key to ``notifications``: the inbox
  may be rebuilt without touching what was already sent (delivery ids are derived, so a rebuild finds them again).
- ``webhook_endpoints``: URLs a user registered, with the optional kinds they want and the signing secret encrypted at
  rest (:class:`~smart_trader.notifications.webhooks.SecretBox`: Fernet under a key derived from ``SECRET_KEY``).
- ``notification_preferences``: the kinds a user wants by e-mail (no row: the defaults,
  :data:`~smart_trader.notifications.rules.EMAIL_DEFAULT_KINDS`).

Timestamps are ns since the epoch, UTC.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text

from smart_trader.db.metadata import metadata

notifications = Table(
    "notifications",
    metadata,
    Column("id", String(36), primary_key=True),  # uuid5 of the source event id
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False),
    Column("kind", String(40), nullable=False),  # rules.KINDS
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("data", Text, nullable=False),  # JSON object: the event's facts (decimals as strings)
    Column("event_id", String(64), nullable=False, unique=True),  # the source domain event
    Column("created_ns", BigInteger, nullable=False),  # the source event's ts_event
    Column("read_ns", BigInteger, nullable=True),  # when the user marked it read (wall clock)
    Index("ix_notifications_user_id_created_ns_id", "user_id", "created_ns", "id"),
)

notification_deliveries = Table(
    "notification_deliveries",
    metadata,
    Column("id", String(36), primary_key=True),  # uuid5 of (notification, channel, target): the Message-ID's base
    Column("notification_id", String(36), nullable=False, index=True),
    Column("channel", String(16), nullable=False),  # email | webhook
    Column("target", String(320), nullable=False),  # e-mail address, or webhook endpoint id
    Column("attempts", Integer, nullable=False),  # claims so far (the fencing token of the current claim)
    Column("next_attempt_ns", BigInteger, nullable=False),  # due time; while ``sending``: the claim's lease end
    Column("status", String(16), nullable=False),  # pending | sending | sent | failed | cancelled
    Column("last_error", String(500), nullable=True),
    Column("created_ns", BigInteger, nullable=False),
    Column("sent_ns", BigInteger, nullable=True),
    Index("ix_notification_deliveries_status_next_attempt_ns", "status", "next_attempt_ns"),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False, index=True),
    Column("url", String(2048), nullable=False),
    Column("kinds", Text, nullable=True),  # JSON list of kinds; NULL: every kind
    Column("secret", Text, nullable=False),  # the signing secret, Fernet-encrypted (webhooks.SecretBox)
    Column("created_ns", BigInteger, nullable=False),
)

notification_preferences = Table(
    "notification_preferences",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id"), primary_key=True),
    Column("email_kinds", Text, nullable=False),  # JSON list of the kinds sent by e-mail
    Column("updated_ns", BigInteger, nullable=False),
)
