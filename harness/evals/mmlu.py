"""MMLU-N as SGLang's ``run_eval --eval-name mmlu`` runs it, with per-question records for paired statistics.

What is the same as SGLang (``sglang/test/run_eval.py``, ``simple_eval_mmlu.py``, ``simple_eval_common.py``):
the sample (``random.Random(0).sample(rows, n)``), the prompt (``QUERY_TEMPLATE_MULTICHOICE``), the request (chat
API, one user message, no system prompt, temperature 0, top_p 1, max_tokens 2048), the retry policy (6 tries,
back-off ``2**trial`` s, BadRequest -> empty answer), the first-match extraction and the scoring
(``extracted == gold``; unknown subjects count as ``other``).

What we add: one record per question (JSONL), the responses (JSONL), a summary with a Wilson 95% CI, the
source and its sha256, and optional repeats against the same server (``repeat`` K) that measure the
run-to-run disagreement floor.  Files are written atomically into a new directory and never overwritten.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness import __version__
from harness.atomic import atomic_write_text, write_new_json
from harness.errors import HarnessError
from harness.evals import client as chat_client
from harness.evals.extract import ANSWER_PATTERN_MULTICHOICE, extract_answer, is_correct
from harness.evals.mmlu_data import (
    CATEGORIES,
    QUERY_TEMPLATE_MULTICHOICE,
    SAMPLE_SEED,
    MMLURow,
    MMLUSource,
    question_sha256,
    sample_indices,
    sample_sha256,
)
from harness.evals.stats import paired_counts, wilson_ci

MMLU_SCHEMA_VERSION = 1
SUMMARY_FILE = "summary.json"
RECORDS_FILE = "records.jsonl"
RESPONSES_FILE = "responses.jsonl"


@dataclass
class MMLUConfig:
    num_questions: int = 500
    concurrency: int = 512  # SGLang run_eval's --num-threads default
    max_tokens: int = 2048
    temperature: float = 0.0
    top_p: float = 1.0
    repeat: int = 1
    tries: int = 6
    backoff_s: float = 1.0
    request_timeout_s: float = 3600.0
    extra_body: dict[str, Any] | None = None

    def sampling(self) -> dict[str, Any]:
        return {"api": "chat", "system_prompt": None, "temperature": self.temperature, "top_p": self.top_p,
                "max_tokens": self.max_tokens, "extra_body": self.extra_body}


@dataclass
class QuestionRecord:
    repeat: int
    index: int  # position in the sample
    source_index: int  # row in the source, in source order
    question_sha256: str
    subject: str
    category: str
    gold: str
    extracted: str | None
    correct: bool
    response_chars: int
    completion_tokens: int | None
    finish_reason: str | None
    error: str | None
    attempts: int
    latency_s: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class MMLUOutcome:
    out_dir: Path
    summary: dict[str, Any]
    records: list[QuestionRecord] = field(default_factory=list)


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def default_out_dir(runs: Path, engine: str, model: str) -> Path:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    slug = model.replace("/", "_")
    return runs / "mmlu" / f"{stamp}-{engine}-{slug}"


def check_out_dir(out_dir: Path) -> None:
    """Refuse a directory that already holds an MMLU record (records are immutable)."""
    for name in (SUMMARY_FILE, RECORDS_FILE, RESPONSES_FILE):
        if (out_dir / name).exists():
            raise HarnessError(f"{out_dir / name} already exists: MMLU records are never overwritten; "
                               "pick a new --out directory")


def score_block(records: list[QuestionRecord]) -> dict[str, Any]:
    n = len(records)
    k = sum(r.correct for r in records)
    lo, hi = wilson_ci(k, n)
    per_cat: dict[str, dict[str, Any]] = {}
    for cat in CATEGORIES:
        rs = [r for r in records if r.category == cat]
        kc = sum(r.correct for r in rs)
        per_cat[cat] = {"n": len(rs), "correct": kc, "score": (kc / len(rs)) if rs else None}
    return {
        "n": n,
        "correct": k,
        "score": k / n if n else None,
        "ci95": [lo, hi],
        "ci_method": "wilson",
        "errors": sum(1 for r in records if r.error),
        "no_answer": sum(1 for r in records if r.extracted is None),
        "truncated": sum(1 for r in records if r.finish_reason == "length"),
        "per_category": per_cat,
    }


def run_to_run(reps: dict[int, list[QuestionRecord]]) -> list[dict[str, Any]]:
    """Disagreement of each later repeat with repeat 0 (same engine, same server): the noise floor."""
    out = []
    base = reps.get(0, [])
    for r, recs in sorted(reps.items()):
        if r == 0:
            continue
        pc = paired_counts([x.correct for x in base], [x.correct for x in recs])
        out.append({"repeats": [0, r], "b": pc.b, "c": pc.c, "discordant": pc.b + pc.c,
                    "answer_changed": sum(1 for x, y in zip(base, recs) if x.extracted != y.extracted),
                    "delta": pc.delta})
    return out


def evaluate(
    base_url: str,
    served_model: str,
    rows: list[MMLURow],
    cfg: MMLUConfig,
    *,
    repeat: int = 0,
    on_done: Callable[[QuestionRecord], None] | None = None,
    client=None,
) -> tuple[list[QuestionRecord], list[str]]:
    """Ask every sampled row once; returns (records, responses) in sample order.

    Independent of how the server was started: it needs a base URL and the served model name only.
    """
    cl = client or chat_client.make_client(base_url, timeout=cfg.request_timeout_s,
                                           max_connections=max(cfg.concurrency, 16))
    records: list[QuestionRecord | None] = [None] * len(rows)
    responses: list[str] = [""] * len(rows)
    fatal: list[str] = []
    stop = threading.Event()

    def one(i: int, row: MMLURow) -> None:
        if stop.is_set():
            return
        res = chat_client.chat_once(cl, served_model, [{"role": "user", "content": row.prompt()}],
                                    max_tokens=cfg.max_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                                    extra_body=cfg.extra_body, tries=cfg.tries, backoff_s=cfg.backoff_s)
        if res.fatal:
            fatal.append(res.error or "fatal error")
            stop.set()
            return
        extracted = extract_answer(res.text)
        rec = QuestionRecord(repeat=repeat, index=i, source_index=row.source_index,
                             question_sha256=question_sha256(row), subject=row.subject, category=row.category,
                             gold=row.answer, extracted=extracted, correct=is_correct(extracted, row.answer),
                             response_chars=len(res.text), completion_tokens=res.completion_tokens,
                             finish_reason=res.finish_reason, error=res.error, attempts=res.attempts,
                             latency_s=round(res.latency_s, 4))
        records[i] = rec
        responses[i] = res.text
        if on_done:
            on_done(rec)

    with ThreadPoolExecutor(max_workers=max(1, cfg.concurrency)) as pool:
        futures = [pool.submit(one, i, row) for i, row in enumerate(rows)]
        for f in as_completed(futures):
            f.result()
    if fatal:
        raise HarnessError(f"MMLU against {base_url} (model {served_model!r}) stopped: {fatal[0]}")
    return [r for r in records if r is not None], responses


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("acc {task.fields[acc]}"), TextColumn("err {task.fields[err]}"),
                    TimeElapsedColumn(), TimeRemainingColumn(), transient=False)


def run_mmlu(
    *,
    base_url: str,
    served_model: str,
    source: MMLUSource,
    cfg: MMLUConfig,
    engine: str,
    model: str,
    out_dir: Path,
    server: str = "external",
    show_progress: bool = True,
    extra_meta: dict[str, Any] | None = None,
) -> MMLUOutcome:
    """Sample, evaluate ``cfg.repeat`` times, write records + summary into ``out_dir`` (which must be new)."""
    check_out_dir(out_dir)
    if cfg.repeat < 1:
        raise HarnessError(f"--repeat must be at least 1, got {cfg.repeat}")
    indices = sample_indices(len(source.rows), cfg.num_questions)
    rows = [source.rows[i] for i in indices]
    started = utc_now()
    all_records: list[QuestionRecord] = []
    all_responses: list[dict[str, Any]] = []
    reps: dict[int, list[QuestionRecord]] = {}
    for r in range(cfg.repeat):
        if show_progress:
            progress = _progress()
            lock = threading.Lock()
            tally = {"n": 0, "ok": 0, "err": 0}
            label = f"MMLU-{len(rows)} {engine}" + (f" repeat {r + 1}/{cfg.repeat}" if cfg.repeat > 1 else "")
            with progress:
                task = progress.add_task(label, total=len(rows), acc="-", err=0)

                def on_done(rec: QuestionRecord, task=task, progress=progress, lock=lock, tally=tally) -> None:
                    with lock:
                        tally["n"] += 1
                        tally["ok"] += rec.correct
                        tally["err"] += bool(rec.error)
                        progress.update(task, advance=1, acc=f"{tally['ok'] / tally['n']:.3f}", err=tally["err"])

                recs, texts = evaluate(base_url, served_model, rows, cfg, repeat=r, on_done=on_done)
        else:
            recs, texts = evaluate(base_url, served_model, rows, cfg, repeat=r)
        reps[r] = recs
        all_records.extend(recs)
        all_responses.extend({"repeat": r, "index": i, "response": t} for i, t in enumerate(texts))
    finished = utc_now()

    out_dir.mkdir(parents=True, exist_ok=True)
    check_out_dir(out_dir)
    records_text = "".join(json.dumps(rec.as_dict(), sort_keys=True) + "\n" for rec in all_records)
    atomic_write_text(out_dir / RECORDS_FILE, records_text)
    atomic_write_text(out_dir / RESPONSES_FILE,
                      "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in all_responses))
    first = score_block(reps[0])
    summary: dict[str, Any] = {
        "kind": "mmlu",
        "schema_version": MMLU_SCHEMA_VERSION,
        "harness_version": __version__,
        "engine": engine,
        "model": model,
        "served_model_name": served_model,
        "base_url": base_url,
        "server": server,
        "source": source.describe(),
        "num_questions": len(rows),
        "sample": {"method": "random.Random(0).sample(rows_in_source_order, n)", "seed": SAMPLE_SEED,
                   "source_indices_sha256": sample_sha256(indices)},
        "prompt_template_sha256": hashlib.sha256(QUERY_TEMPLATE_MULTICHOICE.encode()).hexdigest(),
        "answer_pattern": ANSWER_PATTERN_MULTICHOICE,
        "sampling": cfg.sampling(),
        "concurrency": cfg.concurrency,
        "retries": {"tries": cfg.tries, "backoff": f"{cfg.backoff_s} * 2**trial s",
                    "bad_request": "empty answer, scored wrong, recorded as error"},
        "repeat": cfg.repeat,
        **first,
        "repeats": [{"repeat": r, **{k: v for k, v in score_block(recs).items() if k != "per_category"}}
                    for r, recs in sorted(reps.items())],
        "run_to_run": run_to_run(reps),
        "started_at": started,
        "finished_at": finished,
        "records_file": RECORDS_FILE,
        "records_sha256": hashlib.sha256(records_text.encode()).hexdigest(),
        "responses_file": RESPONSES_FILE,
    }
    if extra_meta:
        summary["meta"] = extra_meta
    write_new_json(out_dir / SUMMARY_FILE, summary)
    return MMLUOutcome(out_dir=out_dir, summary=summary, records=all_records)
