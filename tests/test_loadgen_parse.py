"""Parsing a real `vllm bench serve` result file, captured on the GPU machine (vLLM 0.22.0, H200, run
20261127T050647Z-26B-A4B-dad7; the harness dropped the per-token `itls` and `generated_texts` arrays when it stored
it). Expected values are read from the file itself: the test checks the mapping, not any figure."""

import json
from pathlib import Path

import pytest

from harness.loadgen import parse_result, slim_raw

FIXTURE = Path(__file__).parent / "fixtures" / "vllm_bench" / "h200-vllm-0.22.0-chat.json"


def test_real_result_maps_onto_schema():
    data = json.loads(FIXTURE.read_text())
    m, spec = parse_result(data)
    assert m.completed == data["completed"] and m.failed == data["failed"]
    assert m.output_throughput == pytest.approx(data["output_throughput"])
    assert m.total_token_throughput == pytest.approx(data["total_token_throughput"])
    assert m.duration_s == pytest.approx(data["duration"])
    for metric in ("ttft", "tpot", "itl", "e2el"):
        lat = getattr(m, f"{metric}_ms")
        assert lat.median == pytest.approx(data[f"median_{metric}_ms"])
        assert lat.p99 == pytest.approx(data[f"p99_{metric}_ms"])
        assert lat.p90 == pytest.approx(data[f"p90_{metric}_ms"])
        assert lat.mean == pytest.approx(data[f"mean_{metric}_ms"])
    assert m.ttfts_ms is not None and len(m.ttfts_ms) == data["num_prompts"]
    assert m.ttfts_ms[0] == pytest.approx(data["ttfts"][0] * 1000, abs=1e-3)
    assert m.output_lens == data["output_lens"]
    assert m.e2els_ms is None  # itls were dropped from the stored copy
    assert spec is None  # no speculative decoding in this run
    assert data["engine"] == "vllm" and data["scenario"] == "chat"  # --metadata reached the file


def test_flag_dependent_keys_do_not_change_the_schema():
    data = json.loads(FIXTURE.read_text())
    trimmed = {k: v for k, v in data.items() if "e2el" not in k and not k.startswith("p90_")}
    m, _ = parse_result(trimmed)
    assert m.e2el_ms.median is None and m.tpot_ms.p90 is None and m.tpot_ms.median is not None


def test_not_a_result_is_rejected():
    with pytest.raises(ValueError, match="not a vllm bench serve result"):
        parse_result({"completed": 3})


def test_slim_raw_records_what_it_dropped():
    out = slim_raw({"a": 1, "itls": [[0.1]], "generated_texts": ["x"]})
    assert out == {"a": 1, "_dropped_keys": ["generated_texts", "itls"]}
