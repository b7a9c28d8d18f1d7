"""Read a greedy-parity record's divergences against a reference: transformers' float32 forward of the checkpoint.

For every prompt where the two engines' answers part at token ``i`` (``token_method: "logprobs"``), the reference
gets the prompt and the ``i`` tokens both engines share, and says how likely each engine's token ``i`` is
(``harness.reference_logprobs``, run in an engine environment's interpreter). Per divergence:

``delta``
    reference logprob of A's token minus that of B's token (nats); ``prefers`` is ``"a"`` above ``tie_nats``,
    ``"b"`` below ``-tie_nats``, else ``"tie"``.
``ref_rank_a`` / ``ref_rank_b``
    each token's rank in the reference's distribution (0: the reference's greedy choice); ``ref_top`` its own top
    tokens.
``a_gap`` / ``b_gap``
    the engine's own logprob of the token it chose (the record's ``token_logprobs``) minus the reference's
    logprob of that token: how far each engine's numbers are from float32 there. Small on both sides also shows
    that the reference loaded the checkpoint the engines answered from (other random weights give unrelated
    logprobs).

``control_*`` (float32 references only)
    transformers' own bfloat16 forward of the same context (``harness.reference_logprobs --control-dtype``): its
    greedy token, where float32 ranks it (``control_ref_rank``) and its bf16 logprob minus float32's
    (``control_gap``). That is the checkpoint's rounding floor: what computing in bf16 alone does to the choice.

The summary counts them. Reading it: if the reference prefers one side's token at (nearly) every divergence,
the other side computes something further from float32; if the preferences split and ``|delta|`` is small, the
divergences are near-ties that rounding flipped, on either side. ``floor`` compares the engines with the control:
``"within"`` when neither engine's median |gap| exceeds twice the control's (the engines are as far from float32
as bf16 rounding alone puts transformers, so the reference cannot tell them apart), ``"beyond"`` otherwise. On
random-init weights the floor is high (session 8: bf16 and float32 transformers picked the same first token on 0
of 20 parity prompts at E2B depth): such checkpoints amplify rounding, and parity between engines with different
kernels carries little information.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import HarnessError
from harness.evals.parity import PromptSet
from harness.paths import harness_module_env
from harness.reference_logprobs import MARK  # stdlib-only at import: torch is imported inside its main()

REFERENCE_SCHEMA_VERSION = 1
TIE_NATS = 1e-3


def reference_requests(record: dict[str, Any], prompts: PromptSet) -> tuple[list[dict[str, Any]], list[dict]]:
    """(requests for harness.reference_logprobs, skipped rows with the reason) from a parity record."""
    by_id = {p.id: p for p in prompts.prompts}
    reqs, skipped = [], []
    for row in record.get("per_prompt") or []:
        i = row.get("token_divergence")
        if row.get("exact_match") or i is None:
            continue
        pid = row.get("id")
        why = None
        a_t, b_t = (row.get("a") or {}).get("tokens"), (row.get("b") or {}).get("tokens")
        if row.get("token_method") != "logprobs" or a_t is None or b_t is None:
            why = "no per-token answers (whitespace split): the shared context cannot be rebuilt"
        elif i >= len(a_t) or i >= len(b_t):
            why = "one answer is a prefix of the other (they part by length, not by a token)"
        elif pid not in by_id:
            why = f"prompt {pid!r} is not in the prompt set"
        if why:
            skipped.append({"id": pid, "why": why})
            continue
        reqs.append({"key": pid, "index": i, "messages": by_id[pid].chat_messages(), "prefix": a_t[:i],
                     "candidates": [a_t[i], b_t[i]]})
    return reqs, skipped


def _verdict(req: dict[str, Any], res: dict[str, Any], row: dict[str, Any], tie_nats: float) -> dict[str, Any]:
    ta, tb = req["candidates"]
    out: dict[str, Any] = {"id": req["key"], "index": req["index"], "a_token": ta, "b_token": tb,
                           "prompt_tokens": res.get("prompt_tokens")}
    div = row.get("divergence") or {}
    out["engine_margins"] = {"a": div.get("a_margin"), "b": div.get("b_margin")}
    cands = res.get("candidates") or {}
    if res.get("unknown") or ta not in cands or tb not in cands:
        out.update(prefers=None, why=f"not in the reference's vocabulary: {', '.join(res.get('unknown') or [])}")
        return out
    la, lb = cands[ta]["logprob"], cands[tb]["logprob"]
    delta = la - lb
    out.update(ref_logprob_a=la, ref_logprob_b=lb, delta=round(delta, 6),
               prefers="a" if delta > tie_nats else "b" if delta < -tie_nats else "tie",
               ref_rank_a=cands[ta]["rank"], ref_rank_b=cands[tb]["rank"], ref_top=res.get("top"))
    for side, ref_lp in (("a", la), ("b", lb)):
        own = ((row.get(side) or {}).get("token_logprobs") or [])
        v = own[req["index"]] if req["index"] < len(own) else None
        out[f"{side}_gap"] = None if v is None else round(v - ref_lp, 6)
    c = res.get("control")
    if c:
        out.update(control_dtype=c["dtype"], control_token=c["top_token"], control_ref_rank=c["top_ref_rank"],
                   control_gap=round(c["top_logprob"] - c["top_ref_logprob"], 6),
                   control_candidates=c.get("candidates"))
    return out


def summarize(verdicts: list[dict[str, Any]]) -> dict[str, Any]:
    done = [v for v in verdicts if v.get("prefers")]
    deltas = [abs(v["delta"]) for v in done]
    return {
        "divergences": len(verdicts),
        "checked": len(done),
        "prefers_a": sum(v["prefers"] == "a" for v in done),
        "prefers_b": sum(v["prefers"] == "b" for v in done),
        "ties": sum(v["prefers"] == "tie" for v in done),
        "ref_top_is_a": sum(v["ref_rank_a"] == 0 for v in done),
        "ref_top_is_b": sum(v["ref_rank_b"] == 0 for v in done),
        "ref_top_is_neither": sum(v["ref_rank_a"] != 0 and v["ref_rank_b"] != 0 for v in done),
        "median_abs_delta": round(statistics.median(deltas), 6) if deltas else None,
        "max_abs_delta": round(max(deltas), 6) if deltas else None,
        **{f"median_abs_{s}_gap": _median_abs([v.get(f"{s}_gap") for v in done]) for s in ("a", "b")},
        **_control_summary(done),
    }


def _control_summary(done: list[dict[str, Any]]) -> dict[str, Any]:
    ctl = [v for v in done if v.get("control_dtype")]
    if not ctl:
        return {}
    gap = _median_abs([v["control_gap"] for v in ctl])
    engines = [g for g in (_median_abs([v.get(f"{s}_gap") for v in done]) for s in ("a", "b")) if g is not None]
    return {"control_dtype": ctl[0]["control_dtype"], "control_checked": len(ctl),
            "control_top_is_ref_top": sum(v["control_ref_rank"] == 0 for v in ctl),
            "median_control_ref_rank": statistics.median(v["control_ref_rank"] for v in ctl),
            "median_abs_control_gap": gap,
            "floor": None if not engines or gap is None else "within" if max(engines) <= 2 * gap else "beyond"}


def _median_abs(values: list[float | None]) -> float | None:
    vals = [abs(v) for v in values if v is not None]
    return round(statistics.median(vals), 6) if vals else None


def summary_text(s: dict[str, Any] | None, a: str = "A", b: str = "B") -> str:
    if not s or not s.get("checked"):
        return "no divergence checked"
    return (f"{s['checked']} divergences: the reference prefers {a}'s token {s['prefers_a']}×, {b}'s "
            f"{s['prefers_b']}×, ties {s['ties']}; its own top token is {a}'s {s['ref_top_is_a']}×, {b}'s "
            f"{s['ref_top_is_b']}×, neither {s['ref_top_is_neither']}×; median |Δ| {s['median_abs_delta']} nats "
            f"(max {s['max_abs_delta']})"
            + (f"; engine minus reference logprob of its own token, median |gap|: {a} {s.get('median_abs_a_gap')}, "
               f"{b} {s.get('median_abs_b_gap')}" if s.get("median_abs_a_gap") is not None
               or s.get("median_abs_b_gap") is not None else "")
            + (f"; transformers' own {s['control_dtype']} forward (the rounding floor): its top token is float32's "
               f"{s['control_top_is_ref_top']}/{s['control_checked']}, median float32 rank "
               f"{s['median_control_ref_rank']:g}, median |gap| {s['median_abs_control_gap']} nats"
               + (f": the engines are {s['floor']} that floor" if s.get("floor") else "")
               if s.get("control_checked") else ""))


def _repo_relative(path: Path) -> str:
    """``path`` relative to the repository root when it is inside it (how the report links it), else absolute."""
    from harness.paths import repo_root

    p, root = path.resolve(), repo_root().resolve()
    return str(p.relative_to(root)) if p.is_relative_to(root) else str(p)


def _load_parity(record_path: Path, prompts: PromptSet, prompts_sha256: str) -> tuple[bytes, dict, list, list]:
    raw = record_path.read_bytes()
    try:
        record = json.loads(raw)
    except ValueError as exc:
        raise HarnessError(f"{record_path}: not JSON ({exc})") from None
    if not isinstance(record, dict) or record.get("kind") != "parity":
        raise HarnessError(f"{record_path}: not a parity record (kind 'parity')")
    sha = (record.get("prompts") or {}).get("sha256")
    if sha and sha != prompts_sha256:
        raise HarnessError(f"{record_path} answers parity prompts sha256 {sha[:12]}, not the prompt set here "
                           f"(sha256 {prompts_sha256[:12]})")
    reqs, skipped = reference_requests(record, prompts)
    if not reqs:
        raise HarnessError(f"{record_path}: no divergence to check"
                           + (f" ({len(skipped)} skipped: {skipped[0]['why']})" if skipped else
                              " (every answer matches)"))
    return raw, record, reqs, skipped


REFERENCE_INFO_KEYS = ("transformers", "torch", "device", "dtype", "control_dtype", "architecture", "load_s", "total_s",
                       "machine")


def _forwards(requests: list[dict[str, Any]], model_dir: Path, *, python: str, pythonpath: list[str],
              device: str | None, dtype: str, control: str | None, top: int, timeout_s: float,
              what: str) -> dict[str, Any]:
    """Run ``harness.reference_logprobs`` on ``requests`` in ``python`` (one model load) and return its result, with
    the machine it ran on (GPU name, driver, CUDA) under ``machine``."""
    from harness.envs.script import run_marked
    from harness.machine import machine_info

    if not (model_dir / "config.json").is_file():
        raise HarnessError(f"--model-path {model_dir}: no config.json there")
    with tempfile.TemporaryDirectory(prefix="harness-reference-") as tmp:
        rq = Path(tmp) / "requests.json"
        rq.write_text(json.dumps(requests))
        cmd = [python, "-m", "harness.reference_logprobs", "--model-dir", str(model_dir), "--requests", str(rq),
               "--dtype", dtype, "--top", str(top)] + (["--device", device] if device else []) \
            + (["--control-dtype", control] if control else [])
        out = run_marked(cmd, env=harness_module_env(pythonpath), mark=MARK, who=python, what=what,
                         timeout=timeout_s, tail_lines=15)
    return dict(out, machine=machine_info().model_dump(mode="json"))


def run_references(record_paths: list[Path], model_dir: Path, *, python: str, pythonpath: list[str],
                   prompts: PromptSet, prompts_sha256: str, device: str | None = None, dtype: str = "float32",
                   top: int = 5, tie_nats: float = TIE_NATS, timeout_s: float = 3600,
                   control: bool = True) -> list[dict[str, Any]]:
    """One reference record per parity record (see the module docstring); the model is loaded once for all."""
    from harness.synth import read_marker, weights_init_summary

    loaded = [_load_parity(p, prompts, prompts_sha256) for p in record_paths]
    started = dt.datetime.now(dt.timezone.utc)
    requests = [dict(q, key=f"{n}:{q['key']}") for n, (_, _, reqs, _) in enumerate(loaded) for q in reqs]
    out = _forwards(requests, model_dir, python=python, pythonpath=pythonpath, device=device, dtype=dtype,
                    control=None if control else "none", top=top, timeout_s=timeout_s,
                    what="the reference forward (transformers)")
    by_key = {r["key"]: r for r in out.get("results") or []}
    marker = read_marker(model_dir) or {}
    finished = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    records = []
    for n, (path, (raw, record, reqs, skipped)) in enumerate(zip(record_paths, loaded)):
        rows = {r.get("id"): r for r in record.get("per_prompt") or []}
        verdicts = [_verdict(q, by_key.get(f"{n}:{q['key']}", {}), rows.get(q["key"], {}), tie_nats) for q in reqs]
        records.append({
            "kind": "parity-reference",
            "schema_version": REFERENCE_SCHEMA_VERSION,
            "harness_version": __version__,
            "model": record.get("model"),
            "engines": [(record.get(s) or {}).get("engine") for s in ("a", "b")],
            "parity_record": _repo_relative(path),
            "parity_record_sha256": hashlib.sha256(raw).hexdigest(),
            "run_id": record.get("run_id"),
            "model_dir": str(model_dir),
            "weights": marker.get("weights") or ("real" if not marker else "dummy"),
            "weights_init": weights_init_summary(model_dir),
            "reference": {"implementation": "transformers", "python": python, "records_in_one_load": len(loaded),
                          **{k: out.get(k) for k in REFERENCE_INFO_KEYS}},
            "tie_nats": tie_nats,
            "summary": summarize(verdicts),
            "divergences": verdicts,
            "skipped": skipped,
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": finished,
        })
    return records


# --------------------------------------------------------------------------------------------- rounding floor
def floor_requests(prompts: PromptSet) -> list[dict[str, Any]]:
    """One request per parity prompt: the first answer token, no candidates (the forwards' own choices only)."""
    return [{"key": p.id, "messages": p.chat_messages(), "prefix": [], "candidates": []} for p in prompts.prompts]


def summarize_floor(results: list[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in results if r.get("control") and r.get("top")]
    gaps = [r["control"]["top_logprob"] - r["control"]["top_ref_logprob"] for r in done]
    top2 = [r["top"][0][1] - r["top"][1][1] for r in done if len(r["top"]) > 1]
    return {"prompts": len(results), "checked": len(done),
            "control_top_is_ref_top": sum(r["control"]["top_ref_rank"] == 0 for r in done),
            "median_control_ref_rank": statistics.median(r["control"]["top_ref_rank"] for r in done) if done else None,
            "median_abs_control_gap": _median_abs(gaps),
            "median_ref_top2_gap": round(statistics.median(top2), 6) if top2 else None}


def floor_text(s: dict[str, Any] | None, control: str = "bfloat16") -> str:
    if not s or not s.get("checked"):
        return "no prompt checked"
    return (f"{control} and float32 pick the same first token on {s['control_top_is_ref_top']}/{s['checked']} "
            f"prompts; float32 ranks the {control} choice {s['median_control_ref_rank']:g} (median), median |gap| "
            f"{s['median_abs_control_gap']} nats; float32's own top-2 gap {s['median_ref_top2_gap']} nats (median)")


def run_floor(model_dir: Path, *, python: str, pythonpath: list[str], prompts: PromptSet, prompts_sha256: str,
              model: str | None = None, device: str | None = None, timeout_s: float = 3600) -> dict[str, Any]:
    """The checkpoint's rounding floor on the parity prompts, no engine involved: transformers' float32 and bfloat16
    forwards of each prompt (``harness.reference_logprobs`` with its bf16 control), compared at the first answer
    token. Engines compute in bf16, so two engines with different kernels can agree with each other no better than
    this; on random-init weights the floor is high (see the module docstring)."""
    from harness.synth import config_sha256, read_marker, weights_init_summary

    started = dt.datetime.now(dt.timezone.utc)
    out = _forwards(floor_requests(prompts), model_dir, python=python, pythonpath=pythonpath, device=device,
                    dtype="float32", control="bfloat16", top=2, timeout_s=timeout_s,
                    what="the float32 and bfloat16 forwards (transformers)")
    marker = read_marker(model_dir) or {}
    cfg = json.loads((model_dir / "config.json").read_text())
    text = cfg.get("text_config") or cfg
    results = out.get("results") or []
    return {
        "kind": "parity-floor",
        "schema_version": REFERENCE_SCHEMA_VERSION,
        "harness_version": __version__,
        "model": model or marker.get("model"),
        "model_dir": str(model_dir),
        "config": {"sha256": config_sha256(model_dir), **{k: text.get(k) for k in (
            "num_hidden_layers", "hidden_size", "vocab_size", "num_kv_shared_layers", "enable_moe_block")}},
        "weights": marker.get("weights") or ("real" if not marker else "dummy"),
        "weights_init": weights_init_summary(model_dir),
        "prompts": {"sha256": prompts_sha256, "n": len(prompts.prompts)},
        "reference": {"implementation": "transformers", "python": python,
                      **{k: out.get(k) for k in REFERENCE_INFO_KEYS}},
        "summary": summarize_floor(results),
        "per_prompt": [{"id": r["key"], "prompt_tokens": r.get("prompt_tokens"), "ref_top": r.get("top"),
                        "control": r.get("control")} for r in results],
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
