"""Server-side metrics around a measured phase: cache flush, speculative acceptance, KV pool sizes from the log.

* SGLang: ``POST /flush_cache`` before the measured phase also resets the lifetime spec counters, so
  ``GET /server_info`` -> ``internal_states[0].avg_spec_accept_length`` afterwards covers exactly that phase.
* vLLM: Prometheus counters ``vllm:spec_decode_*_total`` scraped before and after; the deltas give
  ``accept_length = 1 + accepted / drafts`` (anchors.md section 2.4).
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from harness.definitions import EngineDef
from harness.results import SpecDecode

_PROM_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")


def flush(engine: EngineDef, base_url: str, client: httpx.Client) -> list[str]:
    """Run the engine's cache-reset calls; return a note per call that did not succeed (never raises on 4xx)."""
    notes = []
    for call in engine.flush:
        try:
            r = client.request(call.method, base_url + call.path, timeout=120)
            if r.status_code >= 400:
                notes.append(f"{call.method} {call.path}: HTTP {r.status_code}")
        except httpx.HTTPError as exc:
            notes.append(f"{call.method} {call.path}: {exc.__class__.__name__}: {exc}")
    return notes


def parse_prometheus(text: str) -> dict[str, float]:
    """Sum every sample of each metric name over its label sets."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _PROM_LINE.match(line)
        if not m:
            continue
        try:
            v = float(m.group("value"))
        except ValueError:
            continue
        out[m.group("name")] = out.get(m.group("name"), 0.0) + v
    return out


def snapshot(engine: EngineDef, base_url: str, client: httpx.Client) -> dict[str, Any]:
    if engine.spec_metrics == "vllm-metrics":
        r = client.get(base_url + "/metrics", timeout=30)
        r.raise_for_status()
        counters = parse_prometheus(r.text)
        return {k: v for k, v in counters.items() if k.startswith("vllm:spec_decode")}
    if engine.spec_metrics == "sglang-server-info":
        r = client.get(base_url + "/server_info", timeout=30)
        r.raise_for_status()
        return r.json()
    return {}


def spec_decode(engine: EngineDef, before: dict[str, Any], after: dict[str, Any]) -> SpecDecode | None:
    if engine.spec_metrics == "vllm-metrics":
        def d(name: str) -> float:
            return after.get(name, 0.0) - before.get(name, 0.0)

        drafts = d("vllm:spec_decode_num_drafts_total")
        if drafts <= 0:
            return None
        drafted = d("vllm:spec_decode_num_draft_tokens_total")
        accepted = d("vllm:spec_decode_num_accepted_tokens_total")
        return SpecDecode(
            accept_length=1.0 + accepted / drafts,
            acceptance_rate=accepted / drafted if drafted > 0 else None,
            num_drafts=drafts,
            draft_tokens=drafted,
            accepted_tokens=accepted,
            source="vllm:/metrics delta",
        )
    if engine.spec_metrics == "sglang-server-info":
        states = after.get("internal_states") or []
        if isinstance(after.get("decode"), list):  # PD-disaggregated layout
            states = after["decode"]
        value = states[0].get("avg_spec_accept_length") if states and isinstance(states[0], dict) else None
        if value is None:
            return None
        return SpecDecode(accept_length=float(value), source="sglang:/server_info")
    return None


def scan_log(engine: EngineDef, text: str) -> tuple[dict[str, int], dict[str, str]]:
    """KV pool numbers (named regex groups) and the first line matching each log pattern."""
    kv: dict[str, int] = {}
    lines: dict[str, str] = {}
    for name, pattern in engine.log_patterns.items():
        rx = re.compile(pattern)
        for line in text.splitlines():
            line = line.strip()
            m = rx.search(line)
            if not m:
                continue
            if len(line) > 400:  # e.g. a server_args dump: keep the match and a little context, not its head
                a, b = max(0, m.start() - 60), min(len(line), m.end() + 60)
                line = ("…" if a else "") + line[a:b] + ("…" if b < len(line) else "")
            lines[name] = line
            for g, v in m.groupdict().items():
                if v is not None and re.fullmatch(r"[\d,]+", v):
                    kv[g] = int(v.replace(",", ""))
            break
    return kv, lines


def window_warnings(engine: EngineDef, text: str) -> list[str]:
    out = []
    for needle in engine.window_warnings:
        for line in text.splitlines():
            if needle in line:
                out.append(line.strip()[:400])
    return out[:50]
