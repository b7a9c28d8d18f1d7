"""Random-init degeneration experiments (CPU; docs/random-init-findings.md). A text-only Gemma4ForCausalLM built
from a `harness model synth` directory's text_config (widths/depth overridable), transformers' init from seed 0,
optionally the weights_init recipe, then greedy decoding of the parity prompts (synthetic tokenizer + chat template).

    python docs/random-init-checks/exp.py --model-dir DIR [--layers N] [--inter N] [--heads N] [--hidden N]
        [--experts N] [--fix none|postnorm-v1|c=X] [--n 20] [--tokens 16] [--max-prompt 200]
"""
import argparse, json, math, time, sys
import torch, yaml
from transformers import AutoTokenizer, Gemma4ForCausalLM
from transformers.models.gemma4.configuration_gemma4 import Gemma4TextConfig

ap = argparse.ArgumentParser()
ap.add_argument("--model-dir", required=True)
ap.add_argument("--layers", type=int, default=None)
ap.add_argument("--inter", type=int, default=None)
ap.add_argument("--moe-inter", type=int, default=None)
ap.add_argument("--experts", type=int, default=None)
ap.add_argument("--heads", type=int, default=None, help="num_attention_heads (kv heads scaled down with it)")
ap.add_argument("--hidden", type=int, default=None)
ap.add_argument("--vocab", type=int, default=None)
ap.add_argument("--fix", default="none")
ap.add_argument("--tokens", type=int, default=16)
ap.add_argument("--max-prompt", type=int, default=200)
ap.add_argument("--n", type=int, default=20)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--dtype", default="bfloat16")
ap.add_argument("--std", type=float, default=None, help="initializer_range")
args = ap.parse_args()

cfg = json.load(open(f"{args.model_dir}/config.json"))["text_config"]
if args.layers:
    L0 = cfg["num_hidden_layers"]
    lt = cfg["layer_types"]
    # keep the real pattern (period from the real list), cut/extend to N
    cfg["layer_types"] = [lt[i % len(lt)] for i in range(args.layers)]
    if cfg.get("num_kv_shared_layers"):
        cfg["num_kv_shared_layers"] = round(cfg["num_kv_shared_layers"] * args.layers / L0)
    cfg["num_hidden_layers"] = args.layers
if args.inter:
    cfg["intermediate_size"] = args.inter
if args.moe_inter:
    cfg["moe_intermediate_size"] = args.moe_inter
if args.experts:
    cfg["num_experts"] = args.experts
    cfg["top_k_experts"] = min(cfg["top_k_experts"], args.experts)
if args.heads:
    r = cfg["num_attention_heads"] // args.heads
    cfg["num_attention_heads"] = args.heads
    cfg["num_key_value_heads"] = max(1, cfg["num_key_value_heads"] // r)
    if cfg.get("num_global_key_value_heads"):
        cfg["num_global_key_value_heads"] = max(1, cfg["num_global_key_value_heads"] // r)
if args.hidden:
    cfg["hidden_size"] = args.hidden
if args.vocab:
    cfg["vocab_size"] = args.vocab
    cfg["vocab_size_per_layer_input"] = args.vocab
if args.std:
    cfg["initializer_range"] = args.std
config = Gemma4TextConfig(**{k: v for k, v in cfg.items() if k != "model_type"})
config._attn_implementation = "sdpa"
dtype = getattr(torch, args.dtype)
t0 = time.time()
torch.manual_seed(args.seed)
model = Gemma4ForCausalLM._from_config(config, dtype=dtype)
model.eval()
print(f"# init {time.time()-t0:.0f}s params={sum(p.numel() for p in model.parameters())/1e9:.2f}B "
      f"d={config.hidden_size} L={config.num_hidden_layers} inter={config.intermediate_size} heads={config.num_attention_heads} "
      f"vocab={config.vocab_size} std={config.initializer_range} fix={args.fix}", flush=True)

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
if args.fix != "none":
    from harness.weights_init import apply_recipe  # candidate, see weights_init.py
    if args.fix.startswith("c="):  # post-norm weight fixed by hand
        c = float(args.fix[2:])
        for layer in model.model.layers:
            for n in ["post_attention_layernorm", "post_feedforward_layernorm", "post_per_layer_input_norm"]:
                if getattr(layer, n, None) is not None:
                    getattr(layer, n).weight.data.fill_(c)
        info = {"c": c}
    else:
        info = apply_recipe(model, args.fix)
    print("# fix", json.dumps(info), flush=True)

tok = AutoTokenizer.from_pretrained(args.model_dir)
ps = yaml.safe_load(open(REPO / "scenarios/parity/prompts-v1.yaml"))["prompts"][: args.n]
prompts = []
for p in ps:
    msgs = p.get("messages") or [{"role": "user", "content": p["prompt"]}]
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    if len(ids) > args.max_prompt:
        ids = ids[: args.max_prompt - 3] + ids[-3:]
    prompts.append((p["id"], ids))

emb = model.model.embed_tokens.weight
answers = []
stats = {"nan": 0, "maxabs_logit": 0.0, "self_z": [], "first_eq_last": 0, "hid_rms": []}
t0 = time.time()
with torch.no_grad():
    for pid, ids in prompts:
        x = torch.tensor([ids])
        out = model(input_ids=x, use_cache=True, output_hidden_states=False)
        past = out.past_key_values
        logits = out.logits[0, -1].float()
        # z-score of the last prompt token's logit among all logits
        z = ((logits[ids[-1]] - logits.mean()) / logits.std()).item()
        stats["self_z"].append(round(z, 1))
        gen = []
        for step in range(args.tokens):
            if not torch.isfinite(logits).all():
                stats["nan"] += 1
            stats["maxabs_logit"] = max(stats["maxabs_logit"], logits.abs().max().item())
            nxt = int(logits.argmax())
            gen.append(nxt)
            out = model(input_ids=torch.tensor([[nxt]]), past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits = out.logits[0, -1].float()
        if gen[0] == ids[-1]:
            stats["first_eq_last"] += 1
        answers.append(gen)
        print(f"{pid:22s} len={len(ids):4d} last={ids[-1]:6d} self_z={z:5.1f} -> {gen}", flush=True)
distinct = len({tuple(a) for a in answers})
rep = sum(1 for a in answers if len(set(a)) == 1)
firsts = len({a[0] for a in answers})
uniq_frac = sum(len(set(a)) / len(a) for a in answers) / len(answers)
summary = dict(distinct_answers=distinct, n=len(answers), one_token_repeated=rep, distinct_first_tokens=firsts,
               mean_unique_token_frac=round(uniq_frac, 2), first_eq_last_prompt_token=stats["first_eq_last"],
               nonfinite_steps=stats["nan"], max_abs_logit=round(stats["maxabs_logit"], 2),
               self_z_median=sorted(stats["self_z"])[len(stats["self_z"]) // 2], gen_s=round(time.time() - t0))
print("SUMMARY", json.dumps(summary), flush=True)
