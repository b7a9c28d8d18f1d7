"""The CI gate: is the candidate's MMLU accuracy non-inferior to the reference's, question by question?

Inputs are two ``harness mmlu`` output directories (or their ``summary.json``).  The runs are paired by the
index in the sample; they must come from the same source rows (``rows_sha256``) and ask the same questions
(``question_sha256`` per index), and every question must have a record.  Repeat 0 of each run is compared; when
the reference has a repeat 1 the reference-vs-itself comparison is reported as the run-to-run floor.

Rules (``--rule``):
``non-inferiority`` (default)
    fail when the one-sided (1 - alpha) upper bound of (reference - candidate), from a paired bootstrap, is
    greater than the margin.  The burden of proof is on the candidate: it passes only when the data show its
    loss is at most the margin.
``regression``
    fail only when the one-sided (1 - alpha) *lower* bound of (reference - candidate) is greater than the
    margin, i.e. the candidate is worse by more than the margin with confidence.

Exit codes: 0 pass, 1 regression, 2 unusable input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.errors import HarnessError
from harness.evals.mmlu import MMLU_SCHEMA_VERSION, RECORDS_FILE, SUMMARY_FILE
from harness.evals.stats import Paired, mcnemar_exact, mcnemar_exact_one_sided, paired_bootstrap, paired_counts

Rule = Literal["non-inferiority", "regression"]
RULES = ("non-inferiority", "regression")
EXIT_PASS, EXIT_REGRESSION, EXIT_UNUSABLE = 0, 1, 2


class GateInputError(HarnessError):
    """The two runs cannot be compared (exit 2)."""

    exit_code = EXIT_UNUSABLE


@dataclass
class MMLURun:
    path: Path
    summary: dict[str, Any]
    by_repeat: dict[int, list[dict[str, Any]]]  # repeat -> records sorted by index

    @property
    def label(self) -> str:
        s = self.summary
        return f"{s.get('engine', '?')} ({s.get('model', '?')})"


_REQUIRED = ("index", "source_index", "question_sha256", "gold", "extracted", "correct", "repeat")


def load_run(path: Path | str, role: str) -> MMLURun:
    """Read and validate one ``harness mmlu`` output (directory or summary.json)."""
    p = Path(path)
    summary_path = p / SUMMARY_FILE if p.is_dir() else p
    if not summary_path.exists():
        raise GateInputError(f"{role} {p}: no {SUMMARY_FILE} (expected a `harness mmlu` output directory)")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GateInputError(f"{role} {summary_path}: unreadable summary: {exc}") from None
    if not isinstance(summary, dict) or summary.get("kind") != "mmlu":
        raise GateInputError(f"{role} {summary_path}: not an MMLU summary (kind={summary.get('kind')!r})"
                             if isinstance(summary, dict) else f"{role} {summary_path}: not a JSON object")
    if summary.get("schema_version") != MMLU_SCHEMA_VERSION:
        raise GateInputError(f"{role} {summary_path}: schema_version {summary.get('schema_version')!r}, "
                             f"this harness reads {MMLU_SCHEMA_VERSION}")
    records_path = summary_path.parent / summary.get("records_file", RECORDS_FILE)
    if not records_path.exists():
        raise GateInputError(f"{role} {records_path}: records file missing")
    by_repeat: dict[int, list[dict[str, Any]]] = {}
    try:
        lines = records_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise GateInputError(f"{role} {records_path}: unreadable: {exc}") from None
    for ln, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise GateInputError(f"{role} {records_path}:{ln}: not JSON: {exc}") from None
        missing = [k for k in _REQUIRED if k not in rec]
        if missing:
            raise GateInputError(f"{role} {records_path}:{ln}: record lacks {missing}")
        if bool(rec["correct"]) != (rec["extracted"] is not None and rec["extracted"] == rec["gold"]):
            raise GateInputError(f"{role} {records_path}:{ln}: 'correct' disagrees with extracted/gold")
        by_repeat.setdefault(int(rec["repeat"]), []).append(rec)
    n = summary.get("num_questions")
    if not isinstance(n, int) or n < 1:
        raise GateInputError(f"{role} {summary_path}: num_questions missing or invalid")
    if 0 not in by_repeat:
        raise GateInputError(f"{role} {records_path}: no records for repeat 0")
    for r, recs in by_repeat.items():
        recs.sort(key=lambda x: x["index"])
        idx = [x["index"] for x in recs]
        if idx != list(range(n)):
            have = set(idx)
            missing_idx = [i for i in range(n) if i not in have]
            dup = len(idx) - len(have)
            raise GateInputError(
                f"{role} {records_path}: repeat {r} has {len(have)} of {n} questions"
                + (f" (missing indices {missing_idx[:10]}{'...' if len(missing_idx) > 10 else ''})"
                   if missing_idx else "") + (f" ({dup} duplicate records)" if dup else ""))
    return MMLURun(summary_path.parent, summary, by_repeat)


def _check_pairable(ref: MMLURun, cand: MMLURun) -> list[str]:
    notes = []
    rs, cs = ref.summary.get("source") or {}, cand.summary.get("source") or {}
    if rs.get("rows_sha256") != cs.get("rows_sha256") or not rs.get("rows_sha256"):
        raise GateInputError(
            "different MMLU sources: reference used "
            f"{rs.get('kind')}:{rs.get('location')} (rows sha256 {str(rs.get('rows_sha256'))[:12]}), candidate "
            f"used {cs.get('kind')}:{cs.get('location')} (rows sha256 {str(cs.get('rows_sha256'))[:12]}); "
            "rerun both with the same --source")
    if rs.get("sha256") != cs.get("sha256"):
        notes.append(f"the sources are different files ({rs.get('kind')} vs {cs.get('kind')}) with identical rows")
    nr, nc = ref.summary["num_questions"], cand.summary["num_questions"]
    if nr != nc:
        raise GateInputError(f"different question sets: reference asked {nr} questions, candidate {nc}")
    a, b = ref.by_repeat[0], cand.by_repeat[0]
    for x, y in zip(a, b):
        if (x["source_index"], x["question_sha256"]) != (y["source_index"], y["question_sha256"]):
            raise GateInputError(
                f"different question sets: question {x['index']} is source row {x['source_index']} in the "
                f"reference and {y['source_index']} in the candidate (or its prompt differs)")
    for run, role in ((ref, "reference"), (cand, "candidate")):
        for r, recs in run.by_repeat.items():
            for x, y in zip(a, recs):
                if x["question_sha256"] != y["question_sha256"]:
                    raise GateInputError(f"{role} repeat {r}: question {y['index']} differs from repeat 0")
    rsamp, csamp = ref.summary.get("sampling") or {}, cand.summary.get("sampling") or {}
    if rsamp != csamp:
        diff = sorted(k for k in set(rsamp) | set(csamp) if rsamp.get(k) != csamp.get(k))
        notes.append(f"sampling parameters differ: {', '.join(diff)}")
    return notes


def _pp(x: float) -> str:
    return f"{x * 100:+.1f} pp"


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def run_gate(
    reference: Path | str,
    candidate: Path | str,
    *,
    margin_pp: float = 1.0,
    alpha: float = 0.05,
    rule: Rule = "non-inferiority",
    resamples: int = 10_000,
    seed: int = 0,
    max_error_rate: float = 0.05,
    allow_dummy: bool = False,
) -> dict[str, Any]:
    """Compare two MMLU runs; returns the gate result (``verdict``, ``exit_code``, numbers, explanation).

    A run made on dummy (random) weights is unusable input (a CI gate must not pass on it) unless
    ``allow_dummy``, which is for checking the pipeline itself; the result then says so."""
    if rule not in RULES:
        raise GateInputError(f"--rule must be one of {', '.join(RULES)}, got {rule!r}")
    if not 0 < alpha < 0.5:
        raise GateInputError(f"--alpha must be in (0, 0.5), got {alpha}")
    if margin_pp < 0:
        raise GateInputError(f"--margin must be >= 0 percentage points, got {margin_pp}")
    ref, cand = load_run(reference, "reference"), load_run(candidate, "candidate")
    dummy = [role for run, role in ((ref, "reference"), (cand, "candidate"))
             if (run.summary.get("meta") or {}).get("dummy_weights")]
    if dummy and not allow_dummy:
        raise GateInputError(
            f"the {' and '.join(dummy)} ran on dummy (random) weights: "
            f"{'its score is' if len(dummy) == 1 else 'their scores are'} noise, not the model's; "
            "gate real-weight runs (pass --allow-dummy only to check the pipeline)")
    notes = _check_pairable(ref, cand)
    if dummy:
        notes.append(f"DUMMY WEIGHTS ({', '.join(dummy)}): this verdict checks the pipeline, not model quality")
    n = ref.summary["num_questions"]
    for run, role in ((ref, "reference"), (cand, "candidate")):
        errs = sum(1 for x in run.by_repeat[0] if x.get("error"))
        if errs > max_error_rate * n:
            raise GateInputError(
                f"{role} {run.path}: {errs} of {n} requests failed (more than --max-error-rate "
                f"{max_error_rate:g}); the score measures the server's failures, not the model — rerun it")
        if errs:
            notes.append(f"{errs} {role} request(s) failed and were scored wrong (as SGLang does)")

    rc = [bool(x["correct"]) for x in ref.by_repeat[0]]
    cc = [bool(x["correct"]) for x in cand.by_repeat[0]]
    pc = paired_counts(rc, cc)
    boot = paired_bootstrap(rc, cc, resamples=resamples, seed=seed, alpha=alpha)
    margin = margin_pp / 100.0
    if rule == "non-inferiority":
        failed = boot.drop_upper > margin
    else:
        failed = boot.drop_lower > margin

    floor = None
    if 1 in ref.by_repeat:
        r1 = [bool(x["correct"]) for x in ref.by_repeat[1]]
        fc = paired_counts(rc, r1)
        fb = paired_bootstrap(rc, r1, resamples=resamples, seed=seed, alpha=alpha)
        floor = {
            "b": fc.b, "c": fc.c, "discordant": fc.b + fc.c, "delta": fc.delta,
            "answer_changed": sum(1 for x, y in zip(ref.by_repeat[0], ref.by_repeat[1])
                                  if x["extracted"] != y["extracted"]),
            "drop_upper": fb.drop_upper,
            "self_gate_passes": fb.drop_upper <= margin if rule == "non-inferiority" else fb.drop_lower <= margin,
        }

    result: dict[str, Any] = {
        "verdict": "fail" if failed else "pass",
        "exit_code": EXIT_REGRESSION if failed else EXIT_PASS,
        "rule": rule,
        "margin_pp": margin_pp,
        "alpha": alpha,
        "n": n,
        "reference": {"path": str(ref.path), "engine": ref.summary.get("engine"), "model": ref.summary.get("model"),
                      "score": pc.ref_score, "correct": pc.ref_correct, "repeats": sorted(ref.by_repeat)},
        "candidate": {"path": str(cand.path), "engine": cand.summary.get("engine"),
                      "model": cand.summary.get("model"), "score": pc.cand_score, "correct": pc.cand_correct,
                      "repeats": sorted(cand.by_repeat)},
        "source": {k: (ref.summary.get("source") or {}).get(k) for k in ("kind", "location", "sha256",
                                                                        "rows_sha256")},
        "delta": pc.delta,
        "delta_pp": pc.delta * 100,
        "paired": pc.as_dict(),
        "mcnemar_p_two_sided": mcnemar_exact(pc.b, pc.c),
        "mcnemar_p_candidate_worse": mcnemar_exact_one_sided(pc.b, pc.c),
        "bootstrap": {"resamples": boot.resamples, "seed": boot.seed, "ci95_delta": [boot.ci_low, boot.ci_high],
                      "drop_upper": boot.drop_upper, "drop_lower": boot.drop_lower,
                      "one_sided_level": 1 - alpha},
        "run_to_run_floor": floor,
        "notes": notes,
        "dummy_weights": bool(dummy),
    }
    result["explanation"] = explain(result, ref, cand, pc)
    return result


def explain(res: dict[str, Any], ref: MMLURun, cand: MMLURun, pc: Paired) -> str:
    """One paragraph a reviewer can read."""
    b, c = pc.b, pc.c
    boot = res["bootstrap"]
    level = f"{(1 - res['alpha']) * 100:g}%"
    margin = res["margin_pp"]
    src = res["source"]
    p = res["mcnemar_p_two_sided"]
    parts = [
        f"{'PASS' if res['verdict'] == 'pass' else 'FAIL'}.",
        f"On the same {pc.n} MMLU questions (source {src['kind']}, rows sha256 {str(src['rows_sha256'])[:12]}),",
        f"the candidate {cand.label} scored {_pct(pc.cand_score)} and the reference {ref.label}",
        f"{_pct(pc.ref_score)}, a difference of {_pp(pc.delta)} (paired bootstrap 95% CI",
        f"{_pp(boot['ci95_delta'][0])} to {_pp(boot['ci95_delta'][1])}).",
        f"The runs disagree on {b + c} questions: the reference alone was right on {b} (b) and the candidate"
        f" alone on {c} (c); the exact McNemar test gives p = {p:.3g}"
        + (", so the difference is not distinguishable from noise." if p >= res["alpha"]
           else f", a significant difference in favour of the {'reference' if b > c else 'candidate'}."),
    ]
    up, lo = boot["drop_upper"] * 100, boot["drop_lower"] * 100
    if res["rule"] == "non-inferiority":
        parts.append(
            f"Non-inferiority with a margin of {margin:g} pp at alpha = {res['alpha']:g}: the one-sided {level}"
            f" upper bound of the reference's lead is {up:.2f} pp, which is "
            + ("within the margin, so the candidate passes." if res["verdict"] == "pass" else
               "beyond the margin, so the data do not show that the candidate loses at most "
               f"{margin:g} pp; it fails."))
    else:
        parts.append(
            f"Regression rule with a margin of {margin:g} pp at alpha = {res['alpha']:g}: the one-sided {level}"
            f" lower bound of the reference's lead is {lo:.2f} pp, which is "
            + ("not beyond the margin, so no regression is shown; it passes." if res["verdict"] == "pass" else
               f"beyond the margin: the candidate is worse by more than {margin:g} pp with confidence; it fails."))
    floor = res.get("run_to_run_floor")
    if floor:
        parts.append(
            f"Run-to-run floor: the reference against its own repeat disagreed on {floor['discordant']} questions"
            f" ({floor['answer_changed']} changed answers), delta {_pp(floor['delta'])}, upper bound"
            f" {floor['drop_upper'] * 100:.2f} pp"
            + ("." if floor["self_gate_passes"] else
               f"; the reference would fail this gate against itself, so a {margin:g} pp margin is below the "
               "nondeterminism floor at this sample size (widen --margin or ask more questions)."))
    if res["notes"]:
        parts.append("Notes: " + "; ".join(res["notes"]) + ".")
    return " ".join(parts)
