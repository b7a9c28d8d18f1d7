"""Run INSIDE an engine environment (stdlib only; it must not import the harness).

    python probe.py --packages a,b,c --imports x,y

Prints one line ``HARNESS_PROBE_JSON: {...}`` with the installed distributions (version and where
they are), torch/CUDA/GPU facts and the outcome of each import.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback

MARK = "HARNESS_PROBE_JSON:"


def _dist(name: str):
    from importlib import metadata

    try:
        d = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    loc = None
    try:
        loc = str(d.locate_file(""))
    except Exception:  # noqa: BLE001
        pass
    return {"version": d.version, "location": loc}


def _torch() -> dict:
    out: dict = {}
    try:
        import torch
    except Exception as exc:  # noqa: BLE001
        return {"error": f"{type(exc).__name__}: {exc}"}
    out["version"] = torch.__version__
    out["file"] = getattr(torch, "__file__", None)
    out["cuda"] = getattr(torch.version, "cuda", None)
    try:
        out["cuda_available"] = bool(torch.cuda.is_available())
        out["device_count"] = torch.cuda.device_count() if out["cuda_available"] else 0
        if out["cuda_available"]:
            out["device_name"] = torch.cuda.get_device_name(0)
            out["capability"] = list(torch.cuda.get_device_capability(0))
    except Exception as exc:  # noqa: BLE001
        out["cuda_error"] = f"{type(exc).__name__}: {exc}"
    return out


def _import(module: str) -> dict:
    t0 = time.monotonic()
    try:
        mod = __import__(module, fromlist=["_"])
    except BaseException as exc:  # noqa: BLE001 - SystemExit from a module counts as a failure too
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": "".join(tb[-6:]),
                "seconds": round(time.monotonic() - t0, 2)}  # fmt: skip
    return {"ok": True, "file": getattr(mod, "__file__", None), "seconds": round(time.monotonic() - t0, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packages", default="")
    ap.add_argument("--imports", default="")
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args(argv)
    result: dict = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "pythonpath": os.environ.get("PYTHONPATH", ""),
        "packages": {},
    }
    for name in filter(None, args.packages.split(",")):
        result["packages"][name] = _dist(name)
    if not args.no_torch:
        result["torch"] = _torch()
    result["imports"] = {}
    failed: list[str] = []
    for module in filter(None, args.imports.split(",")):
        parent = next((f for f in failed if module.startswith(f + ".")), None)
        if parent is not None:  # a failed parent leaves a half-initialised module behind: report that instead
            result["imports"][module] = {"ok": False, "error": f"not tried: {parent} failed to import", "seconds": 0}
            continue
        result["imports"][module] = _import(module)
        if not result["imports"][module]["ok"]:
            failed.append(module)
    sys.stdout.flush()
    print(MARK + " " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # an engine import may leave non-daemon threads behind; do not wait for them
