"""The decimal context of the accounting: wide enough for any sum we keep, and trapping any rounding.

Every ledger and position update runs under :data:`EXACT`; an operation that would round raises
:class:`decimal.Inexact` instead of silently drifting. Averages (entry price) are the one place
where a quotient is needed; they use :data:`AVERAGE` and are never fed back into cash.
"""

from __future__ import annotations

from decimal import Context, Inexact, Overflow, Underflow

EXACT = Context(prec=60, traps=[Inexact, Overflow, Underflow])
AVERAGE = Context(prec=28)
