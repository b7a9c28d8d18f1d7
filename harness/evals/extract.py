"""Answer extraction exactly as SGLang's ``simple_eval_mmlu`` does it.

``re.search(r"(?i)Answer\\s*:\\s*([A-D])", response)``: the *first* match wins, the pattern is case-insensitive
(so ``answer: b`` extracts ``b``, which then does not equal the gold ``B`` and is scored wrong, as in SGLang),
and a response without a match is wrong.
"""

from __future__ import annotations

import re

ANSWER_PATTERN_MULTICHOICE = r"(?i)Answer\s*:\s*([A-D])"
_ANSWER_RE = re.compile(ANSWER_PATTERN_MULTICHOICE)


def extract_answer(response: str | None) -> str | None:
    """The letter after the first ``Answer:`` (any case, any spacing), or None."""
    match = _ANSWER_RE.search(response or "")
    return match.group(1) if match else None


def is_correct(extracted: str | None, gold: str) -> bool:
    """SGLang's scoring: ``extracted == row["Answer"]`` (no case folding)."""
    return extracted is not None and extracted == gold
