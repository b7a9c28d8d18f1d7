"""gemma4-harness: benchmark and regression harness for Gemma-4 serving engines."""

__version__ = "0.1.0"
