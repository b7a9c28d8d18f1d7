#!/usr/bin/env python3
"""A test double of ``vllm bench serve`` for CPU tests: same flags (the subset the harness passes), same result
JSON keys, stdlib only. It is a stand-in for the client's *interface*; no figure it produces is a claim about
any engine.

Extra flags for tests: ``--fake-fail-after N`` exits 1 after N requests without writing a result.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime


def one_request(url: str, body: dict, timeout: float) -> dict:
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    st = time.perf_counter()
    ttft = None
    last = st
    itls = []
    out_tokens = 0
    prompt_tokens = 0
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            for raw in resp:
                line = raw.decode().strip()
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                chunk = json.loads(payload)
                now = time.perf_counter()
                if chunk.get("choices"):
                    if ttft is None:
                        ttft = now - st
                    else:
                        itls.append(now - last)
                    last = now
                usage = chunk.get("usage")
                if usage:
                    out_tokens = usage.get("completion_tokens", out_tokens)
                    prompt_tokens = usage.get("prompt_tokens", prompt_tokens)
        return {"ok": True, "ttft": ttft or 0.0, "itl": itls, "latency": last - st, "output_len": out_tokens,
                "prompt_len": prompt_tokens, "error": ""}
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return {"ok": False, "ttft": 0.0, "itl": [], "latency": 0.0, "output_len": 0, "prompt_len": 0, "error": repr(exc)}


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    k = (len(values) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main(argv: list[str]) -> int:
    if argv[:1] == ["bench"]:
        argv = argv[1:]
    if argv[:1] == ["serve"]:
        argv = argv[1:]
    p = argparse.ArgumentParser()
    p.add_argument("--backend", default="openai")
    p.add_argument("--endpoint", default="/v1/completions")
    p.add_argument("--base-url", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--tokenizer")
    p.add_argument("--dataset-name", default="random")
    p.add_argument("--random-input-len", type=int, default=16)
    p.add_argument("--random-output-len", type=int, default=16)
    p.add_argument("--num-prompts", type=int, default=4)
    p.add_argument("--max-concurrency", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-result", action="store_true")
    p.add_argument("--save-detailed", action="store_true")
    p.add_argument("--result-dir", default=".")
    p.add_argument("--result-filename", default="result.json")
    p.add_argument("--metadata", nargs="*", default=[])
    p.add_argument("--fake-fail-after", type=int, default=None)
    args, _unknown = p.parse_known_args(argv)

    url = args.base_url.rstrip("/") + args.endpoint
    chat = "chat" in args.endpoint
    bodies = []
    for i in range(args.num_prompts):
        words = " ".join(f"w{(args.seed + i + j) % 1000}" for j in range(args.random_input_len))
        body = {"model": args.model, "stream": True, "stream_options": {"include_usage": True},
                "temperature": 0.0, "ignore_eos": True}
        if chat:
            body.update(messages=[{"role": "user", "content": words}], max_completion_tokens=args.random_output_len)
        else:
            body.update(prompt=words, max_tokens=args.random_output_len)
        bodies.append(body)

    done = []
    lock = threading.Lock()
    start = time.perf_counter()

    def task(b: dict) -> dict:
        r = one_request(url, b, timeout=60)
        with lock:
            done.append(r)
            if args.fake_fail_after is not None and len(done) > args.fake_fail_after:
                print("fake_bench_client: failing on purpose", file=sys.stderr, flush=True)
                import os

                os._exit(1)
        return r

    with ThreadPoolExecutor(max_workers=args.max_concurrency or len(bodies)) as ex:
        outs = list(ex.map(task, bodies))
    duration = time.perf_counter() - start
    ok = [o for o in outs if o["ok"]]
    ttfts = [o["ttft"] * 1000 for o in ok]
    tpots = [((o["latency"] - o["ttft"]) / (o["output_len"] - 1)) * 1000 for o in ok if o["output_len"] > 1]
    itls = [x * 1000 for o in ok for x in o["itl"]]
    e2els = [o["latency"] * 1000 for o in ok]
    total_in = sum(o["prompt_len"] for o in ok)
    total_out = sum(o["output_len"] for o in ok)
    result = {
        "date": datetime.now().strftime("%Y%m%d-%H%M%S"), "backend": args.backend, "model_id": args.model,
        "num_prompts": args.num_prompts, "request_rate": "inf", "max_concurrency": args.max_concurrency,
        "duration": duration, "completed": len(ok), "failed": len(outs) - len(ok),
        "total_input_tokens": total_in, "total_output_tokens": total_out,
        "request_throughput": len(ok) / duration, "output_throughput": total_out / duration,
        "total_token_throughput": (total_in + total_out) / duration, "max_output_tokens_per_s": 0.0,
    }
    for name, vals in (("ttft", ttfts), ("tpot", tpots), ("itl", itls), ("e2el", e2els)):
        result[f"mean_{name}_ms"] = statistics.fmean(vals) if vals else 0.0
        result[f"median_{name}_ms"] = statistics.median(vals) if vals else 0.0
        result[f"std_{name}_ms"] = statistics.pstdev(vals) if vals else 0.0
        for q in (50, 90, 99):
            result[f"p{q}_{name}_ms"] = pct(vals, q)
    for kv in args.metadata:
        k, _, v = kv.partition("=")
        result[k] = v
    if args.save_detailed:
        result.update(input_lens=[o["prompt_len"] for o in outs], output_lens=[o["output_len"] for o in outs],
                      ttfts=[o["ttft"] for o in outs], itls=[o["itl"] for o in outs],
                      generated_texts=["" for _ in outs], errors=[o["error"] for o in outs])
    if args.save_result:
        import os

        os.makedirs(args.result_dir, exist_ok=True)
        with open(os.path.join(args.result_dir, args.result_filename), "w") as fh:
            json.dump(result, fh)
    print(f"fake_bench_client: {len(ok)}/{len(outs)} ok in {duration:.2f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
