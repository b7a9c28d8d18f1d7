#!/usr/bin/env python3
"""A stand-in for an SGLang or vLLM OpenAI-compatible server: no engine, no GPU, stdlib only.

Run it as::

    python tests/fake_engine.py --port 30000 [--model NAME] [--flavor sglang|vllm] [--startup-delay S]
        [--crash-on-start] [--crash-after-requests N] [--hang-after-requests N]
        [--answer-mode text|echo|mmlu|mmlu-none] [--answer-seed S] [--answer-flip-rate P]
        [--diverge-rate P] [--divergence-margin NATS] [--max-top-logprobs N] [--token-delay S]
        [--spec-accept-length A] [--request-log PATH] [--port-file PATH]

Endpoints (both flavors)
    GET  /health                 503 while "starting" (for --startup-delay seconds), then 200
    GET  /v1/models              one model, id = --model
    POST /v1/completions         non-streaming, or SSE with ``stream: true``
    POST /v1/chat/completions    non-streaming, or SSE with ``stream: true``
    GET  /version                {"version": ...}
sglang flavor
    POST /flush_cache            resets the speculative counters (like SGLang's reset_metrics on flush)
    GET  /server_info            ``internal_states[0].avg_spec_accept_length`` (alias /get_server_info)
    GET  /get_model_info
vllm flavor
    GET  /metrics                Prometheus text; ``vllm:spec_decode_*_total`` counters advance with requests

Text model
    A "token" is a whitespace-separated word.  The prompt (completions: ``prompt``; chat: every message as
    ``role: content`` joined by newlines) is hashed; the hash seeds the words of the reply, so the same prompt
    always gives the same reply (greedy determinism).  ``prompt_tokens`` = words in the prompt,
    ``completion_tokens`` = words in the reply.  The reply stops "naturally" after a hash-derived length
    (``finish_reason: stop``) unless ``max_tokens`` / ``max_completion_tokens`` cuts it first
    (``finish_reason: length``); ``ignore_eos: true`` always runs to ``max_tokens``.
    ``--diverge-rate P`` makes a P-fraction of prompts (chosen by hash of ``--answer-seed`` and prompt) diverge
    from the seed-independent reply at a hash-derived word, so two fake "engines" with different seeds differ on
    some prompts and agree on the others.  At the diverging word the engine says the seed-independent runner-up
    of that position (``runner_up``); the words after it are seed-dependent (``word~SEED``).

Logprobs (chat; ``logprobs: true``)
    Every token gets a deterministic logprob (``chosen_logprob``: from the prompt, the position and the token).
    With ``top_logprobs: N`` each position lists N alternatives, most likely first: the chosen token, the
    runner-up ``--divergence-margin`` nats below it (default 2.0), then other words further down.  At a
    diverging position the runner-up is chosen and the seed-independent word is listed that margin below it, so
    two fakes that part there show the margin from both sides: a near-tie with a small margin, a clear gap with a
    large one.  A prompt containing ``[[fake:margin=X]]`` uses X instead of --divergence-margin;
    ``[[fake:rival-unlisted]]`` makes a diverging engine say ``word~SEED`` at the diverging position, a token the
    other side does not list.  ``top_logprobs`` above ``--max-top-logprobs`` (default 20) gets HTTP 400, as
    vLLM answers beyond its --max-logprobs.

Answer modes
    text       the hash-derived words described above (default)
    echo       the prompt's words, repeated
    mmlu       a few words of "reasoning" and then ``Answer: X``.  X = ``mmlu_letter(prompt, seed, flip_rate)``:
               a letter from the hash of the prompt alone, replaced by another letter for a
               ``--answer-flip-rate`` fraction of prompts (chosen by hash of ``--answer-seed`` and prompt).
    mmlu-none  like mmlu, without an answer line (extraction finds nothing)
    A prompt containing ``[[fake:bad-request]]`` gets HTTP 400; ``[[fake:error]]`` gets HTTP 500.

Failure injection
    --crash-on-start           serve 503 for --startup-delay seconds, then exit 1 without becoming healthy
    --crash-after-requests N   answer N generation requests; exit 3 (os._exit) when request N+1 arrives
    --hang-after-requests N    answer N generation requests; from request N+1 on, every request (health
                               included) hangs until the process is killed
    --transient-errors N       the first N generation requests get HTTP 503 (to exercise client retries)
    --stop-profile-delay S     /stop_profile answers after S seconds (an engine writing a large trace)
    Only POST /v1/completions and /v1/chat/completions count as generation requests.

The process logs one startup line to stderr (``fake_engine: listening ...``), a ready line, one line per
request, and writes one JSON line per request to --request-log (default:
``$FAKE_ENGINE_LOG_DIR or $TMPDIR / fake_engine-<port>-<pid>.requests.jsonl``).  An answered generation request's
line says ``in_flight``: the generation requests the server was working on when it arrived, itself included (a
request counts until its response starts), so the largest one is the most the client had in flight at once
(``Launched.max_in_flight``).  SIGTERM / SIGINT stop it with exit code 0.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import gzip
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CRASH_ON_START_EXIT = 1
CRASH_AFTER_REQUESTS_EXIT = 3

VOCAB = (
    "the of and to in is was for on that with as by at from it an be this which or are have not but had his they "
    "you were their one all we can her has there been if more when will would who so no model token engine batch "
    "kernel cache layer tensor graph prefix decode draft accept sample greedy result value answer question reason "
    "step first next then thus because therefore alpha beta gamma delta river mountain forest ocean city light"
).split()

LETTERS = "ABCD"


# --------------------------------------------------------------------------------------------- text model
def _h(*parts: Any) -> int:
    data = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def _frac(*parts: Any) -> float:
    return _h(*parts) / 2**64


def mmlu_letter(prompt: str, seed: int = 0, flip_rate: float = 0.0) -> str:
    """The letter the fake answers for an MMLU prompt (importable by tests)."""
    base = _h("mmlu-base", prompt) % 4
    if flip_rate > 0 and _frac("mmlu-flip", seed, prompt) < flip_rate:
        base = (base + 1 + _h("mmlu-flip-to", seed, prompt) % 3) % 4
    return LETTERS[base]


MARGIN_RE = re.compile(r"\[\[fake:margin=([0-9]*\.?[0-9]+)\]\]")
RIVAL_UNLISTED = "[[fake:rival-unlisted]]"


def divergence_at(prompt: str, seed: int, diverge_rate: float, n: int) -> int | None:
    """The word index where an engine with this seed diverges from the seed-independent reply of n words."""
    if diverge_rate > 0 and n and _frac("diverge", seed, prompt) < diverge_rate:
        return _h("diverge-at", seed, prompt) % n
    return None


def runner_up(prompt: str, j: int, word: str) -> str:
    """The second most likely word at position j after ``word`` (seed-independent)."""
    rng = random.Random(_h("runner-up", prompt, j))
    return rng.choice([v for v in VOCAB if v != word])


def natural_words(prompt: str, seed: int = 0, diverge_rate: float = 0.0, limit: int = 4096) -> list[str]:
    """The reply's words before any max_tokens cut: deterministic in the prompt (and seed when diverging)."""
    n = 8 + _h("len", prompt) % 120
    rng = random.Random(_h("words", prompt))
    words = [rng.choice(VOCAB) for _ in range(min(n, limit))]
    at = divergence_at(prompt, seed, diverge_rate, len(words))
    if at is not None:
        alt = random.Random(_h("alt", seed, prompt))
        rest = [f"{alt.choice(VOCAB)}~{seed}" for _ in range(len(words) - at)]
        if RIVAL_UNLISTED not in prompt:
            rest[0] = runner_up(prompt, at, words[at])
        words = words[:at] + rest
    return words


def piece(j: int, word: str) -> str:
    """The text piece of the word at position j (as ``join_words`` makes it)."""
    return word if j == 0 or word.startswith("\n") else " " + word


def chosen_logprob(prompt: str, j: int, word: str) -> float:
    return -round(0.01 + 0.5 * _frac("lp", prompt, j, word), 4)


def prompt_margin(prompt: str, default: float) -> float:
    m = MARGIN_RE.search(prompt)
    return float(m.group(1)) if m else default


def logprob_items(prompt: str, words: list[str], cfg: argparse.Namespace, top_n: int | None) -> list[dict]:
    """``choice.logprobs.content`` of a chat reply: one item per word, with ``top_logprobs`` when asked for."""
    margin = prompt_margin(prompt, cfg.divergence_margin)
    at = None
    if cfg.answer_mode == "text":
        at = divergence_at(prompt, cfg.answer_seed, cfg.diverge_rate, len(natural_words(prompt)))
    base = natural_words(prompt) if at is not None else None
    items = []
    for j, w in enumerate(words):
        p, lp = piece(j, w), chosen_logprob(prompt, j, w)
        top: list[dict] = []
        if top_n:
            rival = base[j] if j == at else runner_up(prompt, j, w)
            top = [{"token": p, "logprob": lp, "bytes": list(p.encode())}]
            if top_n >= 2:
                rp = piece(j, rival)
                top.append({"token": rp, "logprob": round(lp - margin, 4), "bytes": list(rp.encode())})
            rng = random.Random(_h("extra", prompt, j))
            extras = [v for v in VOCAB if v not in (w, rival)]
            rng.shuffle(extras)
            for k, v in enumerate(extras[:max(0, top_n - 2)]):
                ep = piece(j, v)
                top.append({"token": ep, "logprob": round(lp - margin - 1.0 - 0.25 * k, 4), "bytes": list(ep.encode())})
        items.append({"token": p, "logprob": lp, "bytes": list(p.encode()), "top_logprobs": top})
    return items


def reply_words(prompt: str, cfg: argparse.Namespace, max_tokens: int | None, ignore_eos: bool) -> tuple[list[str], str]:
    """Return (words, finish_reason)."""
    limit = max_tokens if max_tokens is not None else 4096
    mode = cfg.answer_mode
    if mode == "echo":
        src = prompt.split() or ["(empty)"]
        n = limit if ignore_eos else min(limit, len(src))
        words = [src[i % len(src)] for i in range(n)]
        return words, ("length" if n >= limit and limit > 0 else "stop")
    if mode in ("mmlu", "mmlu-none"):
        rng = random.Random(_h("reason", prompt))
        words = ["Let", "me", "think."] + [rng.choice(VOCAB) for _ in range(4 + _h("rlen", prompt) % 12)]
        if mode == "mmlu":
            words += ["\n\nAnswer:", mmlu_letter(prompt, cfg.answer_seed, cfg.answer_flip_rate)]
    else:
        words = natural_words(prompt, cfg.answer_seed, cfg.diverge_rate)
    if ignore_eos and len(words) < limit:
        rng = random.Random(_h("pad", prompt))
        words = words + [rng.choice(VOCAB) for _ in range(limit - len(words))]
    if len(words) >= limit:
        return words[:limit], "length"
    return words, "stop"


def join_words(words: list[str]) -> list[str]:
    """Text pieces, one per token, that concatenate to the reply text ("a b c")."""
    return [piece(i, w) for i, w in enumerate(words)]


def chat_prompt(messages: Any) -> str:
    lines = []
    for m in messages or []:
        content = m.get("content")
        if isinstance(content, list):  # content parts
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        lines.append(f"{m.get('role', 'user')}: {content or ''}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- state
class State:
    def __init__(self, cfg: argparse.Namespace) -> None:
        self.cfg = cfg
        self.t0 = time.monotonic()
        self.started_wall = time.time()
        self.lock = threading.Lock()
        self.gen_requests = 0
        self.in_flight = 0  # generation requests received whose response has not started
        self.hanging = False
        # speculative counters (sglang: since last flush; vllm: lifetime Prometheus counters)
        self.spec_tokens = 0.0
        self.spec_forwards = 0.0
        self.vllm_drafts = 0.0
        self.vllm_draft_tokens = 0.0
        self.vllm_accepted = 0.0
        self.vllm_accepted_per_pos = [0.0] * max(1, cfg.num_speculative_tokens)
        self.prompt_tokens_total = 0
        self.generation_tokens_total = 0
        self.request_success_total = 0
        # torch-profiler stand-in: /start_profile and /stop_profile; the "trace" counts the tokens served meanwhile
        self.profiling = False
        self.prof = {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0}
        log_path = cfg.request_log
        if not log_path:
            d = os.environ.get("FAKE_ENGINE_LOG_DIR") or tempfile.gettempdir()
            log_path = os.path.join(d, f"fake_engine-{cfg.port}-{os.getpid()}.requests.jsonl")
        self.log_path = log_path
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        self.log_fh = open(log_path, "a", encoding="utf-8", buffering=1)

    def ready(self) -> bool:
        return time.monotonic() - self.t0 >= self.cfg.startup_delay

    def log(self, rec: dict) -> None:
        with self.lock:
            self.log_fh.write(json.dumps(rec, sort_keys=True) + "\n")

    def account(self, prompt_tokens: int, completion_tokens: int) -> None:
        with self.lock:
            self.prompt_tokens_total += prompt_tokens
            self.generation_tokens_total += completion_tokens
            self.request_success_total += 1
            if self.profiling:
                self.prof["requests"] += 1
                self.prof["prompt_tokens"] += prompt_tokens
                self.prof["completion_tokens"] += completion_tokens
            a = self.cfg.spec_accept_length
            if a and a > 0 and completion_tokens > 0:
                forwards = completion_tokens / a
                self.spec_tokens += completion_tokens
                self.spec_forwards += forwards
                self.vllm_drafts += forwards
                self.vllm_draft_tokens += forwards * self.cfg.num_speculative_tokens
                accepted = completion_tokens - forwards
                self.vllm_accepted += accepted
                # accepted tokens spread over positions with a decaying share (sums to `accepted`)
                k = len(self.vllm_accepted_per_pos)
                weights = [0.5**i for i in range(k)]
                total = sum(weights)
                for i in range(k):
                    self.vllm_accepted_per_pos[i] += accepted * weights[i] / total

    def flush(self) -> None:
        with self.lock:
            self.spec_tokens = 0.0
            self.spec_forwards = 0.0


# --------------------------------------------------------------------------------------------- HTTP
class Handler(BaseHTTPRequestHandler):
    server_version = "fake_engine/1"
    protocol_version = "HTTP/1.1"
    state: State  # set on the class by main()
    counted = False  # this request is one of State.in_flight (until its response starts)
    in_flight = 0  # State.in_flight when this request arrived, itself included

    def log_message(self, fmt: str, *args: Any) -> None:  # one concise stderr line per request
        sys.stderr.write(f"fake_engine: {self.address_string()} {fmt % args}\n")

    # -- helpers
    def send_response(self, code: int, message: str | None = None) -> None:
        if self.counted:  # the client may send its next request as soon as this response is out
            self.counted = False
            with self.state.lock:
                self.state.in_flight -= 1
        super().send_response(code, message)

    def _send_json(self, status: int, obj: Any) -> None:
        body = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_text(self, status: int, text: str, ctype: str = "text/plain; charset=utf-8") -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, etype: str = "invalid_request_error") -> None:
        self._send_json(status, {"object": "error", "message": message, "type": etype, "code": status,
                                 "error": {"message": message, "type": etype, "code": status}})

    def _read_json(self) -> Any:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        return json.loads(raw.decode("utf-8") or "{}")

    def _hang_if_needed(self) -> None:
        if self.state.hanging:
            while True:
                time.sleep(3600)

    # -- dispatch
    def do_GET(self) -> None:  # noqa: N802
        st, cfg = self.state, self.state.cfg
        self._hang_if_needed()
        path = self.path.split("?", 1)[0]
        t = time.time()
        if path == "/health" or path == "/health_generate":
            if st.ready():
                self._send_text(200, "")
            else:
                self._send_json(503, {"status": "starting"})
        elif not st.ready():
            self._send_json(503, {"status": "starting"})
        elif path == "/v1/models":
            self._send_json(200, {"object": "list", "data": [{
                "id": cfg.model, "object": "model", "created": int(st.started_wall), "owned_by": cfg.flavor,
                "root": cfg.model, "parent": None, "max_model_len": cfg.max_model_len}]})
        elif path == "/version":
            self._send_json(200, {"version": "0.5.12-fake" if cfg.flavor == "sglang" else "0.22.0-fake"})
        elif cfg.flavor == "sglang" and path in ("/server_info", "/get_server_info"):
            with st.lock:
                avg = st.spec_tokens / st.spec_forwards if st.spec_forwards else None
            internal = {"last_gen_throughput": 0.0, "memory_usage": {}}
            if cfg.spec_accept_length:
                internal["avg_spec_accept_length"] = avg if avg is not None else 0.0
            self._send_json(200, {"model_path": cfg.model, "served_model_name": cfg.model, "port": cfg.port,
                                  "speculative_algorithm": "NEXTN" if cfg.spec_accept_length else None,
                                  "internal_states": [internal], "version": "0.5.12-fake"})
        elif cfg.flavor == "sglang" and path == "/get_model_info":
            self._send_json(200, {"model_path": cfg.model, "tokenizer_path": cfg.model, "is_generation": True})
        elif cfg.flavor == "vllm" and path == "/metrics":
            self._send_text(200, self._prometheus(), "text/plain; version=0.0.4; charset=utf-8")
        else:
            self._error(404, f"not found: {path}")
        st.log({"t": t, "method": "GET", "path": path, "ready": st.ready()})

    def do_POST(self) -> None:  # noqa: N802
        st, cfg = self.state, self.state.cfg
        self._hang_if_needed()
        path = self.path.split("?", 1)[0]
        t = time.time()
        try:
            body = self._read_json()
        except (ValueError, UnicodeDecodeError) as exc:
            self._error(400, f"invalid JSON body: {exc}")
            return
        if not st.ready():
            self._send_json(503, {"status": "starting"})
            return
        if path in ("/v1/completions", "/v1/chat/completions"):
            with st.lock:
                st.gen_requests += 1
                n = st.gen_requests
                st.in_flight += 1
                self.counted, self.in_flight = True, st.in_flight
                if cfg.crash_after_requests is not None and n > cfg.crash_after_requests:
                    sys.stderr.write(f"fake_engine: crashing on generation request {n} (--crash-after-requests "
                                     f"{cfg.crash_after_requests})\n")
                    sys.stderr.flush()
                    os._exit(CRASH_AFTER_REQUESTS_EXIT)
                if cfg.hang_after_requests is not None and n > cfg.hang_after_requests:
                    st.hanging = True
                    sys.stderr.write(f"fake_engine: hanging from generation request {n} on\n")
                    sys.stderr.flush()
            self._hang_if_needed()
            if n <= cfg.transient_errors:
                st.log({"t": t, "method": "POST", "path": path, "status": 503, "transient": True})
                self._error(503, "transient overload (fake)", "service_unavailable")
                return
            self._generate(path, body, t)
        elif path in ("/start_profile", "/stop_profile"):
            self._profile(path == "/start_profile", t, body)
        elif cfg.flavor == "sglang" and path == "/flush_cache":
            st.flush()
            self._send_text(200, "Cache flushed.\nPlease check backend logs for more details. "
                                 "(When there are running or waiting requests, the operation will not be performed.)\n")
            st.log({"t": t, "method": "POST", "path": path})
        else:
            self._error(404, f"not found: {path}")

    def _profile(self, start: bool, t: float, body: Any = None) -> None:
        """Like the engines: the profiler's directory comes from SGLANG_TORCH_PROFILER_DIR (sglang flavour) or
        --profiler-config's torch_profiler_dir (vllm flavour); stop writes one gzipped Chrome trace per rank
        (two ranks) whose kernel events scale with the tokens served while profiling; the extend attention kernel's
        time is split over --profile-attention-launches launches."""
        st, cfg = self.state, self.state.cfg
        if cfg.flavor == "sglang":
            pdir = os.environ.get("SGLANG_TORCH_PROFILER_DIR")
        else:
            pdir = (json.loads(cfg.profiler_config) if cfg.profiler_config else {}).get("torch_profiler_dir")
        if not pdir:
            self._error(400, "Profiling is not enabled (fake)")
            return
        with st.lock:
            if start:
                st.profiling = True
                st.prof = {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0}
            elif not st.profiling:
                self._error(400, "profiling is not started (fake)")
                return
            else:
                st.profiling = False
                prof = dict(st.prof)
        st.log({"t": t, "method": "POST", "path": "/start_profile" if start else "/stop_profile", "body": body})
        if not start and cfg.stop_profile_delay:
            time.sleep(cfg.stop_profile_delay)
        if not start:
            os.makedirs(pdir, exist_ok=True)
            for rank in (0, 1):
                scale = 1 + rank  # rank 1's trace differs, so a summary of the wrong rank shows
                ev = [{"ph": "X", "cat": "cpu_op", "name": "aten::mm", "ts": 0, "dur": 999999}]
                ts = 0
                for name, per_token, key, n in (("fake_extend_attention_fwd_kernel", 3.0, "prompt_tokens",
                                                 cfg.profile_attention_launches),
                                                ("nvjet_tst_gemm_fake", 2.0, "prompt_tokens", 1),
                                                ("fake_decode_attention_kernel", 5.0, "completion_tokens", 1),
                                                ("fused_add_rmsnorm_fake", 1.0, "completion_tokens", 1)):
                    for i in range(n):  # the time split evenly over n launches, each with its grid
                        dur = per_token * prof[key] * scale / n
                        ev.append({"ph": "X", "cat": "kernel", "name": name, "ts": ts, "dur": dur,
                                   "args": {"grid": [1 + rank, 16, i]}})
                        ts += dur
                name = f"fake-TP-{rank}.trace.json.gz" if cfg.flavor == "sglang" else f"fake_rank{rank}.pt.trace.json.gz"
                with gzip.open(os.path.join(pdir, name), "wt", encoding="utf-8") as fh:
                    json.dump({"traceEvents": ev}, fh)
        self._send_json(200, {"status": "ok", "profiling": start})

    # -- generation
    def _generate(self, path: str, body: dict, t: float) -> None:
        st, cfg = self.state, self.state.cfg
        chat = path.endswith("/chat/completions")
        model = body.get("model")
        if model is not None and model != cfg.model:
            self._error(404, f"The model `{model}` does not exist.", "NotFoundError")
            return
        if chat:
            if not isinstance(body.get("messages"), list) or not body["messages"]:
                self._error(400, "messages must be a non-empty list")
                return
            prompt = chat_prompt(body["messages"])
            max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        else:
            prompt = body.get("prompt")
            if isinstance(prompt, list):
                prompt = " ".join(str(p) for p in prompt)
            if not isinstance(prompt, str):
                self._error(400, "prompt must be a string")
                return
            max_tokens = body.get("max_tokens", 16)
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 0):
            self._error(400, f"max_tokens must be a non-negative integer, got {max_tokens!r}")
            return
        if "[[fake:bad-request]]" in prompt:
            self._error(400, "bad request requested by the prompt (fake)")
            return
        if "[[fake:error]]" in prompt:
            self._error(500, "internal error requested by the prompt (fake)", "InternalServerError")
            return
        top_n = body.get("top_logprobs") if chat else None
        if top_n is not None and (not isinstance(top_n, int) or top_n < 0 or top_n > cfg.max_top_logprobs):
            self._error(400, f"top_logprobs must be an integer in 0..{cfg.max_top_logprobs}, got {top_n!r} (fake)")
            st.log({"t": t, "method": "POST", "path": path, "status": 400, "top_logprobs": top_n})
            return
        words, finish = reply_words(prompt, cfg, max_tokens, bool(body.get("ignore_eos")))
        pieces = join_words(words)
        text = "".join(pieces)
        n_prompt = len(prompt.split()) + cfg.prompt_token_offset
        usage = {"prompt_tokens": n_prompt, "completion_tokens": len(words), "total_tokens": n_prompt + len(words)}
        want_logprobs = bool(body.get("logprobs")) if chat else body.get("logprobs") is not None
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{_h('rid', prompt, t) & 0xFFFFFFFFFFFF:012x}"
        created = int(t)
        st.log({"t": t, "method": "POST", "path": path, "status": 200, "model": model,
                "max_tokens": max_tokens, "stream": bool(body.get("stream")),
                "temperature": body.get("temperature"), "top_p": body.get("top_p"),
                "logprobs": body.get("logprobs"), "top_logprobs": top_n,
                "prompt_sha256": hashlib.sha256(prompt.encode()).hexdigest(),
                "prompt_tokens": usage["prompt_tokens"], "completion_tokens": usage["completion_tokens"],
                "finish_reason": finish, "in_flight": self.in_flight})
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            lp_items = logprob_items(prompt, words, cfg, top_n) if (chat and want_logprobs) else None
            self._stream(chat, rid, created, pieces, finish, usage, include_usage, lp_items)
        else:
            if cfg.token_delay:
                time.sleep(cfg.token_delay * len(words))
            if chat:
                choice: dict = {"index": 0, "message": {"role": "assistant", "content": text},
                                "finish_reason": finish, "logprobs": None}
                if want_logprobs:
                    choice["logprobs"] = {"content": logprob_items(prompt, words, cfg, top_n)}
                obj = {"id": rid, "object": "chat.completion", "created": created, "model": cfg.model,
                       "choices": [choice], "usage": usage}
            else:
                choice = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
                if want_logprobs:
                    choice["logprobs"] = {"tokens": pieces, "token_logprobs": [0.0] * len(pieces),
                                          "text_offset": _offsets(pieces), "top_logprobs": None}
                obj = {"id": rid, "object": "text_completion", "created": created, "model": cfg.model,
                       "choices": [choice], "usage": usage}
            self._send_json(200, obj)
        st.account(usage["prompt_tokens"], usage["completion_tokens"])

    def _stream(self, chat: bool, rid: str, created: int, pieces: list[str], finish: str, usage: dict,
                include_usage: bool, lp_items: list[dict] | None) -> None:
        cfg = self.state.cfg
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        obj_name = "chat.completion.chunk" if chat else "text_completion"

        def chunk(choices: list, usage_obj: dict | None = None) -> None:
            obj = {"id": rid, "object": obj_name, "created": created, "model": cfg.model, "choices": choices}
            if usage_obj is not None or include_usage:
                obj["usage"] = usage_obj
            self.wfile.write(f"data: {json.dumps(obj)}\n\n".encode())
            self.wfile.flush()

        try:
            if chat:
                chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None,
                        "logprobs": None}])
            for i, p in enumerate(pieces):
                if cfg.token_delay:
                    time.sleep(cfg.token_delay)
                last = i == len(pieces) - 1
                if chat:
                    c: dict = {"index": 0, "delta": {"content": p}, "finish_reason": finish if last else None,
                               "logprobs": None}
                    if lp_items is not None:
                        c["logprobs"] = {"content": [lp_items[i]]}
                else:
                    c = {"index": 0, "text": p, "finish_reason": finish if last else None, "logprobs": None}
                chunk([c])
            if not pieces:
                chunk([{"index": 0, "delta": {"content": ""}, "finish_reason": finish, "logprobs": None} if chat
                       else {"index": 0, "text": "", "finish_reason": finish, "logprobs": None}])
            if include_usage:
                chunk([], usage)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _prometheus(self) -> str:
        st, cfg = self.state, self.state.cfg
        lab = f'engine="0",model_name="{cfg.model}"'
        with st.lock:
            lines = [
                "# HELP vllm:num_requests_running Number of requests in model execution batches.",
                "# TYPE vllm:num_requests_running gauge",
                f"vllm:num_requests_running{{{lab}}} 0.0",
                "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.",
                "# TYPE vllm:prompt_tokens_total counter",
                f"vllm:prompt_tokens_total{{{lab}}} {float(st.prompt_tokens_total)}",
                "# HELP vllm:generation_tokens_total Number of generation tokens processed.",
                "# TYPE vllm:generation_tokens_total counter",
                f"vllm:generation_tokens_total{{{lab}}} {float(st.generation_tokens_total)}",
                "# HELP vllm:request_success_total Count of successfully processed requests.",
                "# TYPE vllm:request_success_total counter",
                f'vllm:request_success_total{{{lab},finished_reason="stop"}} {float(st.request_success_total)}',
            ]
            if cfg.spec_accept_length:
                lines += [
                    "# HELP vllm:spec_decode_num_drafts_total Number of spec decoding drafts.",
                    "# TYPE vllm:spec_decode_num_drafts_total counter",
                    f"vllm:spec_decode_num_drafts_total{{{lab}}} {st.vllm_drafts}",
                    "# HELP vllm:spec_decode_num_draft_tokens_total Number of draft tokens.",
                    "# TYPE vllm:spec_decode_num_draft_tokens_total counter",
                    f"vllm:spec_decode_num_draft_tokens_total{{{lab}}} {st.vllm_draft_tokens}",
                    "# HELP vllm:spec_decode_num_accepted_tokens_total Number of accepted tokens.",
                    "# TYPE vllm:spec_decode_num_accepted_tokens_total counter",
                    f"vllm:spec_decode_num_accepted_tokens_total{{{lab}}} {st.vllm_accepted}",
                    "# HELP vllm:spec_decode_num_accepted_tokens_per_pos_total Accepted tokens per draft position.",
                    "# TYPE vllm:spec_decode_num_accepted_tokens_per_pos_total counter",
                ]
                for i, v in enumerate(st.vllm_accepted_per_pos):
                    lines.append(f'vllm:spec_decode_num_accepted_tokens_per_pos_total{{{lab},position="{i}"}} {v}')
        return "\n".join(lines) + "\n"


def _offsets(pieces: list[str]) -> list[int]:
    out, pos = [], 0
    for p in pieces:
        out.append(pos)
        pos += len(p)
    return out


# --------------------------------------------------------------------------------------------- launcher
class Launched:
    """A fake engine running as a subprocess (see :func:`launch`)."""

    def __init__(self, proc: "subprocess.Popen[bytes]", port: int, stderr_path: str, request_log: str) -> None:
        self.proc = proc
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.stderr_path = stderr_path
        self.request_log = request_log

    def stderr(self) -> str:
        with open(self.stderr_path, encoding="utf-8", errors="replace") as fh:
            return fh.read()

    def requests(self) -> list[dict]:
        with open(self.request_log, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def max_in_flight(self) -> int:
        """The most generation requests the server was working on at once (from the request log)."""
        return max((q.get("in_flight", 0) for q in self.requests() if q.get("method") == "POST"), default=0)

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return self.proc.returncode


def wait_healthy(base_url: str, timeout: float = 15.0, proc: "subprocess.Popen[bytes] | None" = None) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"fake engine exited with {proc.returncode} before becoming healthy")
        try:
            with urllib.request.urlopen(base_url + "/health", timeout=1.0) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"fake engine at {base_url} not healthy after {timeout}s")


@contextlib.contextmanager
def launch(*args: str, workdir: str | None = None, wait: bool = True, timeout: float = 15.0):
    """Start ``python tests/fake_engine.py --port 0 ARGS...`` and yield a :class:`Launched`; SIGTERM on exit.

    ``wait=False`` returns as soon as the port is bound (for startup-delay / crash tests).
    """
    workdir = workdir or tempfile.mkdtemp(prefix="fake_engine-")
    port_file = os.path.join(workdir, f"port-{time.monotonic_ns()}")
    stderr_path = port_file + ".stderr"
    request_log = port_file + ".requests.jsonl"
    cmd = [sys.executable, os.path.abspath(__file__), "--port", "0", "--port-file", port_file,
           "--request-log", request_log, *args]
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + timeout
        while not os.path.exists(port_file):
            if proc.poll() is not None:
                raise RuntimeError(f"fake engine exited with {proc.returncode}: {open(stderr_path).read()}")
            if time.monotonic() > deadline:
                raise TimeoutError("fake engine did not bind a port")
            time.sleep(0.02)
        with open(port_file) as fh:
            port = int(fh.read())
        eng = Launched(proc, port, stderr_path, request_log)
        if wait:
            wait_healthy(eng.base_url, timeout, proc)
        yield eng
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


# --------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="OpenAI-compatible stand-in for SGLang/vLLM (no engine, no GPU).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="0 picks a free port (see --port-file)")
    p.add_argument("--port-file", default=None, help="write the bound port here once listening")
    p.add_argument("--model", default="fake-model", help="served model name")
    p.add_argument("--flavor", choices=("sglang", "vllm"), default="sglang")
    p.add_argument("--startup-delay", type=float, default=0.0, help="seconds of 503 from /health before ready")
    p.add_argument("--crash-on-start", action="store_true")
    p.add_argument("--crash-after-requests", type=int, default=None)
    p.add_argument("--hang-after-requests", type=int, default=None)
    p.add_argument("--transient-errors", type=int, default=0)
    p.add_argument("--answer-mode", choices=("text", "echo", "mmlu", "mmlu-none"), default="text")
    p.add_argument("--answer-seed", type=int, default=0)
    p.add_argument("--answer-flip-rate", type=float, default=0.0)
    p.add_argument("--diverge-rate", type=float, default=0.0)
    p.add_argument("--divergence-margin", type=float, default=2.0,
                   help="nats between the chosen token and the runner-up listed in top_logprobs (see the module doc)")
    p.add_argument("--max-top-logprobs", type=int, default=20, help="top_logprobs above this get HTTP 400")
    p.add_argument("--token-delay", type=float, default=0.0, help="seconds per generated token")
    p.add_argument("--spec-accept-length", type=float, default=0.0,
                   help="simulated mean acceptance length (0 = no speculative decoding)")
    p.add_argument("--num-speculative-tokens", type=int, default=3)
    p.add_argument("--max-model-len", type=int, default=8192)
    p.add_argument("--prompt-token-offset", type=int, default=0,
                   help="added to usage.prompt_tokens (an engine that renders the prompt with one more token, e.g. a "
                        "second BOS)")
    p.add_argument("--request-log", default=None)
    p.add_argument("--profiler-config", default=None, help="vLLM's JSON profiler configuration (torch_profiler_dir)")
    p.add_argument("--stop-profile-delay", type=float, default=0.0,
                   help="seconds /stop_profile takes before it answers (SGLang writing a trace with stacks)")
    p.add_argument("--profile-attention-launches", type=int, default=1,
                   help="launches of the fake extend attention kernel per trace (e.g. layers x forwards)")
    p.add_argument("--slow-stop", type=float, default=0.0, help="seconds between a stop signal and shutting down "
                   "(a server that takes long to stop, as vLLM with tensor parallelism)")
    # Accept and ignore engine flags so a launcher can pass its usual command line through.
    args, unknown = p.parse_known_args(argv)
    args.ignored_args = unknown
    return args


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    server = ThreadingHTTPServer((cfg.host, cfg.port), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    cfg.port = server.server_address[1]
    state = State(cfg)
    Handler.state = state
    if cfg.port_file:
        tmp = cfg.port_file + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(str(cfg.port))
        os.replace(tmp, cfg.port_file)
    sys.stderr.write(
        f"fake_engine: listening on http://{cfg.host}:{cfg.port} flavor={cfg.flavor} model={cfg.model} "
        f"pid={os.getpid()} startup_delay={cfg.startup_delay} answer_mode={cfg.answer_mode} "
        f"request_log={state.log_path}" + (f" ignored_args={cfg.ignored_args}" if cfg.ignored_args else "") + "\n")
    sys.stderr.flush()

    stopping = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        if stopping.is_set():
            return
        stopping.set()
        sys.stderr.write(f"fake_engine: received signal {signum}, shutting down\n")
        sys.stderr.flush()

        def _shutdown() -> None:
            time.sleep(cfg.slow_stop)
            server.shutdown()

        threading.Thread(target=_shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    def _startup() -> None:
        if cfg.startup_delay > 0:
            time.sleep(cfg.startup_delay)
        if stopping.is_set():
            return
        if cfg.crash_on_start:
            sys.stderr.write("fake_engine: RuntimeError: simulated failure while loading the model "
                             "(--crash-on-start)\n")
            sys.stderr.flush()
            os._exit(CRASH_ON_START_EXIT)
        ready_line = ("The server is fired up and ready to roll!" if cfg.flavor == "sglang"
                      else "Application startup complete.")
        sys.stderr.write(f"fake_engine: ready ({ready_line})\n")
        sys.stderr.flush()

    threading.Thread(target=_startup, daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        state.log_fh.close()
    sys.stderr.write("fake_engine: stopped\n")
    sys.stderr.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
