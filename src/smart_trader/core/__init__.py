"""Shared kernel: exact value types, typed ids, instruments, errors and time helpers used by every service."""
