"""Deterministic PNG plots of a table group (matplotlib, Agg canvas, no pyplot state).

Byte-reproducible: the "default" style plus fixed overrides (so a user's matplotlibrc does not leak in), a
fixed figure size and dpi, categories and engines in sorted order, and PNG metadata without the "Software"
entry (Agg writes no timestamp). Per-request distributions are drawn from at most ``ECDF_POINTS`` quantiles.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.style  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from analysis import stats  # noqa: E402

DPI = 100
ECDF_POINTS = 400
ENGINE_COLORS = {"sglang": "#1f77b4", "sglang-patched": "#2ca02c", "vllm": "#d62728"}
_OTHER_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#ff7f0e")
RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 8,
    "savefig.dpi": DPI,
    "figure.dpi": DPI,
    "path.simplify": True,
    "svg.hashsalt": "gemma4-harness",
}


def engine_color(engine: str, engines: list[str]) -> str:
    if engine in ENGINE_COLORS:
        return ENGINE_COLORS[engine]
    others = [e for e in engines if e not in ENGINE_COLORS]
    return _OTHER_COLORS[others.index(engine) % len(_OTHER_COLORS)] if engine in others else "#000000"


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _categories(cells: pd.DataFrame) -> list[tuple[str, bool]]:
    keys = cells[["scenario", "mtp"]].drop_duplicates()
    return sorted((str(s), bool(m)) for s, m in keys.itertuples(index=False, name=None))


def _label(scenario: str, mtp: bool) -> str:
    return f"{scenario}\nMTP {'on' if mtp else 'off'}"


def _bars(ax, cells: pd.DataFrame, engines: list[str], column: str, ylabel: str, title: str) -> None:
    cats = _categories(cells)
    width = 0.8 / max(1, len(engines))
    ok = cells[cells["status"] == "ok"]
    grouped = {k: v[column].tolist() for k, v in ok.groupby(["scenario", "mtp", "engine"], sort=True)}
    for j, engine in enumerate(engines):
        xs, ys, errs, na = [], [], [], []
        for i, (scenario, mtp) in enumerate(cats):
            x = i - 0.4 + width * (j + 0.5)
            s = stats.summarize(grouped.get((scenario, mtp, engine), []))
            if s is None:
                na.append(x)
                continue
            xs.append(x)
            ys.append(s.mean)
            errs.append(s.half_width or 0.0)
        color = engine_color(engine, engines)
        ax.bar(xs, ys, width=width, yerr=errs, capsize=2, color=color, label=engine, edgecolor="none")
        for x in na:
            ax.text(x, 0, "n/a", rotation=90, ha="center", va="bottom", fontsize=6, color=color)
    ax.set_xticks(range(len(cats)))
    ax.set_xticklabels([_label(s, m) for s, m in cats], fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_xlim(-0.6, len(cats) - 0.4)


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def bar_plot(cells: pd.DataFrame, engines: list[str], panels: list[tuple[str, str, str]], title: str) -> bytes:
    """One bar panel per (column, ylabel, panel title): mean over repeats, 95% t-interval error bars."""
    with matplotlib.style.context("default"), matplotlib.rc_context(RC):
        n_cats = len(_categories(cells))
        fig = _figure(min(16.0, max(7.0, 1.1 * n_cats + 2)), 3.2 * len(panels))
        axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
        for ax, (column, ylabel, ptitle) in zip(axes, panels):
            _bars(ax, cells, engines, column, ylabel, ptitle)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.suptitle(title, fontsize=10)
        fig.legend(handles, labels, loc="outside upper center", ncols=max(1, len(engines)), frameon=False)
        return png_bytes(fig)


def _ecdf(values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    arr = np.sort(np.asarray(values, dtype=np.float64))
    if arr.size > ECDF_POINTS:
        probs = np.linspace(0.0, 1.0, ECDF_POINTS)
        return np.quantile(arr, probs), probs
    return arr, np.arange(1, arr.size + 1, dtype=np.float64) / arr.size


def distribution_plot(
    samples: dict[tuple[str, bool, str], dict[str, list[float]]], engines: list[str], title: str
) -> bytes | None:
    """ECDFs of per-request TTFT and E2E latency, one row per (scenario, MTP), pooled over repeats."""
    cats = sorted({(s, m) for s, m, _ in samples})
    if not cats:
        return None
    metrics = (("ttfts_ms", "TTFT (ms)"), ("e2els_ms", "E2E latency (ms)"))
    with matplotlib.style.context("default"), matplotlib.rc_context(RC):
        fig = _figure(10.0, 2.4 * len(cats) + 0.6)
        axes = fig.subplots(len(cats), 2, squeeze=False)
        for i, (scenario, mtp) in enumerate(cats):
            for k, (metric, xlabel) in enumerate(metrics):
                ax = axes[i, k]
                drawn = False
                for engine in engines:
                    vals = samples.get((scenario, mtp, engine), {}).get(metric)
                    if not vals:
                        continue
                    xs, ys = _ecdf(vals)
                    ax.step(xs, ys, where="post", color=engine_color(engine, engines), label=f"{engine} (n={len(vals)})")
                    drawn = True
                ax.set_title(f"{scenario} · MTP {'on' if mtp else 'off'} · {xlabel}")
                ax.set_xlabel(xlabel)
                ax.set_ylabel("fraction of requests")
                ax.set_ylim(0, 1.02)
                if drawn:
                    ax.legend(loc="lower right")
                else:
                    ax.text(0.5, 0.5, "no per-request data", ha="center", va="center", transform=ax.transAxes)
        fig.suptitle(title, fontsize=10)
        return png_bytes(fig)


def slug(text: str) -> str:
    out = []
    for ch in text.lower():
        out.append(ch if ch.isalnum() else "-")
    s = "".join(out)
    while "--" in s:
        s = s.replace("--", "-")
    return s.strip("-")


def has_finite(cells: pd.DataFrame, column: str) -> bool:
    vals = cells.loc[cells["status"] == "ok", column]
    return any(not math.isnan(v) for v in vals)


def write_if_changed(path: Path, data: bytes) -> None:
    from harness.atomic import atomic_write_bytes

    if path.is_file() and path.read_bytes() == data:
        return
    atomic_write_bytes(path, data)
