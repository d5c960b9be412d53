"""Payments: provider webhooks (Stripe, PayPal) idempotent by the provider's event id; challenges granted and revoked
by payments, refunds and disputes, or granted by an administrator's hand."""
