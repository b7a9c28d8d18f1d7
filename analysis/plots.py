"""Deterministic PNG plots of a table group (matplotlib, Agg canvas, no pyplot state).

Byte-reproducible: the "default" style plus fixed overrides (so a user's matplotlibrc does not leak in), a
fixed figure size and dpi, categories and engines in sorted order, and PNG metadata without the "Software"
entry (Agg writes no timestamp). Per-request distributions are drawn as box plots from precomputed quantiles.
"""

from __future__ import annotations

import io
import math
import multiprocessing
import os
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.style  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from analysis import stats  # noqa: E402

DPI = 100
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
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, pil_kwargs={"compress_level": 3})
    return buf.getvalue()


def _label(scenario: str, mtp: bool) -> str:
    return f"{scenario}\nMTP {'on' if mtp else 'off'}"


def _rects(xs: np.ndarray, bottoms: np.ndarray, tops: np.ndarray, width: float) -> np.ndarray:
    h = width / 2
    return np.stack([np.stack([xs - h, bottoms], 1), np.stack([xs - h, tops], 1),
                     np.stack([xs + h, tops], 1), np.stack([xs + h, bottoms], 1)], 1)


BarData = dict[tuple[str, bool, str], list[float]]  # (scenario, mtp, engine) -> values of the ok repeats


def _bars(ax, cats: list[tuple[str, bool]], engines: list[str], data: BarData, ylabel: str, title: str,
          labels: bool) -> bool:
    """Grouped bars (one PolyCollection per engine), 95% t-interval whiskers, 'x' where there is no value."""
    width = 0.8 / max(1, len(engines))
    ymax = 0.0
    any_na = False
    for j, engine in enumerate(engines):
        xs, ys, errs, na = [], [], [], []
        for i, (scenario, mtp) in enumerate(cats):
            x = i - 0.4 + width * (j + 0.5)
            st = stats.summarize(data.get((scenario, mtp, engine), []))
            if st is None:
                na.append(x)
                continue
            xs.append(x)
            ys.append(st.mean)
            errs.append(st.half_width or 0.0)
        color = engine_color(engine, engines)
        if xs:
            x, y, e = np.asarray(xs), np.asarray(ys), np.asarray(errs)
            ax.add_collection(PolyCollection(_rects(x, np.zeros_like(y), y, width), facecolors=color, edgecolors="none"),
                              autolim=False)
            has = e > 0
            if has.any():
                ax.vlines(x[has], (y - e)[has], (y + e)[has], colors="black", linewidth=1.0)
            ymax = max(ymax, float(np.max(y + e)))
        if na:
            any_na = True
            ax.plot(na, [0.0] * len(na), linestyle="none", marker="x", markersize=4, color=color, clip_on=False)
    ax.set_ylim(0, ymax * 1.08 if ymax > 0 else 1.0)
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=5))
    if labels:
        ax.set_xticks(range(len(cats)))
        ax.set_xticklabels([_label(s, m) for s, m in cats], fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_xlim(-0.6, len(cats) - 0.4)
    return any_na


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI)


def _finish(fig: Figure, engines: list[str], title: str, height: float, note: str) -> None:
    """Fixed margins (no layout engine: one draw per figure), wrapped title and legend above the panels."""
    width_px = fig.get_figwidth() * DPI
    lines = textwrap.wrap(title, max(40, int(width_px / 8.0))) or [""]
    h_px = height * DPI
    legend_top = 6.0 + 14.0 * len(lines)
    fig.subplots_adjust(left=max(0.05, 70.0 / width_px), right=0.99, bottom=62.0 / h_px,
                        top=1 - (legend_top + 52.0) / h_px, hspace=0.35)
    handles = [Patch(facecolor=engine_color(e, engines), label=e) for e in engines]
    if note:
        handles.append(Line2D([], [], linestyle="none", marker="x", color="black", label=note))
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 1 - legend_top / h_px),
               ncols=len(handles), frameon=False)
    fig.suptitle("\n".join(lines), fontsize=10, y=1 - 4.0 / h_px, va="top")


def bar_plot(cats: list[tuple[str, bool]], engines: list[str], panels: list[tuple[str, str, BarData]],
             title: str) -> bytes:
    """One bar panel per (ylabel, panel title, data): mean over repeats, 95% t-interval whiskers."""
    with matplotlib.style.context("default"), matplotlib.rc_context(RC):
        width, height = min(16.0, max(7.0, 1.1 * len(cats) + 2)), 2.9 * len(panels) + 1.3
        fig = _figure(width, height)
        axes = fig.subplots(len(panels), 1, squeeze=False, sharex=True)[:, 0]
        any_na = False
        for ax, (ylabel, ptitle, data) in zip(axes, panels):
            any_na |= _bars(ax, cats, engines, data, ylabel, ptitle, labels=ax is axes[-1])
        _finish(fig, engines, title, height, "no ok cell" if any_na else "")
        return png_bytes(fig)


def distribution_plot(
    samples: dict[tuple[str, bool, str], dict[str, list[float]]], engines: list[str], title: str
) -> bytes | None:
    """Per-request TTFT and E2E latency per (scenario, MTP) and engine, pooled over repeats: box = quartiles,
    white tick = median, whiskers = p1 and p99 (log scale)."""
    cats = sorted({(s, m) for s, m, _ in samples})
    if not cats:
        return None
    metrics = (("ttfts_ms", "per-request TTFT (ms)"), ("e2els_ms", "per-request E2E latency (ms)"))
    with matplotlib.style.context("default"), matplotlib.rc_context(RC):
        width, height = min(16.0, max(7.0, 1.1 * len(cats) + 2)), 2.9 * len(metrics) + 1.3
        fig = _figure(width, height)
        axes = fig.subplots(len(metrics), 1, squeeze=False, sharex=True)[:, 0]
        box_w = 0.8 / max(1, len(engines))
        for ax, (metric, ylabel) in zip(axes, metrics):
            lo, hi = math.inf, 0.0
            for j, engine in enumerate(engines):
                pos, qs = [], []
                for i, (scenario, mtp) in enumerate(cats):
                    vals = samples.get((scenario, mtp, engine), {}).get(metric)
                    if vals:
                        qs.append(np.quantile(np.asarray(vals, dtype=np.float64), [0.01, 0.25, 0.5, 0.75, 0.99]))
                        pos.append(i - 0.4 + box_w * (j + 0.5))
                if not qs:
                    continue
                q, x = np.asarray(qs), np.asarray(pos)
                color = engine_color(engine, engines)
                ax.add_collection(PolyCollection(_rects(x, q[:, 1], q[:, 3], box_w * 0.85), facecolors=color,
                                                 edgecolors="none", alpha=0.7), autolim=False)
                ax.vlines(x, q[:, 0], q[:, 4], colors=color, linewidth=1.0)
                half = box_w * 0.85 / 2
                ax.hlines(q[:, 2], x - half, x + half, colors="black", linewidth=1.5)
                lo, hi = min(lo, float(q[:, 0].min())), max(hi, float(q[:, 4].max()))
            positive = math.isfinite(lo) and lo > 0
            if positive:
                ax.set_yscale("log")
                ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
                ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
                ax.set_ylim(lo / 1.3, hi * 1.3)
            elif hi > 0:
                ax.set_ylim(min(0.0, lo if math.isfinite(lo) else 0.0), hi * 1.1)
            if ax is axes[-1]:
                ax.set_xticks(range(len(cats)))
                ax.set_xticklabels([_label(s, m) for s, m in cats], fontsize=7)
            ax.set_xlim(-0.6, len(cats) - 0.4)
            ax.set_ylabel(ylabel)
            ax.set_title(ylabel + (" (log scale)" if positive else ""))
        _finish(fig, engines, title, height, "")
        return png_bytes(fig)


# --------------------------------------------------------------------------------------------- batch rendering

PlotJob = tuple[str, str, tuple]  # (file name, "bar" | "dist", arguments: plain Python data, no pandas)
_JOBS: list[PlotJob] = []
_KINDS = {"bar": bar_plot, "dist": distribution_plot}


def _run_job(i: int) -> bytes | None:
    _, kind, args = _JOBS[i]
    return _KINDS[kind](*args)


def plot_workers() -> int:
    """Worker processes for plotting: ``HARNESS_REPORT_JOBS`` or the CPU count (1 = in this process)."""
    env = os.environ.get("HARNESS_REPORT_JOBS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            return 1
    return max(1, os.cpu_count() or 1)


def render_jobs(jobs: list[PlotJob], workers: int | None = None) -> dict[str, bytes]:
    """Draw every job; with several workers in forked processes (each figure is independent, so the bytes are
    the same as drawing them here). Returns file name -> PNG bytes for the jobs that produced a figure."""
    global _JOBS
    workers = plot_workers() if workers is None else workers
    workers = min(workers, len(jobs))
    _JOBS = list(jobs)
    try:
        if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                results = pool.map(_run_job, range(len(jobs)), chunksize=1)
        else:
            results = [_run_job(i) for i in range(len(jobs))]
    finally:
        _JOBS = []
    return {name: data for (name, _, _), data in zip(jobs, results) if data is not None}


def slug(text: str) -> str:
    out = []
    for ch in text.lower():
        out.append(ch if ch.isalnum() else "-")
    s = "".join(out)
    while "--" in s:
        s = s.replace("--", "-")
    return s.strip("-")


def write_if_changed(path: Path, data: bytes) -> None:
    from harness.atomic import atomic_write_bytes

    if path.is_file() and path.read_bytes() == data:
        return
    atomic_write_bytes(path, data)
