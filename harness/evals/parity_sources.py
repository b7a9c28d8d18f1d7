"""Stored answer sets that greedy parity can compare without a server.

Two kinds of file hold one engine's answers to the parity prompts:

* a run's ``evals/generations-<engine>__mtp-X.json`` (written by ``harness compare --parity``), with every
  position's alternatives (``top_logprobs``);
* either side of a parity record (``PATH#a`` / ``PATH#b``), written by ``harness parity`` or a run; a record keeps
  each side's tokens and chosen-token logprobs but not the alternatives at every position, so a comparison
  that uses one has no divergence margins for that side.

``compare_answer_sets`` turns two of them into a parity record, e.g. an engine against itself across two server
starts: the run-to-run floor that a mismatch between two engines has to be read against.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.evals.parity import Generation, compare_runs, default_prompts_path, load_prompts


@dataclass
class AnswerSet:
    source: str  # the spec it was read from (PATH or PATH#a|b)
    engine: str | None
    model: str | None
    prompts_sha256: str | None
    generations: list[Generation]
    # mtp, dummy_weights, weights, environment, concurrency (prompts in flight), where known
    meta: dict[str, Any] = field(default_factory=dict)
    max_tokens: int | None = None


_GEN_FIELDS = set(Generation.__dataclass_fields__)


def _generation(d: dict[str, Any], where: str) -> Generation:
    try:
        return Generation(**{k: v for k, v in d.items() if k in _GEN_FIELDS})
    except TypeError as exc:
        raise HarnessError(f"{where}: not a parity answer ({exc})") from None


def _run_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the run a generations file belongs to (``<run>/evals/<file>`` next to
    ``<run>/manifest.json``), or {}."""
    try:
        m = json.loads((path.parent.parent / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    return m if isinstance(m, dict) else {}


def load_answer_set(spec: str) -> AnswerSet:
    """Read ``PATH`` (a generations file) or ``PATH#a`` / ``PATH#b`` (one side of a parity record)."""
    head, sep, tail = spec.rpartition("#")
    if sep and tail in ("a", "b"):
        return read_answer_set(Path(head), tail, spec)
    return read_answer_set(Path(spec), None, spec)


def read_answer_set(path: Path, side: str | None = None, spec: str | None = None) -> AnswerSet:
    """One answer set: a generations file (``side`` None) or side ``a``/``b`` of a parity record at ``path``."""
    spec = spec or (f"{path}#{side}" if side else str(path))
    path_s = str(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise HarnessError(f"{spec}: no such file") from None
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{spec}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise HarnessError(f"{spec}: not a generations file or a parity record")
    if data.get("kind") == "parity":
        if side not in ("a", "b"):
            raise HarnessError(f"{spec} is a parity record: name the side to take, {path_s}#a or {path_s}#b")
        blk = data.get(side) or {}
        rows = data.get("per_prompt") or []
        gens = [_generation(r.get(side) or {}, f"{spec} prompt {i}") for i, r in enumerate(rows)]
        meta = {k: blk[k] for k in ("mtp", "dummy_weights", "weights", "environment", "concurrency")
                if k in blk}
        return AnswerSet(spec, blk.get("engine"), data.get("model"), (data.get("prompts") or {}).get("sha256"),
                         gens, meta, (data.get("sampling") or {}).get("max_tokens"))
    if isinstance(data.get("generations"), list):
        if side:
            raise HarnessError(f"{spec}: #{side} names a side of a parity record; {path_s} is a generations file")
        gens = [_generation(g, f"{spec} answer {i}") for i, g in enumerate(data["generations"])]
        meta = {k: data[k] for k in ("mtp", "dummy_weights", "weights", "concurrency") if k in data}
        manifest = _run_manifest(path)
        if manifest.get("run_id"):
            meta["run_id"] = manifest["run_id"]
        if manifest.get("weights_init"):
            meta["weights_init"] = manifest["weights_init"]
        return AnswerSet(spec, data.get("engine"), manifest.get("model"), data.get("prompts_sha256"), gens, meta, 256)
    raise HarnessError(f"{spec}: neither a generations file (no 'generations' list) nor a parity record "
                       "(kind 'parity')")


def compare_answer_sets(a: AnswerSet, b: AnswerSet, *, label_a: str | None = None, label_b: str | None = None,
                        model: str | None = None, started_at: str, computed_by: str | None = None,
                        record_sources: bool = False) -> dict[str, Any]:
    """A parity record of two stored answer sets, checked against the prompt set this checkout has (the sets must
    come from it: a record that names one prompt set and compares answers to another would be wrong).
    ``record_sources``: each side says which file it was read from."""
    ppath = default_prompts_path()
    prompts, sha = load_prompts(ppath)
    for s in (a, b):
        if s.prompts_sha256 and s.prompts_sha256 != sha:
            raise HarnessError(f"{s.source} was generated from parity prompts sha256 {s.prompts_sha256[:12]}, not the "
                               f"prompt set here ({ppath.name}, sha256 {sha[:12]})")
    models = {m for m in (a.model, b.model) if m}
    if model is None:
        if len(models) > 1:
            raise HarnessError(f"the two answer sets are of different models ({', '.join(sorted(models))})")
        if not models:
            raise HarnessError("neither answer set says its model: pass --model")
        model = models.pop()
    caps = {s.max_tokens for s in (a, b) if s.max_tokens}
    if len(caps) > 1:
        raise HarnessError(f"the two answer sets were generated with different max_tokens ({sorted(caps)})")
    fps = [(s.meta.get("weights_init") or {}).get("fingerprint") for s in (a, b)]
    if all(fps) and fps[0] != fps[1]:
        raise HarnessError(f"{a.source} and {b.source} come from runs that loaded different random-init checkpoints "
                           f"(fingerprints {fps[0]} and {fps[1]}): their answers cannot be compared")
    names = []
    for s, label in ((a, label_a), (b, label_b)):
        name = label or s.engine
        if not name:
            raise HarnessError(f"{s.source} does not name its engine: pass --a/--b as labels")
        names.append(name)
    if names[0] == names[1]:
        raise HarnessError(f"both sides would be labelled {names[0]!r}: pass --a and --b to tell them apart "
                           "(e.g. which run or server start each answer set came from)")
    metas = [{"engine": n, **({"source": s.source} if record_sources else {}),
              **({"engine_profile": s.engine} if record_sources and s.engine and s.engine != n else {}),
              **s.meta} for n, s in zip(names, (a, b))]
    rec = compare_runs(a.generations, b.generations, prompts=prompts, prompts_path=str(ppath), prompts_sha256=sha,
                       meta_a=metas[0], meta_b=metas[1], model=model, max_tokens=caps.pop() if caps else 256,
                       started_at=started_at)
    if computed_by:
        rec["computed_by"] = computed_by
    if record_sources:
        # the same checkpoint on both sides: True when both runs recorded the random-init fingerprint (a different
        # one is refused above), None when a side does not say
        rec["same_checkpoint"] = True if all(fps) else None
    return rec
