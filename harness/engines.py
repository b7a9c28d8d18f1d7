"""Engine adapters: turn an engine profile + model + mode into an exact server command line and environment.

The profiles are data (``scenarios/engines/*.yaml``); this module only fills placeholders and decides which
argument groups apply (dummy weights, text-only, MTP, per-model arguments) and which environment variables are set
(``env_vars``, plus ``mtp_env_vars`` with MTP, plus ``profile_env_vars`` and ``profile_args`` with --profile).
Placeholders are ``{python}``, ``{model_path}``, ``{host}``, ``{port}``, ``{served_model_name}``,
``{assistant_path}``, ``{tp}``, ``{profile_dir}``; anything else in braces (e.g. a JSON argument) is left alone.
"""

from __future__ import annotations

import os
import random
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from harness.definitions import Definitions, EngineDef, ModelDef
from harness.errors import HarnessError
from harness.paths import state_dir

PLACEHOLDER = re.compile(r"\{(python|model_path|host|port|served_model_name|assistant_path|tp|profile_dir)\}")


def fill(template: str, values: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values or values[key] is None:
            raise HarnessError(f"placeholder {{{key}}} in {template!r} has no value")
        return str(values[key])

    return PLACEHOLDER.sub(sub, template)


# SGLang derives more ports from --port: its gRPC port defaults to port + 10000 and must be <= 65535, so a
# kernel-chosen ephemeral port (32768-60999 on Linux) above 55535 makes SGLang refuse to start (seen on the GPU
# host: "SGLANG_GRPC_PORT (68831) must be between 1 and 65535"). Ports come from a range that leaves room for the
# derived ones, and the derived one must be free too.
PORT_RANGE = (20000, 45000)
DERIVED_PORT_OFFSETS = (10000,)


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1", *, rng: random.Random | None = None, attempts: int = 200) -> int:
    """A port in PORT_RANGE that is free now, with every derived port (port + offset) free as well."""
    rng = rng or random.SystemRandom()
    lo, hi = PORT_RANGE
    for _ in range(attempts):
        port = rng.randint(lo, hi)
        if all(_bindable(host, port + off) for off in (0, *DERIVED_PORT_OFFSETS)):
            return port
    raise HarnessError(f"no free port in {lo}-{hi} on {host} (with +{DERIVED_PORT_OFFSETS} free too) after {attempts} tries")


@dataclass
class Interpreter:
    """Where an engine's Python lives: a venv interpreter, or a host interpreter plus a --target site dir."""

    python: str
    pythonpath: list[str] = field(default_factory=list)
    source: str = "default"  # "profile" | "registry" | "default"


def pythonpath_env(interp: Interpreter) -> dict[str, str]:
    """The PYTHONPATH an engine process gets: the interpreter's entries first, then the caller's own."""
    if not interp.pythonpath:
        return {}
    existing = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.pathsep.join(interp.pythonpath + ([existing] if existing else []))}


def resolve_interpreter(env_name: str, python_override: str | None = None, extra_path: list[str] | None = None) -> Interpreter:
    extra = list(extra_path or [])
    if python_override:
        return Interpreter(python_override, extra, "profile")
    try:
        from harness.envs.registry import lookup  # written by `harness env create/install-bundle`
    except ImportError:
        lookup = None  # type: ignore[assignment]
    rec = lookup(env_name) if lookup else None
    if rec is not None:
        return Interpreter(rec.python, extra + list(rec.pythonpath), "registry")
    return Interpreter("python3", extra, "default")


def patched_tree_default() -> Path:
    from harness.patchstack import stack_hash

    return state_dir() / "sglang-patched" / stack_hash()[:16]


def overlay_path(engine: EngineDef, patched_tree: Path | None) -> list[str]:
    """PYTHONPATH entries that put the patched ``sglang`` package in front of the installed one."""
    if engine.overlay != "patch-stack":
        return []
    tree = Path(patched_tree) if patched_tree else patched_tree_default()
    pkg = tree / "python" / "sglang"
    if not pkg.is_dir():
        raise HarnessError(
            f"engine {engine.name!r} needs the patched SGLang tree at {tree} (missing {pkg}); "
            f"create it with `harness patches apply --out {tree}` or pass --patched-tree DIR"
        )
    from harness.patchstack import read_marker, stack_hash

    marker = read_marker(tree)
    if marker is None:
        raise HarnessError(f"{tree} has no completed patch application (.harness-patchstack.json missing); "
                           f"re-run `harness patches apply --out {tree} --force`")
    # An explicitly chosen tree is used as it is (its marker's stack hash goes into the manifest); the default
    # tree must match the current series.
    if patched_tree is None and marker.get("stack_hash") != stack_hash():
        raise HarnessError(f"{tree} was patched with stack {str(marker.get('stack_hash'))[:12]}, but patches/series is now "
                           f"{stack_hash()[:12]}; re-run `harness patches apply --out {tree} --force`")
    return [str(tree / "python")]


@dataclass
class LaunchPlan:
    engine: EngineDef
    argv: list[str]
    env: dict[str, str]  # variables set on top of the parent environment
    interpreter: Interpreter
    host: str
    port: int
    served_model_name: str
    model_path: str
    mtp: bool

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def full_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        return env


def served_name(model: ModelDef) -> str:
    return model.hf_repo.split("/")[-1]


def model_engine_args(defs: Definitions, model: ModelDef, engine: EngineDef) -> list[str]:
    """The model's extra arguments for this engine: by profile name, then along its ``extends`` chain, then by family,
    so a variant gets exactly what its base gets."""
    e: EngineDef | None = engine
    seen: set[str] = set()
    while e is not None and e.name not in seen:
        seen.add(e.name)
        if e.name in model.engine_args:
            return list(model.engine_args[e.name])
        e = defs.engines.get(e.extends) if e.extends else None
    return list(model.engine_args.get(engine.family) or [])


def build_launch(
    defs: Definitions,
    engine_name: str,
    model: ModelDef,
    model_path: str | Path,
    *,
    dummy: bool,
    mtp: bool = False,
    assistant_path: str | Path | None = None,
    text_only: bool = True,
    host: str = "127.0.0.1",
    port: int | None = None,
    tp: int = 1,
    extra_args: list[str] | None = None,
    patched_tree: Path | None = None,
    profile_dir: str | Path | None = None,
) -> LaunchPlan:
    engine = defs.engine(engine_name)
    if profile_dir is not None and not (engine.profile_start and engine.profile_stop):
        raise HarnessError(f"engine {engine.name!r} defines no profile_start/profile_stop: it cannot be profiled")
    interp = resolve_interpreter(engine.env, engine.python, list(engine.pythonpath))
    overlay = overlay_path(engine, patched_tree)
    interp = Interpreter(interp.python, overlay + interp.pythonpath, interp.source)
    if mtp and not engine.mtp_args:
        raise HarnessError(f"engine {engine.name!r} defines no mtp_args")
    if mtp and not assistant_path:
        raise HarnessError(
            f"MTP for model {model.name!r} needs an assistant checkpoint: pass --assistant-path "
            f"(real: {model.assistant_repo or 'unknown'}) or synthesise one with `harness model synth --assistant`"
        )
    values = {
        "python": interp.python,
        "model_path": str(model_path),
        "host": host,
        "port": str(port if port is not None else free_port(host)),
        "served_model_name": served_name(model),
        "assistant_path": str(assistant_path) if assistant_path else None,
        "tp": str(tp),
        "profile_dir": str(profile_dir) if profile_dir is not None else None,
    }
    groups = [engine.launch, engine.default_args]
    if dummy:
        groups.append(engine.dummy_args)
    if text_only:
        groups.append(engine.text_only_args)
    else:
        groups.append(engine.multimodal_args)
    if mtp:
        groups.append(engine.mtp_args)
    groups.append(model_engine_args(defs, model, engine))
    if profile_dir is not None:
        groups.append(engine.profile_args)
    argv = [fill(a, values) for g in groups for a in g] + list(extra_args or [])
    env = dict(engine.env_vars)
    if mtp:
        env.update(engine.mtp_env_vars)
    if profile_dir is not None:
        env.update({k: fill(v, values) for k, v in engine.profile_env_vars.items()})
    env.update(pythonpath_env(interp))
    return LaunchPlan(
        engine=engine,
        argv=argv,
        env=env,
        interpreter=interp,
        host=host,
        port=int(values["port"]),
        served_model_name=values["served_model_name"],
        model_path=str(model_path),
        mtp=mtp,
    )
