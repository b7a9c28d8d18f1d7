"""Run INSIDE an engine environment (stdlib only; it must not import the harness).

    python jit_warm_probe.py --generator flashinfer.jit.comm:gen_trtllm_comm_module [--generator ...]

For each generator (a function returning FlashInfer's ``JitSpec``): call it, then ``spec.build(verbose=False)``,
which is what ``spec.build_and_load()`` does at the engine's first use of the module, minus the load (FlashInfer
runs ninja under a file lock, so a server starting meanwhile waits for this build instead of starting its own; an
up-to-date module is a no-op). A module FlashInfer ships ahead of time (``spec.is_aot``) is not built.

Prints one line ``HARNESS_JIT_WARM_JSON: [...]``: per generator the module name, what happened (``built``,
``up-to-date``, ``aot``, ``failed``), the seconds it took, the library path and, on failure, the error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback

MARK = "HARNESS_JIT_WARM_JSON:"


def warm(generator: str) -> dict:
    out: dict = {"generator": generator}
    t0 = time.monotonic()
    try:
        module_name, func_name = generator.split(":", 1)
        spec = getattr(importlib.import_module(module_name), func_name)()
        out["module"] = getattr(spec, "name", None)
        if getattr(spec, "is_aot", False):
            out.update(status="aot", library=str(spec.aot_path))
        else:
            library = spec.jit_library_path
            existed = library.exists()
            spec.build(verbose=False)
            if not library.exists():
                raise RuntimeError(f"the build finished without writing {library}")
            out.update(status="up-to-date" if existed else "built", library=str(library))
    except BaseException as exc:  # noqa: BLE001 - SystemExit from a module counts as a failure too
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        out.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback="".join(tb[-8:]))
    out["seconds"] = round(time.monotonic() - t0, 2)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--generator", action="append", default=[])
    args = ap.parse_args(argv)
    results = [warm(g) for g in args.generator]
    sys.stdout.flush()
    print(MARK + " " + json.dumps(results), flush=True)
    return 1 if any(r["status"] == "failed" for r in results) else 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # an engine import may leave non-daemon threads behind; do not wait for them
