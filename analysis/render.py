"""Render COMPARISON.md (and its plots) from run records, deterministically.

``render_report`` is pure: it reads records and returns the markdown text and the PNG bytes keyed by file name;
``write_report`` writes them. Plots go to ``<out stem>_plots/`` beside the markdown (``COMPARISON_plots/`` for
``COMPARISON.md``); PNGs in that directory that the render did not produce are removed, so the directory always
matches the markdown. Links (records, plots) are relative to the markdown's directory.

Determinism: records are sorted (runs by id, cells by scenario / MTP / engine / repeat), numbers are formatted
with fixed precision, plots are drawn with fixed styles and written without metadata timestamps, and the only
dates in the output are those the records carry.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness import __version__
from harness.errors import HarnessError
from harness.runs import annotations

from analysis import tables as T
from analysis.evals import EvalRecord
from analysis.load import (
    Group,
    Run,
    cells_frame,
    group_runs,
    load_eval_files,
    load_runs,
    patched_stack,
    per_request_samples,
    resolve_inputs,
)
from analysis.roofline import (
    DATASHEET_BANDWIDTH_TBPS,
    RooflineUnavailable,
    active_params,
    bound_ms_per_token,
    datasheet_bandwidth,
    text_config_of,
)

ModelLoader = Callable[[str], "dict[str, Any] | None"]


@dataclass
class Report:
    out: Path
    markdown: str
    plots: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG bytes

    @property
    def plots_dir(self) -> Path:
        return plots_dir_for(self.out)


def plots_dir_for(out: Path) -> Path:
    return out.parent / f"{out.stem}_plots"


# --------------------------------------------------------------------------------------------- model configs


def default_model_loader() -> Callable[[str], tuple[dict[str, Any] | None, str]]:
    """A loader of (hf_config, where it came from) by model definition name; (None, reason) when unavailable.

    Uses ``harness.definitions`` (read once per render); falls back to reading
    ``scenarios/models/<name>.yaml`` directly when that layer is missing or refuses the definitions.
    """
    state: dict[str, Any] = {}

    def definitions() -> Any:
        if "defs" not in state:
            try:
                from harness.definitions import load_definitions

                state["defs"] = load_definitions()
            except ImportError:
                state["defs"], state["err"] = None, "harness.definitions is not importable"
            except HarnessError as exc:
                state["defs"], state["err"] = None, str(exc)
            except Exception as exc:  # noqa: BLE001 - a definitions layer in flux must not break the report
                state["defs"], state["err"] = None, f"{type(exc).__name__}: {exc}"
        return state["defs"]

    def load(name: str) -> tuple[dict[str, Any] | None, str]:
        defs = definitions()
        err = state.get("err", "")
        if defs is not None:
            try:
                return defs.model(name).hf_config, f"scenarios/models/{name}.yaml"
            except HarnessError as exc:
                err = str(exc)
        try:
            import yaml

            from harness.paths import definitions_dir

            path = definitions_dir() / "models" / f"{name}.yaml"
            if path.is_file():
                data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
                cfg = data.get("hf_config") if isinstance(data, dict) else None
                if isinstance(cfg, dict):
                    return cfg, f"scenarios/models/{name}.yaml (read directly)"
        except Exception:  # noqa: BLE001 - fall through to the reason
            pass
        return None, f"no model definition for {name!r}" + (f" ({err})" if err else "")

    return load


def _expand_layer_types(tc: dict[str, Any]) -> dict[str, Any]:
    lt = tc.get("layer_types")
    if isinstance(lt, dict) and isinstance(lt.get("pattern"), list) and isinstance(lt.get("repeat"), int):
        tc = dict(tc)
        tc["layer_types"] = list(lt["pattern"]) * lt["repeat"]
    return tc


# --------------------------------------------------------------------------------------------- helpers


class _Linker:
    def __init__(self, out_dir: Path):
        self.base = os.path.abspath(out_dir)

    def __call__(self, path: Any) -> str:
        rel = os.path.relpath(os.path.abspath(str(path)), self.base)
        return rel.replace(os.sep, "/")


def _distinct(values: list[Any]) -> str:
    vals = sorted({str(v) for v in values if v not in (None, "")})
    return ", ".join(vals) if vals else "not recorded"


def _date(ts: str | None) -> str | None:
    return ts[:10] if ts else None


def _engine_versions(g: Group) -> str:
    parts = []
    for e in T.engine_order(g.engine_names()):
        sig = g.signature.get(f"engine:{e}")
        if not sig or sig == ("unrecorded",):
            parts.append(f"{e} (version not recorded)")
            continue
        family, version, patch, _torch = sig
        parts.append(f"{e} {version}" + (f" + stack {patch[:12]}" if patch and patch != "-" else ""))
    return " · ".join(parts)


def _env_table(g: Group, link: T.Link) -> pd.DataFrame:
    ms = [r.manifest for r in g.runs]
    mach = [m.machine for m in ms]
    dates = sorted({d for m in ms for d in (_date(m.created_at), _date(m.finished_at)) if d})
    rows = [
        ["Model", g.model],
        ["Weights", {"dummy": "**DUMMY (random) weights**",
                     "random-init": "**RANDOM-INIT weights** (seeded, one checkpoint for every engine)"}.get(
                         g.weights, g.weights)],
        ["GPU", f"{g.gpu_count}× {g.gpu_name}" + (
            f" ({_distinct([x.gpu_memory_mib for x in mach])} MiB)" if any(x.gpu_memory_mib for x in mach) else "")],
        ["Tensor parallel", str(g.tp)],
        ["Server arguments added", _distinct([" ".join((m.extra.get("options") or {}).get("server_args") or []) or "none"
                                              for m in ms])],
        ["Notes given with --note", "; ".join(dict.fromkeys(n[6:] for m in ms for n in m.notes if n.startswith("note: "))) or "none"],
        *([["Added after the run (`harness runs annotate`)", "; ".join(
            f"{m.run_id} ({when}): {text}" for m in ms for when, text in annotations(m))]]
          if any(annotations(m) for m in ms) else []),
        *([["Host GPUs as the measured loads started (nvidia-smi)", host]] if (host := _host_gpus_text(g)) else []),
        ["Driver", _distinct([x.driver for x in mach])],
        ["CUDA", _distinct([x.cuda for x in mach])],
        ["torch (host)", _distinct([x.torch for x in mach])],
        ["Python (host)", _distinct([x.python for x in mach])],
        ["Patch-stack hash", _distinct([m.patch_stack_hash for m in ms])],
        ["Harness", _distinct([f"{m.harness_version}" + (f" @ {m.harness_git_sha[:12]}" if m.harness_git_sha else "")
                               + (" (dirty)" if m.harness_git_dirty else "") for m in ms])],
        ["Dates (from the records)", " … ".join([dates[0], dates[-1]]) if len(dates) > 1 else (dates[0] if dates else "not recorded")],
        ["Runs", ", ".join(f"{T.md_link(m.run_id, link(r.path / 'manifest.json'))} ({m.status})"
                           for r, m in zip(g.runs, ms))],
    ]
    return pd.DataFrame(rows, columns=["", "value"])


BUSY_MIB = 1024  # another GPU with this much memory in use carries a job


def _host_gpus_text(g: Group) -> str | None:
    """What the host's other GPUs carried as this group's measured loads started (each cell's nvidia-smi snapshot),
    or None when no cell recorded one (runs before the snapshot existed, or no nvidia-smi)."""
    snaps = [c.host_gpus for r in g.runs for c, _ in r.cells if c.host_gpus]
    if not snaps:
        return None
    n_host = max(len(s) for s in snaps)
    if n_host == 1:
        return f"1 GPU on the host, so no other job on a GPU beside the run ({len(snaps)} measured loads)"
    text = f"{n_host} GPUs on the host"
    if any(h.this_run is None for s in snaps for h in s):
        return text + ("; which of them the runs had is not recorded (CUDA_VISIBLE_DEVICES unset or not indices), "
                       "so their use is not told apart from the others'")
    busy = [[h for h in s if not h.this_run and (h.memory_used_mib or 0) >= BUSY_MIB] for s in snaps]
    n_busy = sum(1 for b in busy if b)
    text += f"; another GPU was in use at the start of {n_busy} of {len(snaps)} measured loads"
    if n_busy:
        mem = max(h.memory_used_mib or 0 for b in busy for h in b)
        util = max((h.utilization_pct for b in busy for h in b if h.utilization_pct is not None), default=None)
        text += (f" (up to {max(len(b) for b in busy)} at once; on one, at most {mem / 1024:.1f} GiB in use"
                 + (f" and {util}% busy" if util is not None else "") + "): other jobs ran beside these loads")
    return text


def _engines_table(g: Group) -> pd.DataFrame:
    rows = []
    for e in T.engine_order(g.engine_names()):
        infos = [r.manifest.engines[e] for r in g.runs if e in r.manifest.engines]
        sig = g.signature.get(f"engine:{e}")
        if not infos:
            rows.append([e, "?", "not recorded", "—", "—", "—"])
            continue
        pkgs = sorted({f"{k} {v}" for i in infos for k, v in i.packages.items() if k != "torch"})
        launch = sorted({launch_arguments(c.server_command) for r in g.runs for c, _ in r.cells
                         if c.engine == e and c.server_command})
        rows.append([
            e, infos[0].family, sig[1] if sig else "?",
            sig[2] if sig and sig[2] != "-" else "—",
            sig[3] if sig else "?",
            " · ".join(f"`{a}`" if a else "none" for a in launch) if launch else "not recorded",
            ", ".join(pkgs) if pkgs else "—",
        ])
    return pd.DataFrame(rows, columns=["Engine", "Family", "Version", "Patch stack", "torch", "Launch arguments",
                                       "Other packages"])


_TP_FLAGS = ("--tp-size", "--tensor-parallel-size")
_ENV_TOKEN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def launch_arguments(server_command: list[str]) -> str:
    """What a server command adds after the launch line every profile shares (model, host, port, served name, TP
    size): the profile's own arguments (e.g. a variant's switch, dummy-weight loading, text-only limits) and its
    environment variables other than PYTHONPATH, as recorded in the cell."""
    n_env = 0
    while n_env < len(server_command) and _ENV_TOKEN.match(server_command[n_env]):
        n_env += 1
    env = [t for t in server_command[:n_env] if not t.startswith("PYTHONPATH=")]
    argv = server_command[n_env:]
    rest: list[str] = []
    for i, t in enumerate(argv):
        if t in _TP_FLAGS:
            rest = argv[i + 2:]
            break
    return " ".join(env + rest)


def _anchor(g: Group) -> str:
    return f"group-{g.index}"


# --------------------------------------------------------------------------------------------- sections


METHODS = """\
## How to read this report

- **Tables never mix environments.** Each numbered section is one *table group*: the same model, weights
  (real, random-init or dummy), GPU name and count, driver and CUDA, and for every engine the same version, patch-stack hash
  and torch, and the same scenario definitions. Runs that differ in any of these get their own section. A run that
  fits several sections (one that measured only the unpatched engine, say) joins the one with the run nearest in
  time; an engine whose cells all failed before its version was recorded does not count as a difference.
- **Cells.** A cell is one (engine, scenario, MTP on/off, repeat) measurement. The `cells` row of each block says
  how many repeats are `ok`; **failed** and skipped cells link to their record (`r<repeat>`); `missing` means
  planned in a manifest (or present for another engine) but without a record. Failed cells are never averaged.
- **Repeats.** With n ≥ 2 repeats a value is `mean ± half-width (n=…)`, the half-width of the two-sided 95%
  Student-t interval of the mean over repeats. With one repeat it is the single measurement. Where an engine's
  cells of one scenario and MTP mode come from several runs of a group, the headline pools them as one sample,
  and a **Pooled across runs** table after it gives each run's own mean.
- **Deltas.** `Δ sglang-patched vs X` is `(mean_patched − mean_X) / mean_X`, for X the reference engines (vLLM,
  unpatched SGLang) and then any other profile in the group, such as a same-stack control with one patch
  switched off (that column is the patch's A/B). The bracket is **Welch's 95%
  t-interval of the difference of means** (unequal variances, Welch–Satterthwaite degrees of freedom) divided
  by the same reference mean. ✱ marks a delta whose interval excludes zero (Welch's two-sided test at the 5%
  level). With one repeat on either side there is no interval and no mark. ↑ / ↓ after a metric say whether
  higher or lower is better; the sign of Δ is not flipped for latencies.
- **Metrics** are those of `vllm bench serve` over the measured phase (warmup excluded): output and total token
  throughput, median TTFT / TPOT / ITL and p99 end-to-end latency per request, and the speculative-decoding
  accept length (tokens per verify step including the bonus token; MTP-on rows only).
- **Decode roofline.** A batch-1 lower bound on the time per output token: the bytes of the parameters one
  decode step reads (bf16; for MoE only the top-k experts; the lm_head read counted; norms, KV cache, vision
  tower and MTP draft not counted) divided by the GPU's **datasheet** HBM bandwidth (one GPU). *Achieved* is
  bound / measured median TPOT. Concurrent decode amortises one weight read over every sequence in the batch, so
  in the concurrent scenarios the measured TPOT can be below this bound and the achieved fraction above 100%;
  it is a reference line, not a ceiling. With MTP, one verify step yields accept-length tokens per weight read,
  which the `bound / accept length` column accounts for.
"""


def _headline_section(g: Group, cells: pd.DataFrame, link: T.Link) -> list[str]:
    engines = T.engine_order(cells["engine"].unique().tolist())
    out = ["### Headline", "", f"Engines: {_engine_versions(g)}.", ""]
    if cells.empty:
        return out + ["No benchmark cells in this group.", ""]
    out.append(T.md_table(T.headline_table(cells, engines, link)))
    out.append(f"{T.SIG_MARK} = the 95% Welch interval of the delta excludes zero. "
               "↑ higher is better, ↓ lower is better.")
    out.append("")
    out += _pooled_runs_note(g, cells, engines, link)
    out += _mtp_on_random_weights_note(g, cells)
    ww = cells["window_warnings"].map(lambda v: v if isinstance(v, str) else "") if "window_warnings" in cells else None
    warned = cells[(cells["status"] == "ok") & (ww != "")] if ww is not None else cells.iloc[0:0]
    if not warned.empty:
        out += ["**Measurement warnings.** The server logged these inside the measured window (the cell's numbers may "
                "include the cost):", ""]
        for r in warned.sort_values(["scenario", "mtp", "engine", "repeat", "run_id"], kind="mergesort").itertuples():
            for w in r.window_warnings.split(" | "):
                out.append(f"- {r.engine} / {r.scenario} / MTP {'on' if r.mtp else 'off'} / r{r.repeat} "
                           f"([record]({link(r.record)})): `{T.one_line(w)}`")
        out.append("")
    return out


def _pooled_runs_note(g: Group, cells: pd.DataFrame, engines: list[str], link: T.Link) -> list[str]:
    """Where the headline pools one engine's cells (same scenario and MTP mode) from several runs of the group
    (runs of other leases, hosts or days can share a group): say so, and give each run's own numbers, so that
    drift between the runs is visible rather than only widening the pooled interval."""
    manifests = {r.run_id: link(r.path / "manifest.json") for r in g.runs}
    table = T.pooled_runs_table(cells, engines, lambda rid: T.md_link(rid, manifests[rid]) if rid in manifests else rid)
    if table.empty:
        return []
    return ["**Pooled across runs.** For the engines, scenarios and MTP modes below, the headline pools ok cells "
            "from more than one run of this group into one sample: its means, intervals and Welch deltas treat them "
            "as repeats of one measurement, so drift between the runs (another lease, host or day) counts as noise "
            "and is not separated out. Each run on its own:", "", T.md_table(table)]


def _mtp_on_random_weights_note(g: Group, cells: pd.DataFrame) -> list[str]:
    """MTP-on rows without real weights: the throughput follows whatever acceptance the random weights give each
    engine, so an MTP-on delta is not a comparison of the engines' speculative decoding. Name each engine's
    measured accept length so the reader sees why."""
    if g.weights == "real" or "mtp" not in cells:
        return []
    on = cells[(cells["status"] == "ok") & (cells["mtp"].astype(bool))]
    if on.empty:
        return []
    acc = []
    for e in T.engine_order(on["engine"].unique().tolist()):
        vals = on[on["engine"] == e]["accept_length"].dropna()
        acc.append(f"{e} {vals.mean():.2f}" if len(vals) else f"{e} not recorded")
    return [f"**MTP-on rows under {g.weights} weights are not a comparison of speculative decoding.** Target and draft "
            "carry no trained weights, so how many draft tokens each engine accepts is an artefact of its random "
            "weights (a target whose greedy answer is one repeated token accepts every draft of that token; one that "
            "disagrees with its draft accepts none), and MTP-on throughput follows it. Measured accept length "
            f"(tokens per verify step): {', '.join(acc)}. The MTP-on cells show that the MTP path starts and runs and "
            "what it costs at that acceptance, nothing more.", ""]


def _is_moe(cfg: dict | None) -> bool:
    return bool(cfg) and bool(text_config_of(cfg).get("enable_moe_block"))


def _roofline_section(g: Group, cells: pd.DataFrame, loader: Callable[[str], tuple[dict | None, str]]) -> list[str]:
    out = ["### Decode roofline (batch-1 HBM bound)", ""]
    cfg, source = loader(g.model)
    bw = datasheet_bandwidth(g.gpu_name)
    if cfg is None:
        return out + [f"Not computed: {source}.", ""]
    try:
        ap = active_params(_expand_layer_types(dict(text_config_of(cfg))))
    except RooflineUnavailable as exc:
        return out + [f"Not computed: {source}: {exc}.", ""]
    out.append(f"Parameters read per decoded token (from `{source}`, bf16, 2 bytes each):")
    out.append("")
    out.append(T.md_table(T.params_table(ap)))
    if bw is None:
        known = ", ".join(sorted({label for _, label, _ in DATASHEET_BANDWIDTH_TBPS}))
        return out + [f"No datasheet bandwidth for GPU `{g.gpu_name}` (known: {known}); no bound computed.", ""]
    bound = bound_ms_per_token(ap.total_bytes, bw, g.tp)
    where = ("at batch 1 on one GPU." if g.tp == 1 else
             f"at batch 1 with tensor parallel {g.tp}: each GPU streams its 1/{g.tp} shard at the same time "
             "(the all-reduces between them are not counted).")
    split = "" if g.tp == 1 else f" / {g.tp} GPUs"
    out.append(
        f"Datasheet HBM bandwidth of `{g.gpu_name}`: **{bw.tb_per_s:g} TB/s** ({bw.label}, NVIDIA datasheet value, "
        f"not measured). Bound = {ap.total_bytes / 1e9:.3f} GB / {bw.tb_per_s:g} TB/s{split} = **{bound:.3f} ms per token** "
        + where
    )
    out.append("")
    engines = T.engine_order(cells["engine"].unique().tolist()) if not cells.empty else []
    rt = T.roofline_table(cells, engines, ap, bw, g.tp) if not cells.empty else pd.DataFrame()
    if rt.empty:
        out += ["No ok cell with a median TPOT to compare.", ""]
    else:
        out.append(T.md_table(rt))
        out.append("Batch-1 bound: in concurrent scenarios one weight read serves the whole batch, so achieved > 100% "
                   "is expected there and does not mean the bound is wrong.")
        out.append("")
    return out


def _evals_section(records: list[EvalRecord], link: T.Link, dummy: bool, level: str = "###",
                   random_init: bool = False) -> list[str]:
    out: list[str] = []
    mmlu = [r for r in records if r.kind == "mmlu"]
    parity = [r for r in records if r.kind == "parity"]
    reference = [r for r in records if r.kind == "reference"]
    floor = [r for r in records if r.kind == "floor"]
    warn = " — dummy weights: meaningless" if dummy else (" — random-init weights: meaningless" if random_init else "")
    if mmlu:
        out += [f"{level} MMLU{warn}", "", T.md_table(T.mmlu_scores_table(mmlu, link))]
        pairs = T.mmlu_pairs_table(mmlu, link)
        if not pairs.empty:
            out += ["Paired comparison on the same questions (b: only the reference right, c: only the "
                    "candidate right; McNemar is the exact binomial test of b vs c):", "", T.md_table(pairs)]
    if parity:
        pwarn = (" — dummy weights: a numerics check at best, never quality" if dummy else "")
        out += [f"{level} Greedy parity{pwarn}", ""]
        if dummy:
            out += ["With `--load-format dummy` SGLang and vLLM fill every parameter with small uniform values from a "
                    "fixed seed (the same recipe in both; the parameter layouts differ between the two engines, so "
                    "only same-family pairs such as a patch on and off hold the same weights). The logits then come "
                    "out nearly flat, and greedy decoding may return one token forever: the **Signal** column says "
                    "when every answer of both engines is such a repeated token, in which case a full match carries "
                    "no information at all. Where the answers do vary, a match says the two engines compute the same "
                    "thing and a mismatch may be bf16 noise amplified by near-flat logits. Nothing here is about "
                    "answer quality.", ""]
        if random_init:
            out += ["Every engine loaded the same seeded random checkpoint (`harness model init-weights`): answers vary "
                    "from prompt to prompt, so a match says two engines (or a patch on and off) compute the same thing "
                    "and a first divergence shows where their numerics part. Such checkpoints amplify rounding: "
                    "transformers' own bfloat16 and float32 forwards of one usually pick different first tokens "
                    "(`harness parity-floor`; docs/random-init-findings.md), so a mismatch between engines whose "
                    "kernels differ is expected and is not a correctness finding. Nothing here is about answer "
                    "quality.", ""]
        out += [T.md_table(T.parity_table(parity, link))]
    if reference:
        out += [f"{level} Reference check of the first divergences", "",
                "At each prompt where a parity pair's answers part, transformers' own forward of the same checkpoint "
                "(`harness parity-reference`, float32 unless the row says otherwise) scores both engines' tokens after "
                "the context they shared. If it sides with one engine at nearly every divergence, the other computes "
                "something further from it; if its preferences split and |Δ| is small, the divergences are near-ties "
                "that rounding flipped.", "", T.md_table(T.reference_table(reference, link))]
    if floor:
        out += [f"{level} Rounding floor of the checkpoint", "",
                "No engine involved (`harness parity-floor`): transformers' own float32 and bfloat16 forwards of "
                "every parity prompt, compared at the first answer token. Engines compute in bf16, so two engines "
                "with different kernels (or a fused kernel on and off) cannot be expected to agree more often than "
                "bf16 agrees with float32 here: a parity mismatch rate near this floor says nothing about either "
                "engine.", "", T.md_table(T.floor_table(floor, link))]
    return out


def _profile_section(g: Group, link: T.Link, top: int = 5) -> list[str]:
    """Profiled passes (`--profile`): where the GPU time of each engine went, per scenario, next to its numbers."""
    recs = [(p, path) for r in g.runs for p, path in r.profiles]
    if not recs:
        return []
    order = T.engine_order(sorted({p.engine for p, _ in recs}))
    recs.sort(key=lambda pp: (pp[0].scenario, pp[0].mtp, order.index(pp[0].engine), pp[0].run_id, str(pp[1])))
    out = ["### Profiles (torch profiler, rank 0)", "",
           "One profiled pass per server and scenario after its measured cells, with the profiler on (its timings are "
           "not measurements): the scenario's shapes, the prompt count capped at its concurrency and the output at a "
           "few tokens, so prefill weighs more than in the measured load. GPU time is the sum of the kernel and "
           "memory-copy events of the rank-0 trace; families are coarse name matches (harness/profiles.py; records written before 2026-11-28 count SGLang's "
           "Triton decode attention kernel `_fwd_grouped_kernel_stage1` as other, not attention, and records written "
           "by harness trees before 2026-11-28 session 15 (runs up to 20261128T055023Z) count fused norm kernels whose names carry attn, moe or "
           "gemma as attention, moe or gemm: SGLang's `_gemma_qkv_rmsnorm_kernel` among the gemms; "
           "`harness profile steps --kernels` re-reads a trace with the current families). The pass "
           "replays prompts the measured cells sent, so the prefix cache is flushed before it; passes recorded before "
           "that flush existed, or whose flush failed, say so: their prefill may be partly served from the cache. The last "
           "column splits one attention kernel's time by the model's layer types (sliding window, full; "
           "harness/profile_layers.py, per forward with `harness profile layers --forwards`): the attention-family "
           "kernel with the most GPU time whose launch count is a multiple of the layer count (SGLang's Triton "
           "`_fwd_kernel` and vLLM's `kernel_unified_attention` run once per layer per forward, in layer order), with "
           "its mean time per launch and its launch count per layer type; — where the record has no split (recorded "
           "before the split existed, or no kernel fits, with why). The step column (harness/profile_steps.py, per "
           "step with `harness profile steps --steps`) gives the median forward of the pass: its wall time, the GPU's "
           "idle time in it (no kernel, copy or set running; records since session 15 add the time no kernel ran, "
           "which an asynchronous copy such as vLLM's input staging does not hide), and the host's time in synchronising calls (stream, device or event synchronise, "
           "blocking copies) and in the CUDA call that overlapped the idle gaps most; a host that spends most of a "
           "step synchronising has no lead over the GPU. — where the record has none (recorded before 2026-11-28 "
           "session 14, or no forwards found, with why).", ""]
    fams = ["attention", "gemm", "moe", "norm", "communication", "memory", "other"]
    rows = []
    for p, path in recs:
        base = [p.scenario, "on" if p.mtp else "off", p.engine]
        if p.status != "ok" or not p.summary:
            rows.append(base + [f"**failed** {T.md_link('record', link(path))}: {T.one_line(p.error or '')}"]
                        + [""] * (len(fams) + 3))
            continue
        s = p.summary
        share = {k: v.get("share", 0.0) for k, v in (s.get("families") or {}).items()}
        tops = "; ".join(f"`{T.one_line(t['name'])[:60]}` {t['share']:.0%}" for t in (s.get("top") or [])[:top])
        unflushed = "" if p.cache_flushed else " (cache not flushed first: prefill may be partial)"
        rows.append(base + [f"{s.get('gpu_time_us', 0) / 1e3:.1f} ms{unflushed} {T.md_link('record', link(path))}"]
                    + [f"{share.get(f, 0.0):.0%}" for f in fams] + [tops, _layer_split(p.layers), _step_cell(p.steps)])
    out.append(T.md_table(pd.DataFrame(rows, columns=["Scenario", "MTP", "Engine", "GPU time"] + fams
                                       + [f"Top {top} kernels (share of GPU time)",
                                          "Attention per launch by layer type", "Step (median)"])))
    return out + [""]


def _layer_split(layers: dict | None) -> str:
    """A profile record's ``layers`` (harness.profile_layers) in one cell: the kernel, then per layer type (the type
    with more layers first; records keep their keys sorted) its mean time per launch and launch count."""
    if not layers:
        return "—"
    split = layers.get("split")
    if not split:
        return f"— ({T.one_line(layers.get('why'))})"
    return f"`{T.one_line(layers.get('kernel'))[:60]}` " + ", ".join(
        f"{t.removesuffix('_attention')} {b['us_per_launch'] / 1e3:.2f} ms ×{b['launches']}"
        for t, b in sorted(split["by_type"].items(), key=lambda tb: (-tb[1]["layers"], tb[0])))


def _step_cell(steps: dict | None) -> str:
    """A profile record's ``steps`` (harness.profile_steps.step_summary) in one cell: the median step's wall time,
    GPU idle time (and the time no kernel ran, where the record has it), host time in synchronising calls and the
    CUDA call that overlapped the idle gaps most."""
    if not steps:
        return "—"
    m = steps.get("median")
    if not m:
        return f"— ({T.one_line(steps.get('why'))})"
    calls = m.get("host_in_gaps_us") or {}
    top = max(calls.items(), key=lambda kv: kv[1], default=None)
    gap = f"; in the gaps `{T.one_line(top[0])}` {top[1] / 1e3:.2f} ms" if top else ""
    # records since session 15 also say how long no kernel ran (an asynchronous copy can fill a gap between kernels)
    nk = f" (no kernel {m['kernel_idle_us'] / 1e3:.2f} ms)" if m.get("kernel_idle_us") is not None else ""
    return (f"{m['wall_us'] / 1e3:.2f} ms ×{steps.get('steps')}: GPU idle {m['idle_us'] / 1e3:.2f} ms{nk}, host "
            f"synchronising {m['host_sync_us'] / 1e3:.2f} ms{gap}")


def _kernel_section(g: Group, link: T.Link) -> list[str]:
    kernels = sorted(((k, p) for r in g.runs for k, p in r.kernels), key=lambda kp: (kp[0].name, kp[0].run_id, str(kp[1])))
    if not kernels:
        return []
    out = ["### Kernel microbenchmarks", ""]
    for k, path in kernels:
        out.append(f"#### {k.name} (run {k.run_id})")
        out.append("")
        meta = [f"record: {T.md_link('json', link(path))}"]
        if k.patch:
            meta.append(f"patch: `{k.patch}`")
        if k.device:
            meta.append(f"device: {k.device}")
        if k.started_at:
            meta.append(f"date: {_date(k.started_at)}")
        if k.environment:
            meta.append("environment: " + T.md_escape(T.fmt_value(k.environment)))
        if k.command:
            meta.append("command: `" + " ".join(k.command).replace("`", "'") + "`")
        out.append("; ".join(meta) + ".")
        out.append("")
        if k.status != "ok":
            msg = T.one_line(k.failure.message if k.failure else k.status)
            out += [f"**{k.status}**" + (f" ({k.failure.stage}): {T.md_escape(msg)}" if k.failure else ""), ""]
            if k.failure and k.failure.log_tail.strip():
                tail = "\n".join(k.failure.log_tail.rstrip().splitlines()[-40:]).replace("`" * 3, "'" * 3)
                out += ["<details><summary>output tail (what the benchmark printed)</summary>", "", "`" * 3, tail,
                        "`" * 3, "", "</details>", ""]
            if not k.rows:
                continue
        if not k.rows:
            out += ["No rows recorded.", ""]
            continue
        out.append(T.md_table(T.kernel_table(k.rows, k.columns)))
    return out


def _plots_section(g: Group, cells: pd.DataFrame, samples: dict, jobs: list, plot_dir_rel: str) -> list[str]:
    """Markdown links to this group's plots; the figures are queued in ``jobs`` and drawn later in a batch."""
    from analysis import plots as P

    engines = T.engine_order(cells["engine"].unique().tolist())
    idx = T.index_cells(cells)
    cats = sorted({(s, m) for s, m, _ in idx})
    base = f"g{g.index:02d}-{P.slug(g.model)}-{P.slug(g.gpu_name)}-x{g.gpu_count}" + (f"-tp{g.tp}" if g.tp > 1 else "") + f"-{g.weights}"
    title = T.group_title(g)
    out = ["### Plots", ""]
    specs = [  # one figure, three panels sharing the scenario axis (one figure is cheaper to draw than several)
        ("throughput-latency", [("output_tok_s", "tok/s", "output throughput"), ("ttft_median_ms", "ms", "median TTFT"),
                                ("tpot_median_ms", "ms", "median TPOT")]),
    ]
    for name, panels in specs:
        data = [(ylabel, ptitle, {k: T.ok_values(rows, col) for k, rows in idx.items()})
                for col, ylabel, ptitle in panels]
        data = [d for d in data if any(d[2].values())]
        if not data:
            continue
        fname = f"{base}-{name}.png"
        jobs.append((fname, "bar", (cats, engines, data, f"{title}: throughput and latency (mean over repeats, "
                                                          "95% t-interval)")))
        out += [f"![throughput and latency]({plot_dir_rel}/{fname})", ""]
    group_samples = {(s, m, e): v for (gi, s, m, e), v in samples.items() if gi == g.index}
    if group_samples:
        fname = f"{base}-latency-distributions.png"
        jobs.append((fname, "dist", (group_samples, engines, f"{title}: per-request latency, pooled over repeats (box = quartiles, black line = median, whiskers = p1 and p99)")))
        out += [f"![latency distributions]({plot_dir_rel}/{fname})", ""]
    return out if len(out) > 2 else []


def _group_section(g: Group, cells: pd.DataFrame, samples: dict, link: T.Link, loader, jobs: list | None,
                   plot_dir_rel: str, cross_run: list[EvalRecord] = ()) -> list[str]:
    out = [f'<a id="{_anchor(g)}"></a>', "", f"## {g.index}. {T.group_title(g)}", ""]
    kernels_only = not any(r.cells for r in g.runs) and any(r.kernels for r in g.runs)
    if kernels_only:
        out += ["> Kernel microbenchmarks on random inputs: no server and no model weights are involved.", ""]
    elif g.weights == "dummy":
        out += ["> ⚠️ **DUMMY WEIGHTS.** These servers ran random weights (`--load-format dummy`): throughput and "
                "latency are valid with `ignore_eos`; MMLU and speculative accept length are meaningless, and greedy "
                "parity only checks that engines compute the same thing."
                + (" **MoE:** each engine fills its router with its own layout of small uniform values, so tokens "
                   "are routed differently in each engine and the expert load per step (hence throughput) may not be "
                   "what real routing gives; a `harness model init-weights` checkpoint routes the same in every "
                   "engine." if _is_moe(loader(g.model)[0]) else ""), ""]
    elif g.weights == "random-init":
        out += ["> ⚠️ **RANDOM-INIT WEIGHTS.** These servers loaded one seeded random checkpoint written by `harness "
                "model init-weights` (transformers' own initialisation), every engine the same file through its real "
                "loader: throughput and latency are valid with `ignore_eos`, greedy parity compares the engines' "
                "numerics on varied answers; MMLU and speculative accept length are meaningless.", ""]
    out += ["### Environment", "", T.md_table(_env_table(g, link))]
    if not kernels_only:
        out += [T.md_table(_engines_table(g))]
        out += _headline_section(g, cells, link)
        startup = T.startup_table(g.runs, link)
        if not startup.empty:
            out += ["### Server start-up", "", "Seconds from spawning the server to its first healthy answer, per server "
                    "(the load generator's and warmup's time is not in it); a server that never answered says why.", "",
                    T.md_table(startup)]
    if jobs is not None and not cells.empty:
        out += _plots_section(g, cells, samples, jobs, plot_dir_rel)
    if not cells.empty:
        out += _roofline_section(g, cells, loader)
    out += _evals_section([e for r in g.runs for e in r.evals] + list(cross_run), link, g.weights == "dummy",
                          random_init=g.weights == "random-init")
    out += _kernel_section(g, link)
    out += _profile_section(g, link)
    if not cells.empty:
        out += [f"### Cell records ({len(cells)})", "", "<details><summary>Every cell with a link to its record"
                "</summary>", "", T.md_table(T.cell_index_table(cells, link)), "</details>", ""]
    return out


def _standing_section(groups: list[Group], cells: pd.DataFrame, current_stack: str | None,
                      latest: tuple[set[int], str], same_code: frozenset[str] = frozenset()) -> list[str]:
    here = [g.index for g in groups if patched_stack(g) in _this_checkout(current_stack, same_code)]
    measured_as = sorted({st[:12] for g in groups if (st := patched_stack(g)) in same_code})

    def title(g: Group) -> str:
        return ("current stack · " if g.index in here else "") + T.group_title(g)

    table = T.standing_table(groups, cells, title, _anchor)
    if table.empty:
        return []
    latest_idx, named = latest
    first: list[str] = []
    if latest_idx and len(latest_idx) < len(groups):
        latest_table = T.standing_table([g for g in groups if g.index in latest_idx], cells, title, _anchor)
        if not latest_table.empty:
            first = [f"**The latest measured stack first.** {named} Its rows, as in the table of every group below:", "",
                     T.md_table(latest_table), "", "**Every group:**", ""]
    current = ""
    if current_stack:
        as_ = (f" (as stack {', '.join(measured_as)}: the same code, only patch messages differ)" if measured_as
               else "")
        current = (f" The patch series of this checkout is stack {current_stack[:12]} (`harness patches list`): "
                   + (f"group(s) {', '.join(map(str, here))} measured it{as_}, and their rows say \"current stack\"; the "
                      "other groups measured earlier versions of the series." if here else "no group has measured it "
                      "yet; every row is an earlier version of the series."))
    return ['<a id="standing"></a>', "", "## Where sglang-patched stands",
            "",
            "Every group, scenario and MTP mode where sglang-patched and a reference engine both have ok cells: the "
            "deltas of the group's headline table (same definitions) and what they say. With repeats on both sides, "
            f"**behind** / **ahead** means Welch's 95% interval of the delta excludes zero; with one repeat on a "
            f"side there is no interval and a delta of at least {T.N1_MARGIN:.0%} is called, so an n=1 call is "
            "one measurement, not a significance test. Rows of different groups are different environments "
            "(GPU, weights, engine versions, patch stack): compare within a group." + current, "", *first,
            T.md_table(table), ""]


def _this_checkout(current_stack: str | None, same_code: frozenset[str]) -> set[str]:
    """The stack hashes that count as this checkout's series: its own and those with the same code."""
    return {current_stack, *same_code} if current_stack else set()


def _latest_stack(groups: list[Group], current_stack: str | None,
                  same_code: frozenset[str] = frozenset()) -> tuple[set[int], str]:
    """The groups of the patch stack the standing section opens with and the cross-lease table is about: this
    checkout's if a group measured it (its own hash or one of ``same_code``), else the stack of the latest run (by
    run id) with sglang-patched; and how the sections name it."""
    stacks = {g.index: patched_stack(g) for g in groups}
    mine = _this_checkout(current_stack, same_code)
    if mine & set(stacks.values()):
        as_ = sorted(st[:12] for st in mine & set(stacks.values()) if st != current_stack)
        named = f"Stack {current_stack[:12]}, this checkout's" + (
            f" (measured as {', '.join(as_)}: the same code, only patch messages differ)." if as_ else ".")
        return {i for i, st in stacks.items() if st in mine}, named
    latest = max(((r.run_id, stacks[g.index]) for g in groups if stacks[g.index] for r in g.runs), default=None)
    if latest is None:
        return set(), ""
    note = f"; this checkout's ({current_stack[:12]}) has not run yet" if current_stack else ""
    return {i for i, st in stacks.items() if st == latest[1]}, f"Stack {latest[1][:12]}, the latest measured{note}."


def _latest_figures_section(groups: list[Group], cells: pd.DataFrame, latest: tuple[set[int], str]) -> list[str]:
    here, named = latest
    table = T.latest_figures_table(groups, cells, here, _anchor)
    if table.empty:
        return []
    return ['<a id="latest-figures"></a>', "", "## The latest stack in figures", "",
            f"{named} One block per model setting, scenario and MTP mode where sglang-patched ran this stack: its "
            "output tok/s and median TPOT (mean ± 95% t half-width, n) from the group where a reference engine ran "
            "beside it (else its latest group), and each reference engine's from that same group where it ran there, "
            "else from the latest other group with the same model, weights, GPU, driver, CUDA, tensor parallelism "
            "and scenario definition (\"other lease\": the offset between two leases is in that delta, see the "
            "stack-change section for its size). Δ is sglang-patched against the reference with Welch's 95% "
            f"interval, {T.SIG_MARK} where it excludes 0. The sections below say which of these are behind or ahead.", "",
            T.md_table(table), ""]


def _cross_lease_section(groups: list[Group], cells: pd.DataFrame, latest: tuple[set[int], str]) -> list[str]:
    here, named = latest
    table = T.cross_lease_table(groups, cells, here, T.group_title, _anchor)
    if table.empty:
        return []
    return ['<a id="cross-lease"></a>', "", "## The latest stack against references from other leases", "",
            f"{named} Where a lease ran sglang-patched with this stack but no reference engine on some scenario, "
            "the table above has no row for that scenario. Here sglang-patched's cells of such a group are set against the reference's cells of the latest other group with the same model, weights, "
            "GPU, driver, CUDA, tensor parallelism and scenario definition, with the same deltas and calls. The two "
            "sides ran in different leases (another host of the same kind, other jobs beside them, engine versions "
            "and harness tree as their groups say): a same-lease measurement outranks these rows. "
            "`harness runs compare RUN:ENGINE RUN:ENGINE` shows every metric and what differs between two runs.", "",
            T.md_table(table), ""]


def _stack_change_section(groups: list[Group], cells: pd.DataFrame, latest: tuple[set[int], str],
                          mine: set[str]) -> list[str]:
    here, named = latest
    stacks = mine | {st for g in groups if g.index in here and (st := patched_stack(g))}
    table = T.stack_change_table(groups, cells, here, stacks, patched_stack, T.group_title, _anchor)
    if table.empty:
        return []
    return ['<a id="stack-change"></a>', "", "## The latest stack against the code measured before it", "",
            f"{named} sglang-patched's cells of each of its groups against sglang-patched's cells of the latest "
            "earlier group that ran other patch code on the same model, weights, GPU, driver, CUDA, tensor "
            "parallelism and scenario definition: what the patches since then changed, with the same deltas and "
            "calls. The two sides ran in different leases; the last column says how the reference engines, the same "
            "software on both sides, moved between the same two groups, an estimate of the leases' own offset, "
            "which the stack's delta carries too; where no reference ran in both, sglang-patched's own cells of "
            "this code in another lease, where there are any, against these (how far two leases of the same code "
            "differ). A same-lease A/B against a same-stack control (an engine profile "
            "with the patch's switch off) outranks these rows.", "",
            T.md_table(table), ""]


def _standalone_section(records: list[EvalRecord], link: T.Link) -> list[str]:
    if not records:
        return []
    out = ['<a id="evals-outside-runs"></a>', "", "## Quality records outside benchmark runs", "",
           "These MMLU / parity records were made outside a benchmark run, so no run manifest covers them: a record "
           "of servers the harness started keeps each side's machine, engine versions and server command itself, and "
           "one computed from stored answers (`harness parity --from-generations`) names the files it read. One whose "
           "two runs are in one group above is shown in that group instead, and so is a reference check of a parity "
           "record a group shows. They are grouped by model and by weights (as far as the records say).", ""]
    by_key: dict[tuple[str, str], list[EvalRecord]] = {}
    for r in records:
        weights = ("dummy weights" if r.dummy else "random-init weights" if r.random_init else
                   "real weights" if r.dummy is False else "weights not recorded")
        by_key.setdefault((r.model or "unknown model", weights), []).append(r)
    for model, weights in sorted(by_key):
        out += [f"### {model} · {weights}", ""]
        out += _evals_section(by_key[(model, weights)], link, dummy=weights == "dummy weights", level="####",
                              random_init=weights == "random-init weights")
    return out


def _place_cross_run(groups: list[Group], records: list[EvalRecord]) -> tuple[dict[int, list[EvalRecord]],
                                                                               list[EvalRecord]]:
    """Stand-alone records that belong to one group: a parity record computed from two runs' stored answers
    (`harness parity --from-generations`, `compare --gpus` across slots) whose runs are both in it (engines run one
    per GPU are separate runs of one lease), and a `harness parity-reference` record of a parity record the group
    shows. The rest stay stand-alone."""
    from harness.paths import repo_root

    where = {r.run_id: g.index for g in groups for r in g.runs}
    placed: dict[int, list[EvalRecord]] = {}
    shown = {e.path.resolve(): g.index for g in groups for r in g.runs for e in r.evals if e.kind == "parity"}
    for rec in records:
        gi = {where.get(x) for x in rec.side_runs or (None,)}
        if rec.kind == "parity" and len(gi) == 1 and None not in gi:
            shown[rec.path.resolve()] = g = gi.pop()
            placed.setdefault(g, []).append(rec)
    for rec in records:
        if rec.kind == "reference" and rec.parity_record:
            gi = shown.get(T.parity_record_here(rec, repo_root()).resolve())
            if gi is not None:
                placed.setdefault(gi, []).append(rec)
    taken = {id(r) for v in placed.values() for r in v}
    return placed, [r for r in records if id(r) not in taken]


# --------------------------------------------------------------------------------------------- entry points


def render_report(
    runs: list[Run],
    standalone_evals: list[EvalRecord],
    out: Path,
    *,
    with_plots: bool = True,
    model_loader: Callable[[str], tuple[dict | None, str]] | None = None,
    current_stack: str | None = None,
    same_code: frozenset[str] = frozenset(),
) -> Report:
    """Build the markdown and the plots (in memory) for ``runs``; nothing is written. ``current_stack``: the patch
    series' stack hash in this checkout, which the standing table marks; ``same_code``: earlier stack hashes whose
    patches have the same code (they differ in commit messages only), marked as measuring it too."""
    out = Path(out)
    link = _Linker(out.parent)
    cache: dict[str, tuple[dict | None, str]] = {}
    base_loader = model_loader or default_model_loader()

    def loader(name: str) -> tuple[dict | None, str]:
        if name not in cache:
            cache[name] = base_loader(name)
        return cache[name]

    groups = group_runs(runs)
    cross_run, standalone_evals = _place_cross_run(groups, standalone_evals)
    cells = cells_frame(groups)
    samples = per_request_samples(groups) if with_plots else {}
    jobs: list | None = [] if with_plots else None
    plot_dir_rel = link(plots_dir_for(out))

    n_cells = int((cells["status"] != "missing").sum()) if not cells.empty else 0
    lines = [
        "# Gemma-4 serving comparison: SGLang (baseline, patched) vs vLLM",
        "",
        f"Rendered by `harness report` (harness {__version__}) from {len(runs)} run(s), {n_cells} cell record(s)"
        + (f" and {len(standalone_evals)} stand-alone quality record(s)" if standalone_evals else "")
        + ". Regenerate with `harness report`; the same records give the same bytes.",
        "",
        "## Contents",
        "",
    ]
    latest = _latest_stack(groups, current_stack, same_code)
    figures = _latest_figures_section(groups, cells, latest)
    standing = _standing_section(groups, cells, current_stack, latest, same_code)
    cross_lease = _cross_lease_section(groups, cells, latest)
    stack_change = _stack_change_section(groups, cells, latest, _this_checkout(current_stack, same_code))
    if figures:
        lines.append("- [The latest stack in figures](#latest-figures)")
    if standing:
        lines.append("- [Where sglang-patched stands](#standing)")
    if cross_lease:
        lines.append("- [The latest stack against references from other leases](#cross-lease)")
    if stack_change:
        lines.append("- [The latest stack against the code measured before it](#stack-change)")
    for g in groups:
        lines.append(f"- [{g.index}. {T.group_title(g)}](#{_anchor(g)})")
    if standalone_evals:
        lines.append("- [Quality records outside benchmark runs](#evals-outside-runs)")
    lines += ["", METHODS]
    lines += figures + standing + cross_lease + stack_change
    for g in groups:
        gcells = cells[cells["group"] == g.index] if not cells.empty else cells
        lines += _group_section(g, gcells, samples, link, loader, jobs, plot_dir_rel, cross_run.get(g.index, []))
    lines += _standalone_section(standalone_evals, link)
    text = "\n".join(lines).rstrip("\n") + "\n"
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    plots: dict[str, bytes] = {}
    if jobs:
        from analysis.plots import render_jobs

        plots = render_jobs(jobs)
        missing = [name for name, _, _ in jobs if name not in plots]
        for name in missing:  # a figure that drew nothing: drop its link rather than leave it dangling
            text = re.sub(rf"!\[[^\]]*\]\([^)]*/{re.escape(name)}\)\n\n", "", text)
    return Report(out=out, markdown=text, plots=plots)


def write_report(report: Report) -> list[Path]:
    """Write the markdown and the plots; remove PNGs in the plots directory that this render did not make."""
    from harness.atomic import atomic_write_text

    written = [atomic_write_text(report.out, report.markdown)]
    pdir = report.plots_dir
    if report.plots:
        from analysis.plots import write_if_changed

        pdir.mkdir(parents=True, exist_ok=True)
        for name, data in sorted(report.plots.items()):
            write_if_changed(pdir / name, data)
            written.append(pdir / name)
    if pdir.is_dir():
        for stale in sorted(pdir.glob("*.png")):
            if stale.name not in report.plots:
                stale.unlink()
        if not any(pdir.iterdir()):
            pdir.rmdir()
    return written


def build(
    run_args: list[str] | None,
    runs_dir: Path,
    out: Path,
    *,
    with_plots: bool = True,
    model_loader: Callable[[str], tuple[dict | None, str]] | None = None,
) -> Report:
    """Resolve RUN arguments, load and validate every record, render (in memory)."""
    run_dirs, eval_paths = resolve_inputs(run_args, runs_dir)
    runs = load_runs(run_dirs)
    standalone = load_eval_files(eval_paths)
    try:
        from harness.patchstack.history import same_code_stacks

        current, _, same = same_code_stacks()
    except (HarnessError, OSError):  # a checkout without a readable series: nothing is marked current
        current, same = None, frozenset()
    return render_report(runs, standalone, out, with_plots=with_plots, model_loader=model_loader,
                         current_stack=current, same_code=same)
