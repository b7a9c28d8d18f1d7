"""Load generation through ``vllm bench serve`` (one client and one dataset for every engine).

``bench_command`` builds the exact command line from a scenario (anchors.md section 1.3: explicit
``--temperature 0``, ``--percentile-metrics ttft,tpot,itl,e2el``, ``--metric-percentiles 50,90,99``,
``--save-result``, ``--metadata``; the OpenAI backends against SGLang too). ``parse_result`` maps the client's
JSON, whose keys depend on the flags it was given, onto the harness's flag-independent ``BenchMetrics``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from harness.definitions import LoadgenDef, Scenario
from harness.engines import fill
from harness.results import BenchMetrics, Latency, SpecDecode

# Per-request arrays are large; the stored copy of the client's JSON keeps everything else.
DROPPED_RAW_KEYS = ("generated_texts", "itls")


def bench_command(
    loadgen: LoadgenDef,
    scenario: Scenario,
    *,
    python: str,
    base_url: str,
    served_model_name: str,
    tokenizer: str,
    result_dir: Path,
    result_filename: str,
    metadata: dict[str, str],
    num_prompts: int | None = None,
    seed: int | None = None,
    save: bool = True,
) -> list[str]:
    cmd = [fill(a, {"python": python}) for a in loadgen.command]
    if scenario.api == "chat":
        cmd += ["--backend", "openai-chat", "--endpoint", "/v1/chat/completions"]
    else:
        cmd += ["--backend", "openai", "--endpoint", "/v1/completions"]
    cmd += [
        "--base-url", base_url,
        "--model", served_model_name,
        "--tokenizer", tokenizer,
        "--dataset-name", scenario.dataset,
        "--random-input-len", str(scenario.input_len),
        "--random-output-len", str(scenario.output_len),
        "--random-range-ratio", str(scenario.range_ratio),
        "--num-prompts", str(num_prompts if num_prompts is not None else scenario.num_prompts),
        "--request-rate", str(scenario.request_rate),
        "--seed", str(seed if seed is not None else scenario.seed),
        "--temperature", str(loadgen.temperature),
        "--percentile-metrics", loadgen.percentile_metrics,
        "--metric-percentiles", loadgen.metric_percentiles,
        "--num-warmups", "0",
        "--disable-tqdm",
    ]
    if scenario.max_concurrency:
        cmd += ["--max-concurrency", str(scenario.max_concurrency)]
    if scenario.dataset == "random-mm":
        assert scenario.images is not None
        im = scenario.images
        cmd += [
            "--random-mm-base-items-per-request", str(im.count),
            "--random-mm-num-mm-items-range-ratio", "0",
            "--random-mm-limit-mm-per-prompt", json.dumps({"image": im.count, "video": 0}),
            "--random-mm-bucket-config", f"{{({im.height}, {im.width}, 1): 1.0}}",
        ]
    if save:
        cmd += ["--save-result", "--result-dir", str(result_dir), "--result-filename", result_filename]
        if loadgen.save_detailed:
            cmd += ["--save-detailed"]
    if metadata:
        cmd += ["--metadata"] + [f"{k}={v}" for k, v in sorted(metadata.items())]
    cmd += list(loadgen.extra_args)
    return cmd


def _f(data: dict[str, Any], key: str) -> float | None:
    v = data.get(key)
    if v is None:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _latency(data: dict[str, Any], metric: str) -> Latency:
    return Latency(
        mean=_f(data, f"mean_{metric}_ms"),
        median=_f(data, f"median_{metric}_ms") if f"median_{metric}_ms" in data else _f(data, f"p50_{metric}_ms"),
        std=_f(data, f"std_{metric}_ms"),
        p90=_f(data, f"p90_{metric}_ms"),
        p99=_f(data, f"p99_{metric}_ms"),
    )


def parse_result(data: dict[str, Any]) -> tuple[BenchMetrics, SpecDecode | None]:
    """Map a ``vllm bench serve`` result JSON onto the harness schema."""
    missing = [k for k in ("completed", "duration", "output_throughput", "total_input_tokens", "total_output_tokens") if k not in data]
    if missing:
        raise ValueError(f"not a vllm bench serve result: keys {missing} missing")
    ttfts = data.get("ttfts")
    itls = data.get("itls")
    ttfts_ms = [round(t * 1000.0, 3) for t in ttfts] if isinstance(ttfts, list) else None
    e2els_ms = None
    if isinstance(ttfts, list) and isinstance(itls, list) and len(itls) == len(ttfts):
        e2els_ms = [round((t + sum(i or [])) * 1000.0, 3) for t, i in zip(ttfts, itls)]
    total_tok = data.get("total_token_throughput")
    if total_tok is None and data.get("duration"):
        total_tok = (data["total_input_tokens"] + data["total_output_tokens"]) / data["duration"]
    metrics = BenchMetrics(
        completed=int(data["completed"]),
        failed=int(data.get("failed", 0) or 0),
        duration_s=float(data["duration"]),
        request_throughput=float(data.get("request_throughput") or 0.0),
        output_throughput=float(data["output_throughput"]),
        total_token_throughput=float(total_tok or 0.0),
        total_input_tokens=int(data["total_input_tokens"]),
        total_output_tokens=int(data["total_output_tokens"]),
        max_output_tokens_per_s=_f(data, "max_output_tokens_per_s"),
        ttft_ms=_latency(data, "ttft"),
        tpot_ms=_latency(data, "tpot"),
        itl_ms=_latency(data, "itl"),
        e2el_ms=_latency(data, "e2el"),
        ttfts_ms=ttfts_ms,
        e2els_ms=e2els_ms,
        output_lens=[int(x) for x in data["output_lens"]] if isinstance(data.get("output_lens"), list) else None,
    )
    spec = None
    if data.get("spec_decode_acceptance_length") is not None:
        rate = _f(data, "spec_decode_acceptance_rate")
        spec = SpecDecode(
            accept_length=_f(data, "spec_decode_acceptance_length"),
            acceptance_rate=rate / 100.0 if rate is not None else None,
            num_drafts=_f(data, "spec_decode_num_drafts"),
            draft_tokens=_f(data, "spec_decode_draft_tokens"),
            accepted_tokens=_f(data, "spec_decode_accepted_tokens"),
            source="vllm bench serve",
        )
    return metrics, spec


def slim_raw(data: dict[str, Any]) -> dict[str, Any]:
    """The client's JSON without the bulky per-token arrays (recorded in ``_dropped_keys``)."""
    out = {k: v for k, v in data.items() if k not in DROPPED_RAW_KEYS}
    dropped = [k for k in DROPPED_RAW_KEYS if k in data]
    if dropped:
        out["_dropped_keys"] = dropped
    return out
