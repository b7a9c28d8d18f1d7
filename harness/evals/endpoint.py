"""Where an evaluation sends its requests: an endpoint the user gave, or a server the harness starts.

The evaluations only need ``(base_url, served_model_name)``.  With no ``--base-url`` the harness starts the
engine through ``harness.server.managed_server`` (imported lazily, so the evaluations work without it).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from harness.errors import HarnessError


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    served_model_name: str
    server: str  # "external" | "managed"
    dummy_weights: bool | None = None  # managed only: random weights of any kind (dummy or random-init)
    environment: dict | None = None  # managed only: machine, engine versions, patch stack, server command
    weights: str | None = None  # managed only: real | dummy | random-init (harness.synth.weights_kind)


def _managed_server_factory():
    try:
        from harness.server import managed_server  # type: ignore[attr-defined]
    except ImportError as exc:
        # Only "harness.server is not there (yet)" is the user-facing case; a broken import inside it is a bug.
        if isinstance(exc, ModuleNotFoundError) and exc.name not in ("harness.server",):
            raise
        raise HarnessError(
            "this harness cannot start engines itself yet (harness.server.managed_server is not available): "
            "start the server yourself and pass --base-url http://HOST:PORT") from None
    return managed_server


@contextlib.contextmanager
def endpoint(
    engine: str,
    model: str,
    *,
    base_url: str | None = None,
    served_model_name: str | None = None,
    mtp: bool = False,
    run_dir: Path | None = None,
    **server_kw: object,
) -> Iterator[Endpoint]:
    """Yield the endpoint; a managed server is stopped when the block ends (``server_kw`` go to it)."""
    if base_url:
        yield Endpoint(base_url.rstrip("/"), served_model_name or model, "external")
        return
    managed_server = _managed_server_factory()
    with managed_server(engine, model, mtp=mtp, run_dir=run_dir, **server_kw) as srv:
        yield Endpoint(str(srv.base_url).rstrip("/"), served_model_name or srv.served_model_name, "managed",
                       getattr(srv, "dummy", None), getattr(srv, "environment", None), getattr(srv, "weights", None))
