"""Next-token log-probabilities from transformers, the reference a greedy-parity divergence is read against.

Where two engines' greedy answers part at token ``i``, both saw the same prompt and the same ``i`` tokens before
it, and each picked another token. On random-init weights the logits are nearly flat, so that may be rounding
(fused kernels, all-reduce order, batch shapes) flipping a near-tie, or one engine computing something else.
This module asks transformers' own implementation of the checkpoint, in float32, for the log-probabilities of
the two candidates after exactly that context: which of the two choices the reference prefers, by how much, and
what its own top tokens are.

It needs torch and transformers, which the harness itself does not depend on: run it with an engine
environment's interpreter (``harness parity-reference`` does that). It imports nothing from the harness but
``harness.weights_init`` (which imports nothing either).

    python -m harness.reference_logprobs --model-dir DIR --requests REQUESTS.json [--device cuda] [--dtype float32]
        [--control-dtype bfloat16|none] [--top 5]

REQUESTS.json: ``[{"key", "messages": chat messages, "prefix": [token strings], "candidates": [token strings]}]``.
The prompt is rendered with the directory's chat template (``apply_chat_template``, generation prompt added) and
tokenized by its tokenizer, the prefix and candidates are looked up in its vocabulary (engine token strings are
vocabulary entries for the harness's synthetic tokenizers). The weights are loaded in the checkpoint's dtype
(bfloat16) and moved to the device and cast to ``--dtype`` tensor by tensor, so the device never holds both
copies (31B: ~125 GB in float32 fits one H200): float32 computes with the same weights without bf16 rounding.
Prints one line ``REFERENCE_LOGPROBS {json}`` with the versions, the timings and one result per request:
``{"key", "prompt_tokens", "unknown": [token strings not in the vocabulary], "candidates": {token: {"id",
"logprob", "rank"}}, "top": [[token, logprob], ...]}`` (rank 0 = the reference's greedy choice).

The control (``--control-dtype bfloat16``, the default under float32): after the float32 pass the same model is cast
to bfloat16 in place (exact: the float32 weights are the checkpoint's bf16 values) and every request runs again.
Each result gets ``"control": {"dtype", "top_token", "top_logprob", "top_ref_logprob", "top_ref_rank",
"candidates": {token: logprob}}``: the bf16 forward's own greedy token, its bf16 logprob, and where float32 puts it.
That is the rounding floor of the checkpoint: an engine computing in bf16 can be no closer to float32 than
transformers' own bf16 forward is. On random-init weights it is far (E2B depth, CPU, 2026-11-27: bf16 and float32
picked the same first token for 0 of 20 parity prompts, docs/random-init-floor/).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

MARK = "REFERENCE_LOGPROBS "


def _prompt_ids(tok, messages) -> list[int]:
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if hasattr(ids, "keys") and "input_ids" in ids:  # transformers may return a BatchEncoding
        ids = ids["input_ids"]
    if ids and isinstance(ids[0], list):
        ids = ids[0]
    return [int(i) for i in ids]


def _lookup(vocab: dict[str, int], tokens: list[str]) -> tuple[list[int | None], list[str]]:
    ids = [vocab.get(t) for t in tokens]
    return ids, [t for t, i in zip(tokens, ids) if i is None]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.reference_logprobs")
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--requests", required=True)
    ap.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    ap.add_argument("--control-dtype", default=None, choices=("bfloat16", "none"),
                    help="a second pass in this dtype (default: bfloat16 when --dtype is float32, else none)")
    ap.add_argument("--top", type=int, default=5)
    args = ap.parse_args(argv)
    control = args.control_dtype or ("bfloat16" if args.dtype == "float32" else "none")

    import torch
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    from harness.weights_init import _model_class

    t0 = time.monotonic()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    requests = json.loads(Path(args.requests).read_text())
    config = AutoConfig.from_pretrained(args.model_dir)
    tok = AutoTokenizer.from_pretrained(args.model_dir)
    model = _model_class(config).from_pretrained(args.model_dir, dtype=torch.bfloat16)
    model = model.to(device=device, dtype=getattr(torch, args.dtype)).eval()  # per tensor: no second copy
    load_s = time.monotonic() - t0
    vocab = tok.get_vocab()
    inv = {i: t for t, i in vocab.items()}
    results, inputs, ref_lps = [], [], []
    with torch.inference_mode():
        def next_logprobs(ids: list[int]):
            logits = model(input_ids=torch.tensor([ids], device=device), logits_to_keep=1).logits[0, -1].float()
            return torch.log_softmax(logits, dim=-1)

        for r in requests:
            prompt = _prompt_ids(tok, r["messages"])
            prefix, unknown = _lookup(vocab, list(r["prefix"]))
            cand_ids, cand_unknown = _lookup(vocab, list(r["candidates"]))
            res = {"key": r["key"], "prompt_tokens": len(prompt), "unknown": unknown + cand_unknown}
            results.append(res)
            if unknown:  # the context cannot be rebuilt
                continue
            lp = next_logprobs(prompt + prefix)
            inputs.append((res, prompt + prefix, list(zip(r["candidates"], cand_ids))))
            ref_lps.append(lp.cpu())
            res["candidates"] = {}
            for t, i in inputs[-1][2]:
                if i is not None:
                    v = lp[i]
                    res["candidates"][t] = {"id": i, "logprob": round(float(v), 6), "rank": int((lp > v).sum())}
            vals, idx = torch.topk(lp, k=min(args.top, lp.numel()))
            res["top"] = [[inv.get(int(i), str(int(i))), round(float(v), 6)] for v, i in zip(vals, idx)]
        if control != "none" and inputs:
            model = model.to(dtype=getattr(torch, control))  # per tensor, in place of the float32 copy
            for (res, ids, cands), ref in zip(inputs, ref_lps):
                lp = next_logprobs(ids).cpu()
                t = int(lp.argmax())
                res["control"] = {"dtype": control, "top_token": inv.get(t, str(t)),
                                  "top_logprob": round(float(lp[t]), 6), "top_ref_logprob": round(float(ref[t]), 6),
                                  "top_ref_rank": int((ref > ref[t]).sum()),
                                  "candidates": {c: round(float(lp[i]), 6) for c, i in cands if i is not None}}
    out = {"transformers": transformers.__version__, "torch": torch.__version__, "device": device,
           "dtype": args.dtype, "control_dtype": control, "architecture": type(model).__name__,
           "load_s": round(load_s, 1), "total_s": round(time.monotonic() - t0, 1), "results": results}
    sys.stdout.write(MARK + json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
