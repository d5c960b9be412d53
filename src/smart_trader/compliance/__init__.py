"""Compliance: the tamper-evident audit trail (a hash chain of every state-changing action)."""
