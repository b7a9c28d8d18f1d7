"""First-match, case-insensitive ``Answer: X`` extraction and SGLang's exact-equality scoring."""

import pytest

from harness.evals.extract import ANSWER_PATTERN_MULTICHOICE, extract_answer, is_correct


@pytest.mark.parametrize("text,expected", [
    ("Some reasoning.\nAnswer: B", "B"),
    ("Answer:C", "C"),
    ("answer : d", "d"),  # (?i) matches the lowercase letter too; it is then scored wrong vs 'D'
    ("ANSWER:   A", "A"),
    ("Answer:\nB", "B"),  # \s* crosses the newline
    ("Answer: A ... wait, no. Answer: B", "A"),  # first match, not last
    ("The final answer is B", None),
    ("Answer: E", None),
    ("Answer: (B)", None),  # a parenthesis is not allowed between the colon and the letter
    ("**Answer:** B", None),  # markdown bold breaks 'Answer\s*:'
    ("**Answer: B**", "B"),
    ("Answer - B", None),
    ("MyAnswer: Cat", "C"),  # no word boundary in the pattern
    ("", None),
    (None, None),
])
def test_extract(text, expected):
    assert extract_answer(text) == expected


def test_pattern_is_sglangs():
    assert ANSWER_PATTERN_MULTICHOICE == r"(?i)Answer\s*:\s*([A-D])"


def test_scoring_is_exact_equality():
    assert is_correct("B", "B")
    assert not is_correct("b", "B")
    assert not is_correct(None, "B")
    assert not is_correct("A", "B")
