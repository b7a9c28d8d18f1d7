"""Versioned, flag-independent records of benchmark cells and runs.

A *run* is one directory ``runs/<run_id>/`` with ``manifest.json`` (what ran, where, with what) and one
``cells/<cell_id>.json`` per (engine, scenario, MTP mode, repeat). A cell that failed is recorded with
``status: failed``, the stage it failed in and the tail of the server log; it is never dropped.

The schema does not depend on which flags were passed to the load generator: every latency block always has
the same keys (``None`` where the client did not report a value).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RESULT_SCHEMA_VERSION = 1
MANIFEST_SCHEMA_VERSION = 1

CellStatus = Literal["ok", "failed", "skipped"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Latency(_Model):
    """One latency metric over the requests of a cell, in milliseconds."""

    mean: float | None = None
    median: float | None = None
    std: float | None = None
    p90: float | None = None
    p99: float | None = None


class BenchMetrics(_Model):
    """Client-side metrics of the measured phase (warmup excluded)."""

    completed: int
    failed: int = 0
    duration_s: float
    request_throughput: float
    output_throughput: float
    total_token_throughput: float
    total_input_tokens: int
    total_output_tokens: int
    max_output_tokens_per_s: float | None = None
    ttft_ms: Latency = Field(default_factory=Latency)
    tpot_ms: Latency = Field(default_factory=Latency)
    itl_ms: Latency = Field(default_factory=Latency)
    e2el_ms: Latency = Field(default_factory=Latency)
    # Per-request samples, when the client saved them (for distributions in the report).
    ttfts_ms: list[float] | None = None
    e2els_ms: list[float] | None = None
    output_lens: list[int] | None = None


class SpecDecode(_Model):
    """Speculative-decoding acceptance measured around the measured phase."""

    accept_length: float | None = None  # includes the bonus token (1 + accepted / drafts)
    acceptance_rate: float | None = None  # accepted / drafted tokens, 0..1
    num_drafts: float | None = None
    draft_tokens: float | None = None
    accepted_tokens: float | None = None
    source: str  # "sglang:/server_info" | "vllm:/metrics delta" | "vllm bench serve"


class ServerObservations(_Model):
    """What the server logged or reported around the cell."""

    kv_pool: dict[str, int] = Field(default_factory=dict)  # max_total_num_tokens, full_tokens, swa_tokens, ...
    log_lines: dict[str, str] = Field(default_factory=dict)  # named log lines seen at launch (first match each)
    warnings_in_window: list[str] = Field(default_factory=list)  # e.g. lazy Triton JIT during the measured phase


class CellTimings(_Model):
    """Wall-clock seconds of each stage; the harness's own cost is what is not server start-up or load."""

    server_start_s: float | None = None  # spawn -> healthy (None when the server was reused)
    healthy_to_load_s: float | None = None  # healthy (or previous cell end) -> measured load start, minus warmup
    warmup_s: float | None = None
    warmup_skipped: str | None = None  # why no warmup ran (a repeat after an ok cell of the same scenario)
    load_s: float | None = None
    # measured load end -> server stopped is per server session: manifest.extra['server_stops'][session]
    load_end_to_stopped_s: float | None = None
    harness_overhead_s: float | None = None


class Failure(_Model):
    stage: Literal["server-start", "warmup", "flush", "load", "metrics", "parse", "interrupted", "other"]
    message: str
    log_tail: str = ""
    returncode: int | None = None


class HostGpu(_Model):
    """One GPU of the host at an instant (nvidia-smi): whether the run was given it, its memory in use and load."""

    index: int
    this_run: bool | None = None  # None: CUDA_VISIBLE_DEVICES unset or not GPU indices, so not known
    memory_used_mib: int | None = None
    utilization_pct: int | None = None


class CellResult(_Model):
    schema_version: int = RESULT_SCHEMA_VERSION
    kind: Literal["bench"] = "bench"
    run_id: str
    cell_id: str
    engine: str
    model: str
    scenario: str
    mtp: bool = False
    repeat: int = 1
    status: CellStatus
    failure: Failure | None = None
    skipped_reason: str | None = None
    metrics: BenchMetrics | None = None
    spec_decode: SpecDecode | None = None
    server: ServerObservations = Field(default_factory=ServerObservations)
    timings: CellTimings = Field(default_factory=CellTimings)
    server_command: list[str] = Field(default_factory=list)
    client_command: list[str] = Field(default_factory=list)
    raw_result: str | None = None  # path of the load generator's own JSON, relative to the run dir
    host_gpus: list[HostGpu] = Field(default_factory=list)  # every GPU of the host just before the measured load
    started_at: str
    finished_at: str | None = None


class MachineInfo(_Model):
    hostname: str | None = None
    gpu_name: str | None = None
    gpu_count: int = 0
    gpu_memory_mib: int | None = None
    visible_devices: str | None = None  # CUDA_VISIBLE_DEVICES when set: the GPUs the run was given
    driver: str | None = None
    cuda: str | None = None
    torch: str | None = None
    python: str | None = None
    platform: str | None = None


class EngineInfo(_Model):
    name: str  # profile name: sglang | sglang-patched | vllm
    family: str  # sglang | vllm
    version: str | None = None
    python: str | None = None
    pythonpath: list[str] = Field(default_factory=list)
    patch_stack: str | None = None  # stack hash, for patched profiles
    packages: dict[str, str] = Field(default_factory=dict)  # torch, transformers, flashinfer, ... as imported


class Manifest(_Model):
    schema_version: int = MANIFEST_SCHEMA_VERSION
    run_id: str
    command: list[str]  # the harness command line that made the run
    created_at: str
    finished_at: str | None = None
    status: Literal["running", "complete", "partial", "failed", "interrupted"] = "running"
    harness_version: str
    harness_git_sha: str | None = None
    harness_git_dirty: bool | None = None
    # sha256 over the harness's own code and definitions (harness/, analysis/, scenarios/): identifies the code
    # that ran where the checkout has no git metadata (e.g. a copy on a GPU host)
    harness_tree_sha256: str | None = None
    patch_stack_hash: str | None = None
    machine: MachineInfo = Field(default_factory=MachineInfo)
    engines: dict[str, EngineInfo] = Field(default_factory=dict)
    model: str
    model_path: str | None = None
    weights: Literal["real", "dummy", "random-init"]
    model_config_sha256: str | None = None
    # random-init weights: what `harness model init-weights` recorded (seed, recipe, parameters, fingerprint), so
    # runs of two leases can tell whether they loaded the same checkpoint
    weights_init: dict[str, Any] | None = None
    scenarios: dict[str, dict[str, Any]] = Field(default_factory=dict)  # definitions used, verbatim
    cells: list[str] = Field(default_factory=list)  # cell ids planned, in execution order
    notes: list[str] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)


def cell_id(engine: str, scenario: str, mtp: bool, repeat: int) -> str:
    return f"{engine}__{scenario}__mtp-{'on' if mtp else 'off'}__r{repeat}"


def parse_cell_id(cid: str) -> tuple[str, str, bool, int] | None:
    """The inverse of :func:`cell_id`: (engine, scenario, mtp, repeat), or None for anything it cannot have made."""
    parts = cid.split("__")
    if len(parts) != 4 or parts[2] not in ("mtp-on", "mtp-off") or not parts[3].startswith("r") or not parts[3][1:].isdigit():
        return None
    return parts[0], parts[1], parts[2] == "mtp-on", int(parts[3][1:])


class ProfileRecord(_Model):
    """A profiled pass (harness.profiles): the profiler around a short load after a server's measured cells."""

    engine: str
    scenario: str
    mtp: bool
    run_id: str
    status: Literal["ok", "failed"]
    started_at: str
    finished_at: str
    num_prompts: int
    input_len: int
    output_len: int
    client_command: list[str]
    profile_dir: str
    traces: list[str] = Field(default_factory=list)  # relative to the run directory; not exported, not committed
    summary: dict[str, Any] | None = None  # harness.profiles.summarize_trace of rank 0's trace
    # harness.profile_layers.attention_layer_split of the same trace (None: the model has no layer_types, or the
    # record predates the split)
    layers: dict[str, Any] | None = None
    # harness.profile_steps.step_summary of the same trace: per forward (median) wall, GPU busy and idle time, the host
    # calls in the idle gaps and the host's time in synchronising calls (None: recorded before it existed, or the
    # model has no layer_types)
    steps: dict[str, Any] | None = None
    error: str | None = None
    note: str = ""
    cache_flushed: bool | None = None  # the prefix cache was flushed before the pass (None: recorded before that existed)


class KernelBench(_Model):
    """A kernel microbenchmark recorded by a patch-stack GPU run (e.g. fused routing vs torch)."""

    schema_version: int = RESULT_SCHEMA_VERSION
    kind: Literal["kernel-bench"] = "kernel-bench"
    run_id: str
    name: str  # e.g. "gemma4-fused-routing"
    patch: str | None = None  # patch file the kernel comes from, e.g. "0001-gemma4-fused-moe-routing.patch"
    command: list[str] = Field(default_factory=list)
    device: str | None = None
    columns: list[str] = Field(default_factory=list)  # column order for the report table
    rows: list[dict[str, Any]] = Field(default_factory=list)
    environment: dict[str, Any] = Field(default_factory=dict)
    started_at: str
    status: CellStatus = "ok"
    failure: Failure | None = None


class MMLUSummaryRef(_Model):
    """Pointer from a run to an MMLU/parity record made inside it (the records live beside the cells)."""

    kind: Literal["mmlu", "parity"]
    engine: str
    path: str
