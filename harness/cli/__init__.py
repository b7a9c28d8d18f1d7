"""Typer command groups, one module per command group."""
