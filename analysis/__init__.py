"""Analysis: tables, plots and COMPARISON.md rendering from run records (``harness report``).

Modules:

- ``load``     read and validate ``runs/<run_id>/`` (manifest, cells, kernel benches, evals) and split runs into
               table groups (same model, weights, GPU, driver/CUDA, engine versions, patch stack, torch, scenario
               definitions; never mixed in one table);
- ``evals``    MMLU / greedy-parity records (``harness.evals`` outputs, or a small single-file form);
- ``stats``    means with Student-t intervals, Welch intervals of differences (standard library only);
- ``roofline`` parameters read per decoded token and the batch-1 HBM-bandwidth bound (datasheet bandwidths);
- ``tables``   every report table as a pandas DataFrame of display strings, and the markdown writer;
- ``plots``    deterministic matplotlib (Agg) PNGs, drawn in forked worker processes;
- ``run_compare`` one engine of a run (or pooled runs) against another across groups (``harness runs compare``);
- ``render``   assembles COMPARISON.md; plots go to ``<out stem>_plots/`` beside it (``COMPARISON_plots/``).
"""
