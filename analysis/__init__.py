"""Analysis: tables, plots and COMPARISON.md rendering from run records."""
