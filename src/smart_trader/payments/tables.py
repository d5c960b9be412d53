"""Tables of payments: the provider events received (idempotency by the provider's event id), the payments they
recorded, and the challenge grants (paid or by an administrator's hand).

- ``payment_events``: one row per provider event (Stripe ``evt_...``, PayPal ``WH-...``), unique by
  ``(provider, provider_event_id)``: a redelivery finds its row and changes nothing. ``status``: ``processed`` (it
  did what it says), ``ignored`` (an event type or state we do not act on, kept for the record), ``failed`` (it
  could not be applied: ``reason`` says why; a redelivery of a failed event is processed again). ``payment_ref``:
  the provider's payment it is about (Stripe payment intent, PayPal capture), so a refund delivered before its
  purchase still revokes the grant when the purchase arrives.
- ``payments``: one row per provider payment (unique ``(provider, provider_payment_id)``), amount exact in the
  currency's major unit (``12.34`` USD, ``500`` JPY), ``status`` ``succeeded`` | ``refunded`` | ``partially_refunded``
  | ``disputed``.
- ``challenge_grants``: the challenge a grant opened (unique), whom for, from which payment (``NULL`` for an
  administrator's grant), who granted it (``granted_by``: ``stripe``, ``paypal`` or the admin's user id), and its
  revocation.

Timestamps are ns since the epoch, UTC.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, String, Table, Text, UniqueConstraint

from smart_trader.db.metadata import metadata
from smart_trader.db.types import ExactDecimal

payment_events = Table(
    "payment_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(16), nullable=False),  # stripe | paypal
    Column("provider_event_id", String(255), nullable=False),
    Column("type", String(100), nullable=False),  # the provider's event type (checkout.session.completed...)
    Column("received_ns", BigInteger, nullable=False),  # first delivery
    Column("updated_ns", BigInteger, nullable=False),  # last delivery that changed the row
    Column("status", String(16), nullable=False),  # processed | ignored | failed
    Column("attempts", Integer, nullable=False),  # deliveries processed (a failed event is tried again)
    Column("reason", Text, nullable=True),  # why it failed or was ignored; what it did
    Column("payment_ref", String(255), nullable=True, index=True),  # the provider's payment it is about
    Column("payload_sha256", String(64), nullable=False),  # hash of the raw body of the last delivery
    UniqueConstraint("provider", "provider_event_id", name="uq_payment_events_provider_event"),
)

payments = Table(
    "payments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("provider", String(16), nullable=False),
    Column("provider_payment_id", String(255), nullable=False),  # Stripe payment intent (or session), PayPal capture
    Column("provider_event_id", String(255), nullable=False),  # the event that recorded it
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False, index=True),
    Column("amount", ExactDecimal, nullable=True),  # major units of ``currency``; NULL when the provider gave none
    Column("currency", String(3), nullable=True),  # ISO 4217, upper case
    Column("status", String(24), nullable=False),  # succeeded | refunded | partially_refunded | disputed
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    UniqueConstraint("provider", "provider_payment_id", name="uq_payments_provider_payment"),
)

challenge_grants = Table(
    "challenge_grants",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("challenge_id", String(36), ForeignKey("challenges.id"), nullable=False, unique=True),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False, index=True),
    Column("program_id", String(100), nullable=False),
    Column("account_size", ExactDecimal, nullable=False),
    Column("source", String(16), nullable=False),  # stripe | paypal | admin
    Column("payment_id", String(36), ForeignKey("payments.id"), nullable=True, unique=True),  # NULL: by hand
    Column("granted_by", String(36), nullable=False),  # stripe | paypal | the admin's user id
    Column("reason", String(500), nullable=True),  # the admin's reason
    Column("status", String(16), nullable=False),  # active | revoked
    Column("revoked_ns", BigInteger, nullable=True),
    Column("revoke_reason", String(500), nullable=True),
    Column("created_ns", BigInteger, nullable=False),
)
