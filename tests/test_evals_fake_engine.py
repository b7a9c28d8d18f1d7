"""The stand-in engine server behaves like the OpenAI-compatible servers the harness talks to."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import fake_engine  # noqa: E402
from fake_engine import launch, mmlu_letter  # noqa: E402


def _chat(base: str, content: str, **kw) -> dict:
    body = {"model": "fake-model", "messages": [{"role": "user", "content": content}], **kw}
    r = httpx.post(base + "/v1/chat/completions", json=body, timeout=10)
    r.raise_for_status()
    return r.json()


def _sse(base: str, path: str, body: dict) -> list:
    chunks = []
    with httpx.stream("POST", base + path, json=body, timeout=10) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                data = line[len("data: "):]
                chunks.append(data if data == "[DONE]" else json.loads(data))
    return chunks


def test_health_is_503_while_starting_then_200(tmp_path):
    with launch("--startup-delay", "0.8", wait=False, workdir=str(tmp_path)) as eng:
        r = httpx.get(eng.base_url + "/health", timeout=5)
        assert r.status_code == 503
        assert httpx.post(eng.base_url + "/v1/completions", json={"prompt": "x"}, timeout=5).status_code == 503
        fake_engine.wait_healthy(eng.base_url, 10, eng.proc)
        assert httpx.get(eng.base_url + "/health", timeout=5).status_code == 200
        assert "listening on http://127.0.0.1:" in eng.stderr()
        assert "ready to roll" in eng.stderr()
    assert eng.proc.returncode == 0


def test_models_and_deterministic_chat(tmp_path):
    with launch("--model", "google/gemma-4-E2B-it", workdir=str(tmp_path)) as eng:
        models = httpx.get(eng.base_url + "/v1/models", timeout=5).json()
        assert [m["id"] for m in models["data"]] == ["google/gemma-4-E2B-it"]
        body = {"model": "google/gemma-4-E2B-it", "messages": [{"role": "user", "content": "Tell me a story"}]}
        a = httpx.post(eng.base_url + "/v1/chat/completions", json={**body, "max_tokens": 7}, timeout=5).json()
        b = httpx.post(eng.base_url + "/v1/chat/completions", json={**body, "max_tokens": 7}, timeout=5).json()
        assert a["choices"][0]["message"]["content"] == b["choices"][0]["message"]["content"]
        assert a["usage"]["completion_tokens"] == 7 == len(a["choices"][0]["message"]["content"].split())
        assert a["choices"][0]["finish_reason"] == "length"
        c = httpx.post(eng.base_url + "/v1/chat/completions",
                       json={**body, "max_completion_tokens": 3}, timeout=5).json()
        assert c["usage"]["completion_tokens"] == 3
        assert a["choices"][0]["message"]["content"].startswith(c["choices"][0]["message"]["content"])
        other = httpx.post(eng.base_url + "/v1/chat/completions",
                           json={**body, "messages": [{"role": "user", "content": "Something else"}],
                                 "max_tokens": 7}, timeout=5).json()
        assert other["choices"][0]["message"]["content"] != a["choices"][0]["message"]["content"]
        wrong = httpx.post(eng.base_url + "/v1/chat/completions", json={**body, "model": "nope"}, timeout=5)
        assert wrong.status_code == 404
        log = eng.requests()
        assert [r["max_tokens"] for r in log if r["method"] == "POST" and r.get("status") == 200] == [7, 7, 3, 7]


def test_streaming_chat_and_completions_with_usage(tmp_path):
    with launch("--flavor", "vllm", workdir=str(tmp_path)) as eng:
        body = {"model": "fake-model", "messages": [{"role": "user", "content": "stream please"}], "stream": True,
                "stream_options": {"include_usage": True}, "max_completion_tokens": 6, "ignore_eos": True}
        chunks = _sse(eng.base_url, "/v1/chat/completions", body)
        assert chunks[-1] == "[DONE]"
        usage_chunk = chunks[-2]
        assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] == 6
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-2])
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        non_stream = _chat(eng.base_url, "stream please", max_completion_tokens=6, ignore_eos=True)
        assert text == non_stream["choices"][0]["message"]["content"]
        # completions API, no usage requested -> no usage chunk
        chunks = _sse(eng.base_url, "/v1/completions",
                      {"model": "fake-model", "prompt": "abc def", "max_tokens": 4, "stream": True})
        assert chunks[-1] == "[DONE]"
        assert all(c["choices"] for c in chunks[:-1])
        assert sum(1 for c in chunks[:-1] if c["choices"][0]["text"]) == 4


def test_ignore_eos_runs_to_max_tokens_and_natural_stop_is_stop(tmp_path):
    with launch(workdir=str(tmp_path)) as eng:
        r = _chat(eng.base_url, "short", max_tokens=4000)
        assert r["choices"][0]["finish_reason"] == "stop"
        assert r["usage"]["completion_tokens"] < 4000
        r = _chat(eng.base_url, "short", max_tokens=300, ignore_eos=True)
        assert r["usage"]["completion_tokens"] == 300


def test_sglang_flush_cache_and_server_info(tmp_path):
    with launch("--flavor", "sglang", "--spec-accept-length", "2.5", workdir=str(tmp_path)) as eng:
        _chat(eng.base_url, "one", max_tokens=10, ignore_eos=True)
        info = httpx.get(eng.base_url + "/server_info", timeout=5).json()
        assert info["internal_states"][0]["avg_spec_accept_length"] == pytest.approx(2.5)
        assert httpx.post(eng.base_url + "/flush_cache", timeout=5).status_code == 200
        info = httpx.get(eng.base_url + "/server_info", timeout=5).json()
        assert info["internal_states"][0]["avg_spec_accept_length"] == 0.0
        assert httpx.get(eng.base_url + "/metrics", timeout=5).status_code == 404


def test_vllm_metrics_counters_advance(tmp_path):
    def scrape(base):
        vals = {}
        for line in httpx.get(base + "/metrics", timeout=5).text.splitlines():
            if line.startswith("vllm:spec_decode") and "position" not in line:
                name, value = line.split("{")[0], float(line.rsplit(" ", 1)[1])
                vals[name] = value
        return vals

    with launch("--flavor", "vllm", "--spec-accept-length", "3", workdir=str(tmp_path)) as eng:
        before = scrape(eng.base_url)
        _chat(eng.base_url, "one", max_tokens=30, ignore_eos=True)
        after = scrape(eng.base_url)
        drafts = after["vllm:spec_decode_num_drafts_total"] - before["vllm:spec_decode_num_drafts_total"]
        acc = (after["vllm:spec_decode_num_accepted_tokens_total"]
               - before["vllm:spec_decode_num_accepted_tokens_total"])
        assert drafts > 0
        assert 1 + acc / drafts == pytest.approx(3.0)
        assert httpx.post(eng.base_url + "/flush_cache", timeout=5).status_code == 404


def test_mmlu_answer_mode_and_disagreement(tmp_path):
    prompts = [f"question {i}" for i in range(200)]
    a = [mmlu_letter("user: " + p, seed=1, flip_rate=0.2) for p in prompts]
    b = [mmlu_letter("user: " + p, seed=2, flip_rate=0.2) for p in prompts]
    same = sum(x == y for x, y in zip(a, b))
    assert 0 < 200 - same < 200  # two seeds disagree on some questions, not all
    assert [mmlu_letter("user: " + p) for p in prompts] == [mmlu_letter("user: " + p, 5) for p in prompts]
    with launch("--answer-mode", "mmlu", "--answer-seed", "1", "--answer-flip-rate", "0.2",
                workdir=str(tmp_path)) as eng:
        for p, letter in list(zip(prompts, a))[:5]:
            content = _chat(eng.base_url, p, max_tokens=2048)["choices"][0]["message"]["content"]
            assert content.rstrip().endswith(f"Answer: {letter}")


def test_bad_request_marker_and_transient_errors(tmp_path):
    with launch("--transient-errors", "2", workdir=str(tmp_path)) as eng:
        body = {"messages": [{"role": "user", "content": "hello"}]}
        codes = [httpx.post(eng.base_url + "/v1/chat/completions", json=body, timeout=5).status_code
                 for _ in range(3)]
        assert codes == [503, 503, 200]
        r = httpx.post(eng.base_url + "/v1/chat/completions",
                       json={"messages": [{"role": "user", "content": "x [[fake:bad-request]]"}]}, timeout=5)
        assert r.status_code == 400


def test_crash_on_start_exits_nonzero(tmp_path):
    with launch("--crash-on-start", "--startup-delay", "0.2", wait=False, workdir=str(tmp_path)) as eng:
        assert eng.proc.wait(10) == fake_engine.CRASH_ON_START_EXIT
        assert "simulated failure" in eng.stderr()


def test_crash_after_requests(tmp_path):
    with launch("--crash-after-requests", "2", workdir=str(tmp_path)) as eng:
        _chat(eng.base_url, "a", max_tokens=3)
        _chat(eng.base_url, "b", max_tokens=3)
        httpx.get(eng.base_url + "/health", timeout=5)  # health does not count
        with pytest.raises(httpx.TransportError):
            _chat(eng.base_url, "c", max_tokens=3)
        assert eng.proc.wait(10) == fake_engine.CRASH_AFTER_REQUESTS_EXIT


def test_hang_after_requests_then_sigterm_exits_cleanly(tmp_path):
    with launch("--hang-after-requests", "1", workdir=str(tmp_path)) as eng:
        _chat(eng.base_url, "a", max_tokens=3)
        with pytest.raises(httpx.TimeoutException):
            httpx.post(eng.base_url + "/v1/chat/completions",
                       json={"messages": [{"role": "user", "content": "b"}]}, timeout=0.5)
        with pytest.raises(httpx.TimeoutException):
            httpx.get(eng.base_url + "/health", timeout=0.5)
        assert eng.proc.poll() is None
        t = time.monotonic()
        eng.proc.send_signal(signal.SIGTERM)
        assert eng.proc.wait(10) == 0
        assert time.monotonic() - t < 5
        assert "stopped" in eng.stderr()
