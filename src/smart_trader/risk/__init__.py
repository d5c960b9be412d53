"""Risk: per-account limits and trading state (halted by a risk manager), checked before an order reaches the
paper broker."""
