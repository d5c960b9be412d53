"""The ``smart-trader`` command line (Typer + Rich)."""
