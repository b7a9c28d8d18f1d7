"""MMLU and greedy-parity records as the report reads them (``runs/<run_id>/evals/*.json``).

The reader is tolerant on purpose: it recognises a record by its ``kind`` field (``"mmlu"`` / ``"parity"``) or,
without one, by a file name starting with ``mmlu`` / ``parity``; other JSON files are ignored. Records are found
in ``runs/<run_id>/evals/`` (any depth) and, for records made outside a benchmark run, anywhere else under the
runs directory (e.g. ``runs/mmlu/<stamp>-<engine>-<model>/summary.json`` as ``harness.evals.mmlu`` writes it).

``harness.evals.mmlu`` writes ``summary.json`` (``kind: mmlu``, ``engine``, ``model``, ``n``, ``correct``,
``score``, ``started_at``, ``records_file``) beside ``records.jsonl`` (one question per line: ``repeat``,
``index``, ``source_index``, ``correct``, ...). The per-question results of repeat 0, keyed by ``source_index``,
are what the paired comparison uses.

Single-file form also accepted:

MMLU record (keys read; aliases in brackets)::

    {"kind": "mmlu", "engine": "vllm", "run_id": "...", "started_at": "...",
     "score" [accuracy]: 0.71, "n" [num_examples, num_questions]: 500, "correct" [num_correct]: 355,
     "questions" [results, per_question]: [{"source_index" [id, question_id, index]: 17, "correct": true,
                                            "extracted" [pred, answer]: "B", "gold" [target]: "B"}, ...]}

Parity record (``harness.evals.parity`` writes ``a`` / ``b`` engine blocks and ``per_prompt`` rows with
``exact_match``, ``token_divergence``, ``char_divergence``; those are read too, and its
``divergence_margins`` summary and each side's ``concurrency`` when present)::

    {"kind": "parity", "engines" [engine_a/engine_b, candidate/reference]: ["sglang-patched", "vllm"],
     "num_prompts" [n]: 20, "matches" [num_match]: 19, "match_rate": 0.95,
     "divergences" [mismatches]: [{"prompt" [prompt_id, index, id]: 3, "position" [first_divergence, token_index,
                                   char_index]: 100, "a" [text_a]: "...", "b" [text_b]: "..."}]}

Either kind may instead carry ``"status": "failed"`` and a ``failure`` / ``error`` message; it is shown as
failed. Records the reader cannot make sense of raise a HarnessError naming the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


@dataclass
class Divergence:
    prompt: str
    position: str
    a: str = ""
    b: str = ""


@dataclass
class EvalRecord:
    kind: str  # "mmlu" | "parity" | "reference" (harness parity-reference) | "floor" (harness parity-floor)
    path: Path
    run_id: str | None
    started_at: str | None
    status: str = "ok"
    failure: str | None = None
    dummy: bool | None = None  # dummy (random) weights, when the record says so
    random_init: bool = False  # engines that loaded one seeded random checkpoint (harness model init-weights)
    # mmlu
    engine: str | None = None
    model: str | None = None
    n: int | None = None
    correct: int | None = None
    score: float | None = None
    per_question: dict[str, bool] | None = None
    # parity
    engines: tuple[str, str] | None = None
    matches: int | None = None
    match_rate: float | None = None
    divergences: list[Divergence] = field(default_factory=list)
    # parity: harness.evals.parity.parity_signal (from the record, or computed from its per-prompt answers)
    signal: dict[str, Any] | None = None
    # parity: the record's divergence_margins (None for records written before it existed)
    margins: dict[str, Any] | None = None
    # parity: the record's prompt_tokens ({"known", "differ"}; None for records written before it existed)
    prompt_tokens: dict[str, Any] | None = None
    # parity: each side's concurrency, the prompts it had in flight at a time (None where the record does not say)
    concurrency: tuple[int | None, int | None] = (None, None)
    # parity computed from two runs' stored answers (`harness parity --from-generations`, `compare --gpus` across
    # slots): the runs of sides a and b, when the record names both; the report shows it in the group holding both
    side_runs: tuple[str, str] | None = None
    # reference and floor (harness.evals.reference): its summary, the reference's versions and device, the parity
    # record (reference) or the checkpoint's config (floor)
    reference_summary: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    reference: dict[str, Any] | None = None
    parity_record: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def _first(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


def _loads_dummy(cmd: list[Any]) -> bool:
    """Whether a server command line loads dummy weights (``--load-format dummy`` / ``--load-format=dummy``)."""
    args = [str(a) for a in cmd]
    return "--load-format=dummy" in args or any(a == "--load-format" and b == "dummy" for a, b in zip(args, args[1:]))


def _block_weights(block: dict[str, Any]) -> str | None:
    """``real`` | ``dummy`` | ``random-init`` for one block of a record (top level, ``meta``, or a parity side).

    ``weights`` says it when present. Records that only carry ``dummy_weights: true`` and the server command
    (``harness parity`` / ``harness mmlu`` with a managed server, before they wrote ``weights``) meant random
    weights of either kind by it: the command tells them apart, since only dummy weights are loaded with
    ``--load-format dummy`` and a random-init checkpoint is loaded from its directory."""
    w = block.get("weights")
    if w in ("real", "dummy", "random-init"):
        return w
    flag = block.get("dummy_weights")
    if flag is None:
        return None
    if not flag:
        return "real"
    cmd = (block.get("environment") or {}).get("server_command")
    if isinstance(cmd, list) and cmd and not _loads_dummy(cmd):
        return "random-init"
    return "dummy"


def _blocks(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in (d, d.get("meta"), d.get("a"), d.get("b")) if isinstance(b, dict)]


def _dummy_flag(d: dict[str, Any]) -> bool | None:
    """Dummy weights (``--load-format dummy``) at the top, in ``meta``, or in either side's block (parity)."""
    kinds = [k for k in map(_block_weights, _blocks(d)) if k is not None]
    return any(k == "dummy" for k in kinds) if kinds else None


def _random_init_flag(d: dict[str, Any]) -> bool:
    """Some block says the weights were a seeded random-init checkpoint (``harness model init-weights``)."""
    return any(_block_weights(b) == "random-init" for b in _blocks(d))


def _kind(data: dict[str, Any], path: Path) -> str | None:
    k = data.get("kind")
    if isinstance(k, str):
        k = k.lower()
        if k.startswith("mmlu"):
            return "mmlu"
        if k == "parity-reference":
            return "reference"
        if k == "parity-floor":
            return "floor"
        if k.startswith("parity"):
            return "parity"
        return None
    name = path.name.lower()
    if name.startswith("mmlu"):
        return "mmlu"
    if name.startswith("parity"):
        return "parity"
    return None


def parse_eval_record(data: Any, path: Path) -> EvalRecord | None:
    """An :class:`EvalRecord`, or ``None`` for a JSON file that is not an MMLU or parity record."""
    if not isinstance(data, dict):
        return None
    kind = _kind(data, path)
    if kind is None:
        return None
    status = str(data.get("status") or "ok")
    failure = _first(data, "failure", "error")
    if isinstance(failure, dict):
        failure = failure.get("message") or str(failure)
    rec = EvalRecord(
        kind=kind, path=path, run_id=data.get("run_id"), started_at=_first(data, "started_at", "created_at", "date"),
        status=status, failure=failure, raw=data,
    )
    rec.dummy = _dummy_flag(data)
    rec.random_init = _random_init_flag(data)
    try:
        if kind == "mmlu":
            _parse_mmlu(rec, data)
        elif kind == "reference":
            _parse_reference(rec, data)
        elif kind == "floor":
            rec.model = data.get("model")
            rec.reference_summary = data["summary"]
            rec.reference = data.get("reference") if isinstance(data.get("reference"), dict) else None
            rec.config = data.get("config") if isinstance(data.get("config"), dict) else None
        else:
            _parse_parity(rec, data)
    except (TypeError, ValueError, KeyError) as exc:
        raise HarnessError(f"{path}: unreadable {kind} record ({exc})") from None
    return rec


def _parse_reference(rec: EvalRecord, d: dict[str, Any]) -> None:
    engines = d.get("engines")
    if not (isinstance(engines, list) and len(engines) == 2):
        raise ValueError("field 'engines' (two names) is missing")
    rec.engines = (str(engines[0]), str(engines[1]))
    rec.model = d.get("model")
    rec.reference_summary = d.get("summary") if isinstance(d.get("summary"), dict) else None
    rec.reference = d.get("reference") if isinstance(d.get("reference"), dict) else None
    rec.parity_record = d.get("parity_record")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise ValueError(f"records file {path.name} is missing")
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path.name} line {i}: {exc.msg}") from None
    return out


def find_eval_files(root: Path) -> list[Path]:
    """JSON files under ``root`` that may be MMLU / parity records (the parser decides by ``kind``), sorted."""
    out = []
    for p in sorted(root.rglob("*.json")):
        name = p.name.lower()
        if name.startswith(("mmlu", "parity")) or name == "summary.json" or p.parent.name == "evals":
            out.append(p)
    return out


def _parse_mmlu(rec: EvalRecord, d: dict[str, Any]) -> None:
    rec.engine = _first(d, "engine", "profile")
    if rec.engine is None:
        raise ValueError("field 'engine' is missing")
    rec.model = d.get("model")
    questions = _first(d, "questions", "results", "per_question")
    if questions is None and isinstance(d.get("records_file"), str):
        questions = _read_jsonl(rec.path.parent / d["records_file"])
        questions = [q for q in questions if int(q.get("repeat") or 0) == 0]
    if isinstance(questions, list):
        pq: dict[str, bool] = {}
        for i, q in enumerate(questions):
            if not isinstance(q, dict):
                raise ValueError(f"questions[{i}] is not a mapping")
            qid = _first(q, "source_index", "id", "question_id", "index")
            if qid is None:
                qid = i
            pq[str(qid)] = bool(_first(q, "correct", "is_correct", "score"))
        rec.per_question = pq
    n = _first(d, "n", "num_examples", "num_questions")
    correct = _first(d, "correct", "num_correct")
    score = _first(d, "score", "accuracy")
    if rec.per_question is not None:
        n = n if n is not None else len(rec.per_question)
        correct = correct if correct is not None else sum(rec.per_question.values())
    rec.n = int(n) if n is not None else None
    rec.correct = int(correct) if correct is not None else None
    if score is None and rec.n and rec.correct is not None:
        score = rec.correct / rec.n
    rec.score = float(score) if score is not None else None
    if rec.status == "ok" and rec.score is None:
        raise ValueError("no 'score' and no per-question results")


def _engine_name(meta: Any) -> str | None:
    if isinstance(meta, dict):
        v = _first(meta, "engine", "profile", "name", "label")
        return None if v is None else str(v)
    return None if meta is None else str(meta)


def _parse_parity(rec: EvalRecord, d: dict[str, Any]) -> None:
    rec.model = d.get("model")
    engines = d.get("engines")
    if isinstance(engines, (list, tuple)) and len(engines) == 2:
        rec.engines = (str(engines[0]), str(engines[1]))
    else:
        a = _first(d, "engine_a", "candidate") or _engine_name(d.get("a"))
        b = _first(d, "engine_b", "reference", "baseline") or _engine_name(d.get("b"))
        if a is None or b is None:
            raise ValueError("field 'engines' (two names) is missing, and a/b carry no engine name")
        rec.engines = (str(a), str(b))
    sides = [d.get(k).get("run_id") if isinstance(d.get(k), dict) else None for k in ("a", "b")]
    if isinstance(d.get("run_ids"), dict):  # `harness compare --gpus` across slots: {engine: run id}
        sides = [d["run_ids"].get(e) for e in rec.engines]
    if all(isinstance(x, str) and x for x in sides):
        rec.side_runs = (sides[0], sides[1])
    n = _first(d, "n", "num_prompts")
    matches = _first(d, "matches", "num_match", "num_matches")
    rate = _first(d, "match_rate")
    rec.n = int(n) if n is not None else None
    rec.matches = int(matches) if matches is not None else None
    if rate is None and rec.n and rec.matches is not None:
        rate = rec.matches / rec.n
    rec.match_rate = float(rate) if rate is not None else None
    if isinstance(d.get("divergence_margins"), dict):
        rec.margins = d["divergence_margins"]
    if isinstance(d.get("prompt_tokens"), dict):
        rec.prompt_tokens = d["prompt_tokens"]
    blocks = [d.get(k) if isinstance(d.get(k), dict) else {} for k in ("a", "b")]
    rec.concurrency = (blocks[0].get("concurrency"), blocks[1].get("concurrency"))
    if isinstance(d.get("signal"), dict):
        rec.signal = d["signal"]
    elif isinstance(d.get("per_prompt"), list) and all(isinstance(r, dict) for r in d["per_prompt"]):
        from harness.evals.parity import parity_signal  # records written before the signal field existed

        rec.signal = parity_signal(d["per_prompt"])
    divs = _first(d, "divergences", "mismatches")
    if divs is None and isinstance(d.get("per_prompt"), list):  # harness.evals.parity
        divs = []
        for row in d["per_prompt"]:
            if not isinstance(row, dict) or row.get("exact_match"):
                continue
            if row.get("token_divergence") is not None:
                pos = f"{row.get('token_method') or 'token'} token {row['token_divergence']}"
            elif row.get("char_divergence") is not None:
                pos = f"char {row['char_divergence']}"
            else:
                pos = "error"
            divs.append({"prompt": row.get("id"), "position": pos})
    for i, dv in enumerate(divs or []):
        if not isinstance(dv, dict):
            raise ValueError(f"divergences[{i}] is not a mapping")
        prompt = _first(dv, "prompt", "prompt_id", "index", "id")
        pos = _first(dv, "position", "first_divergence", "token_index", "char_index")
        rec.divergences.append(
            Divergence(
                prompt=str(prompt if prompt is not None else i),
                position="?" if pos is None else str(pos),
                a=str(_first(dv, "a", "text_a") or ""),
                b=str(_first(dv, "b", "text_b") or ""),
            )
        )


def run_gate(reference: EvalRecord, candidate: EvalRecord) -> dict[str, Any] | None:
    """The MMLU gate of :mod:`harness.evals.gate` on two ``harness mmlu`` outputs, with its default rule.

    ``None`` when that module is not importable or a record is not a ``summary.json`` it can read; a dict with
    ``verdict: "unusable"`` and ``error`` when it refuses the pair.
    """
    try:
        from harness.evals.gate import run_gate as _run_gate
    except ImportError:
        return None
    if reference.path.name != "summary.json" or candidate.path.name != "summary.json":
        return None
    try:
        return _run_gate(reference.path.parent, candidate.path.parent)
    except HarnessError as exc:
        msg = str(exc)
        for rec in (reference, candidate):
            msg = msg.replace(str(rec.path.parent), rec.path.parent.name)
        return {"verdict": "unusable", "error": msg}
