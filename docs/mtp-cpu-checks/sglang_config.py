"""SGLang 0.5.12's own config code on the synthetic assistant (CPU, transformers 5.6.0)."""
import copy, os, sys, traceback
T, A = sys.argv[1], sys.argv[2]
import transformers; print("transformers", transformers.__version__)
from sglang.srt.utils.hf_transformers_utils import get_config
cfg = get_config(A, trust_remote_code=True)
tc = cfg.text_config
print("get_config:", type(cfg).__module__ + "." + type(cfg).__name__, cfg.model_type, cfg.architectures)
print(" head-dim swap: head_dim", tc.head_dim, "swa_head_dim", tc.swa_head_dim, "num_kv", tc.num_key_value_heads,
      "swa_num_kv", tc.swa_num_key_value_heads, "v_head_dim", tc.v_head_dim, "swa_v_head_dim", tc.swa_v_head_dim)
print(" promoted to top level: vocab_size", cfg.vocab_size, "hidden_size", cfg.hidden_size, "num_kv_shared_layers", cfg.num_kv_shared_layers)
# what gemma4_mtp.Gemma4AssistantForCausalLM.__init__ reads (sglang/srt/models/gemma4_mtp.py:69-85,108,115)
t2 = copy.deepcopy(getattr(cfg, "text_config", cfg)); t2.num_kv_shared_layers = 0
print(" model reads: backbone_hidden_size", cfg.backbone_hidden_size, "use_ordered_embeddings", bool(getattr(cfg, "use_ordered_embeddings", False)),
      "centroid_intermediate_top_k", int(getattr(cfg, "centroid_intermediate_top_k", 32)), "num_centroids", int(cfg.num_centroids),
      "text vocab", t2.vocab_size, "text hidden", t2.hidden_size, "tie", t2.tie_word_embeddings, "sliding_window", t2.sliding_window,
      "deepcopy kv_shared", t2.num_kv_shared_layers, "original kv_shared", tc.num_kv_shared_layers)
from sglang.srt.server_args import _resolve_speculative_algorithm_alias
print("NEXTN ->", _resolve_speculative_algorithm_alias("NEXTN", A, trust_remote_code=True))
try:
    _resolve_speculative_algorithm_alias("NEXTN", A, trust_remote_code=False)
except Exception as e:
    print("without --trust-remote-code:", type(e).__name__, str(e).splitlines()[0][:160])
# the draft ModelConfig as FrozenKVMTPWorker builds it: context_length = the target's
from sglang.srt.configs.model_config import ModelConfig
tgt = ModelConfig(T, trust_remote_code=True)
print("target ModelConfig: context_len", tgt.context_len, "arch", tgt.hf_config.architectures, "class", type(tgt.hf_config).__module__)
tgt0 = ModelConfig(T, trust_remote_code=False)
print("target with/without trust_remote_code: same class", type(tgt.hf_config) is type(tgt0.hf_config), "same dict", tgt.hf_config.to_dict() == tgt0.hf_config.to_dict(), "same context_len", tgt.context_len == tgt0.context_len)
for env in ("0", "1"):
    os.environ["SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN"] = env
    try:
        d = ModelConfig(A, trust_remote_code=True, context_length=tgt.context_len, is_draft_model=True)
        print(f"draft ModelConfig (env={env}): context_len", d.context_len, "draft max_position_embeddings", d.hf_text_config.max_position_embeddings,
              "head_dim", d.head_dim, "num_kv(full)", d.get_total_num_kv_heads(), "vocab", d.vocab_size, "is_multimodal", d.is_multimodal)
    except Exception as e:
        print(f"draft ModelConfig (env={env}):", type(e).__name__, str(e)[:200])
