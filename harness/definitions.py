"""Scenario, model, engine and load-generator definitions: data under ``scenarios/``, validated with pydantic.

Layout::

    scenarios/scenarios/<name>.yaml   one load scenario each
    scenarios/models/<name>.yaml      one Gemma-4 variant each (config.json-shaped ``hf_config``)
    scenarios/engines/<name>.yaml     one engine profile each (sglang, sglang-patched, vllm)
    scenarios/loadgen.yaml            the load generator (``vllm bench serve``)

Users override any of it without editing the repository: a YAML file given with ``--overrides`` or the
``HARNESS_OVERRIDES`` environment variable, shaped like ``{engines: {vllm: {default_args: [...]}},
models: {...}, scenarios: {...}, loadgen: {...}}``, is deep-merged over the definitions by name (a new name adds
a definition). Every validation error names the file, the field and what is allowed.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.errors import HarnessError
from harness.paths import definitions_dir


class DefinitionError(HarnessError):
    """A definition file is malformed or refers to something that does not exist."""


class _Def(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------------------------- scenarios


class ImageSpec(_Def):
    count: int = Field(gt=0)
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class Scenario(_Def):
    name: str
    description: str = ""
    api: Literal["completions", "chat"]
    dataset: Literal["random", "random-mm"]
    input_len: int = Field(gt=0)
    output_len: int = Field(gt=0)
    num_prompts: int = Field(gt=0)
    max_concurrency: int | None = Field(default=None, gt=0)
    request_rate: float | Literal["inf"] = "inf"
    seed: int = 0
    range_ratio: float = Field(default=0.0, ge=0.0, lt=1.0)
    # Warmup runs the scenario's own shapes (not one repeated prompt) so lazily compiled kernels are covered;
    # default (None): the measured phase's prompt count.
    warmup_prompts: int | None = Field(default=None, ge=0)
    repeats: int = Field(default=1, ge=1)
    images: ImageSpec | None = None
    requires: list[Literal["vision"]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _mm_consistency(self) -> "Scenario":
        if self.dataset == "random-mm":
            if self.images is None:
                raise ValueError("dataset 'random-mm' needs an 'images' block {count, width, height}")
            if self.api != "chat":
                raise ValueError("dataset 'random-mm' needs api 'chat' (vllm bench serve sends images only through chat)")
        elif self.images is not None:
            raise ValueError("'images' is only allowed with dataset 'random-mm'")
        return self

    @property
    def effective_warmup_prompts(self) -> int:
        """Default: as many prompts as the measured phase, so warmup walks through the same batch shapes (the
        ramp-down included). One concurrency's worth was not enough: on the H200, vLLM still JIT-compiled
        fused_moe_kernel inside the measured window of a 40-prompt chat cell after a 32-prompt warmup."""
        if self.warmup_prompts is not None:
            return self.warmup_prompts
        return self.num_prompts


# --------------------------------------------------------------------------------------------- models


class ModelDef(_Def):
    name: str
    description: str = ""
    hf_repo: str
    assistant_repo: str | None = None
    kind: Literal["dense", "moe"]
    provenance: dict[str, str] = Field(default_factory=dict)
    scenarios: list[str]
    hf_config: dict[str, Any]
    assistant_config: dict[str, Any] | None = None
    engine_args: dict[str, list[str]] = Field(default_factory=dict)  # per engine profile or family
    path: str | None = None  # local directory with real weights, if the user has them

    @field_validator("hf_config")
    @classmethod
    def _check_hf_config(cls, v: dict[str, Any]) -> dict[str, Any]:
        if v.get("model_type") != "gemma4":
            raise ValueError("hf_config.model_type must be 'gemma4' (SGLang remaps head dims only for it)")
        if not isinstance(v.get("text_config"), dict):
            raise ValueError("hf_config.text_config must be a mapping")
        v = copy.deepcopy(v)
        for key in ("text_config",):
            tc = v[key]
            tc["layer_types"] = expand_layer_types(tc.get("layer_types"), tc.get("num_hidden_layers"))
        return v

    @field_validator("assistant_config")
    @classmethod
    def _check_assistant(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return v
        v = copy.deepcopy(v)
        tc = v.get("text_config") or {}
        tc["layer_types"] = expand_layer_types(tc.get("layer_types"), tc.get("num_hidden_layers"))
        return v

    @property
    def text_config(self) -> dict[str, Any]:
        return self.hf_config["text_config"]

    @property
    def has_vision(self) -> bool:
        return bool(self.hf_config.get("vision_config"))

    def capabilities(self) -> set[str]:
        return {"vision"} if self.has_vision else set()


def expand_layer_types(value: Any, num_layers: int | None) -> list[str] | None:
    """``{pattern: [...], repeat: N}`` -> the full list; a list is checked against ``num_hidden_layers``."""
    if value is None:
        return None
    if isinstance(value, dict):
        pattern, repeat = value.get("pattern"), value.get("repeat")
        if not isinstance(pattern, list) or not isinstance(repeat, int):
            raise ValueError("layer_types as a mapping needs 'pattern' (list) and 'repeat' (int)")
        value = list(pattern) * repeat
    if not isinstance(value, list):
        raise ValueError("layer_types must be a list or {pattern, repeat}")
    bad = sorted({t for t in value if t not in ("sliding_attention", "full_attention")})
    if bad:
        raise ValueError(f"layer_types entries must be 'sliding_attention' or 'full_attention', got {bad}")
    if num_layers is not None and len(value) != num_layers:
        raise ValueError(f"layer_types has {len(value)} entries but num_hidden_layers is {num_layers}")
    return value


# --------------------------------------------------------------------------------------------- engines


class HttpCall(_Def):
    method: Literal["GET", "POST"]
    path: str
    json_body: dict[str, Any] | None = None  # sent as the request's JSON body (e.g. SGLang's /start_profile options)


class JitWarmup(_Def):
    """A FlashInfer JIT module the engine compiles (nvcc) the first time it starts on a host with these settings;
    `harness env warm-jit` builds it ahead into FlashInfer's cache (harness/envs/jit_warm.py)."""

    generator: str  # "package.module:function" returning FlashInfer's JitSpec
    min_tp: int = Field(default=1, ge=1)  # built only from this tensor-parallel size up
    why: str = ""

    @field_validator("generator")
    @classmethod
    def _generator_form(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", v):
            raise ValueError(f"generator must look like 'package.module:function', got {v!r}")
        return v


class EngineDef(_Def):
    name: str
    description: str = ""
    family: Literal["sglang", "vllm"]
    version: str
    env: str  # key in the environment registry (harness env create / install-bundle)
    overlay: Literal["none", "patch-stack"] = "none"
    launch: list[str]
    default_args: list[str] = Field(default_factory=list)
    dummy_args: list[str] = Field(default_factory=list)
    text_only_args: list[str] = Field(default_factory=list)
    multimodal_args: list[str] = Field(default_factory=list)  # added when a session runs an image scenario
    mtp_args: list[str] = Field(default_factory=list)
    env_vars: dict[str, str] = Field(default_factory=dict)
    mtp_env_vars: dict[str, str] = Field(default_factory=dict)  # set on top of env_vars when MTP is on
    python: str | None = None  # override of the registry's interpreter
    pythonpath: list[str] = Field(default_factory=list)  # prepended to the registry's
    health_path: str = "/health"
    flush: list[HttpCall] = Field(default_factory=list)
    # --profile (harness.profiles): arguments / variables that configure the server's torch profiler to write into
    # {profile_dir}, and the calls that start and stop it around a profiled pass
    profile_args: list[str] = Field(default_factory=list)
    profile_env_vars: dict[str, str] = Field(default_factory=dict)
    profile_start: HttpCall | None = None
    profile_stop: HttpCall | None = None
    spec_metrics: Literal["sglang-server-info", "vllm-metrics", "none"] = "none"
    startup_timeout_s: float = Field(default=1800, gt=0)
    stop_timeout_s: float = Field(default=60, gt=0)
    log_patterns: dict[str, str] = Field(default_factory=dict)
    window_warnings: list[str] = Field(default_factory=list)
    jit_warmup: list[JitWarmup] = Field(default_factory=list)
    extends: str | None = None  # the profile this one was derived from (resolved at load time)

    @field_validator("log_patterns")
    @classmethod
    def _regexes_compile(cls, v: dict[str, str]) -> dict[str, str]:
        for name, pattern in v.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"log_patterns.{name} is not a valid regex: {exc}") from exc
        return v


class LoadgenDef(_Def):
    env: str = "vllm"
    command: list[str]
    python: str | None = None
    percentile_metrics: str = "ttft,tpot,itl,e2el"
    metric_percentiles: str = "50,90,99"
    temperature: float = 0.0
    save_detailed: bool = True
    timeout_s: float = Field(default=3600, gt=0)
    extra_args: list[str] = Field(default_factory=list)


# --------------------------------------------------------------------------------------------- loading


@dataclass
class Definitions:
    scenarios: dict[str, Scenario]
    models: dict[str, ModelDef]
    engines: dict[str, EngineDef]
    loadgen: LoadgenDef
    sources: dict[str, str] = field(default_factory=dict)  # "kind:name" -> file it came from

    def scenario(self, name: str) -> Scenario:
        return _lookup(self.scenarios, name, "scenario")

    def model(self, name: str) -> ModelDef:
        return _lookup(self.models, name, "model")

    def engine(self, name: str) -> EngineDef:
        return _lookup(self.engines, name, "engine")

    def scenarios_for(self, model: ModelDef, wanted: list[str] | None = None) -> tuple[list[Scenario], dict[str, str]]:
        """Scenarios that apply to a model, and the reason each requested one does not."""
        names = wanted if wanted is not None else model.scenarios
        out: list[Scenario] = []
        skipped: dict[str, str] = {}
        for n in names:
            sc = self.scenario(n)
            missing = set(sc.requires) - model.capabilities()
            if missing:
                skipped[n] = f"model {model.name} has no {', '.join(sorted(missing))} tower"
            else:
                out.append(sc)
        return out, skipped


def _lookup(table: dict[str, Any], name: str, what: str) -> Any:
    if name not in table:
        known = ", ".join(sorted(table)) or "(none)"
        raise DefinitionError(f"unknown {what} {name!r}; known {what}s: {known}")
    return table[name]


def _read_yaml(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise DefinitionError(f"{path}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise DefinitionError(f"{path}: cannot read: {exc}") from exc


def format_validation_error(path: str, exc: ValidationError) -> str:
    lines = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        got = e.get("input")
        got_s = "" if e["type"] in ("missing",) or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{path}: field '{loc}': {msg}{got_s}")
    return "\n".join(lines)


def _validate(model_cls: type[BaseModel], data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise DefinitionError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(format_validation_error(path, exc)) from None


def load_yaml_as(model_cls: type[BaseModel], path: Path, *, empty: Any = None) -> Any:
    """Read one YAML file and validate it as ``model_cls``; errors name the file and every bad field."""
    data = _read_yaml(Path(path))
    if data is None and empty is not None:
        data = empty
    return _validate(model_cls, data, str(path))


def deep_merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = deep_merge(base[k], v) if k in base else v
        return out
    return copy.deepcopy(over)


def _resolve_extends(name: str, engines: dict[str, dict[str, Any]], sources: dict[str, str],
                     seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """An engine profile with ``extends: BASE`` is BASE's definition with the profile's own keys merged over it
    (lists are replaced, not appended): a variant such as "sglang-patched with one feature off" is data."""
    data = engines[name]
    base = data.get("extends")
    if base is None:
        return data
    where = sources.get(f"engines:{name}", name)
    if not isinstance(base, str):
        raise DefinitionError(f"{where}: field 'extends' must be an engine profile name")
    if base in seen or base == name:
        raise DefinitionError(f"{where}: 'extends' makes a cycle: {' -> '.join(seen + (name, base))}")
    if base not in engines:
        raise DefinitionError(f"{where}: field 'extends': unknown engine profile {base!r}; known: {', '.join(sorted(engines))}")
    parent = _resolve_extends(base, engines, sources, seen + (name,))
    merged = deep_merge({k: v for k, v in parent.items() if k not in ("description", "extends")},
                        {k: v for k, v in data.items() if k != "extends"})
    merged["extends"] = base
    return merged


def load_definitions(root: Path | None = None, overrides: Path | str | None = None) -> Definitions:
    """Read and validate every definition; apply the overrides file (argument, else ``HARNESS_OVERRIDES``)."""
    root = Path(root) if root else definitions_dir()
    if overrides is None:
        overrides = os.environ.get("HARNESS_OVERRIDES") or None
    over: dict[str, Any] = {}
    if overrides:
        data = _read_yaml(Path(overrides))
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise DefinitionError(f"{overrides}: expected a mapping with keys engines/models/scenarios/loadgen")
        unknown = set(data) - {"engines", "models", "scenarios", "loadgen"}
        if unknown:
            raise DefinitionError(
                f"{overrides}: unknown top-level key(s) {sorted(unknown)}; allowed: engines, models, scenarios, loadgen"
            )
        over = data

    sources: dict[str, str] = {}
    raw: dict[str, dict[str, Any]] = {"scenarios": {}, "models": {}, "engines": {}}
    for kind in raw:
        d = root / kind
        if not d.is_dir():
            raise DefinitionError(f"{d}: definitions directory missing")
        for path in sorted(d.glob("*.yaml")):
            data = _read_yaml(path)
            if not isinstance(data, dict):
                raise DefinitionError(f"{path}: expected a mapping at the top level")
            name = data.get("name")
            if name != path.stem:
                raise DefinitionError(f"{path}: field 'name' must equal the file name {path.stem!r} (got {name!r})")
            raw[kind][name] = data
            sources[f"{kind}:{name}"] = str(path)
        for name, patch in (over.get(kind) or {}).items():
            if not isinstance(patch, dict):
                raise DefinitionError(f"{overrides}: {kind}.{name} must be a mapping")
            raw[kind][name] = deep_merge(raw[kind].get(name, {"name": name}), patch)
            sources[f"{kind}:{name}"] = sources.get(f"{kind}:{name}", "") + f" + {overrides}"

    raw["engines"] = {n: _resolve_extends(n, raw["engines"], sources) for n in raw["engines"]}
    scenarios = {n: _validate(Scenario, d, sources[f"scenarios:{n}"]) for n, d in raw["scenarios"].items()}
    models = {n: _validate(ModelDef, d, sources[f"models:{n}"]) for n, d in raw["models"].items()}
    engines = {n: _validate(EngineDef, d, sources[f"engines:{n}"]) for n, d in raw["engines"].items()}
    lg_path = root / "loadgen.yaml"
    lg_raw = _read_yaml(lg_path) if lg_path.exists() else None
    if lg_raw is None:
        raise DefinitionError(f"{lg_path}: missing")
    if over.get("loadgen"):
        lg_raw = deep_merge(lg_raw, over["loadgen"])
    loadgen = _validate(LoadgenDef, lg_raw, str(lg_path))

    for m in models.values():
        for s in m.scenarios:
            if s not in scenarios:
                raise DefinitionError(
                    f"{sources['models:' + m.name]}: field 'scenarios': unknown scenario {s!r}; "
                    f"known: {', '.join(sorted(scenarios))}"
                )
    return Definitions(scenarios=scenarios, models=models, engines=engines, loadgen=loadgen, sources=sources)


def load_model(name: str, root: Path | None = None) -> ModelDef:
    """Convenience for analysis code: one model definition, validated."""
    return load_definitions(root).model(name)
