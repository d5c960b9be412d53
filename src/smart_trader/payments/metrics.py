"""Prometheus metrics of payments (the default registry ``/metrics`` renders).

The ``003`` document's critical alert "payment processing failure rate > 5 %" is, over these counters::

    sum(rate(payment_failures_total[15m]))
      / (sum(rate(payments_total[15m])) + sum(rate(payment_failures_total[15m]))) > 0.05

A failure is counted once per provider event (its first failed delivery; the provider's retries of it are not
counted again), and once per refused delivery (a bad signature, a stale timestamp, a malformed body, a certificate
that cannot be fetched): a wrong or rotated secret makes every payment fail, which is what the alert must catch
(a scanner posting garbage counts too: give the alert a minimum volume). A webhook not configured at all answers
503 without counting (a deployment that sells nothing would alert on every scanner; the 503s show in
``api_response_duration_seconds{status="503"}``).
"""

from __future__ import annotations

from prometheus_client import Counter

PAYMENTS = Counter("payments_total", "Payments that granted a challenge, by provider.", ["provider"])
PAYMENT_FAILURES = Counter(
    "payment_failures_total",
    "Payment events that could not be applied or deliveries refused, by provider and reason "
    "(signature, stale, malformed, certificate, unknown-user, unknown-program, unknown-size, invalid-size, "
    "invalid-currency, missing-field, declined).",
    ["provider", "reason"],
)
for _provider in ("stripe", "paypal"):  # both series exist from the start (at 0): the failure ratio has a denominator
    PAYMENTS.labels(_provider)
