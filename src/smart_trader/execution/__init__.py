"""Execution service: orders and their lifecycle, commission and slippage models, the paper broker."""
