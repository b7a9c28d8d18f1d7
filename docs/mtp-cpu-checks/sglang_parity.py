"""Same SGLang config path with the remote-code class (trust_remote_code=True) and, on transformers >= 5.8.0,
with the built-in Gemma4AssistantConfig (trust_remote_code=False): the values SGLang derives must match."""
import json, os, sys
T, A = sys.argv[1], sys.argv[2]
import transformers
from sglang.srt.utils.hf_transformers_utils import get_config
from sglang.srt.configs.model_config import ModelConfig
os.environ["SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN"] = "1"
def dump(trust):
    cfg = get_config(A, trust_remote_code=trust)
    d = ModelConfig(A, trust_remote_code=trust, context_length=262144, is_draft_model=True)
    tc = d.hf_text_config
    keys = ["head_dim", "swa_head_dim", "num_key_value_heads", "swa_num_key_value_heads", "v_head_dim", "swa_v_head_dim",
            "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "sliding_window",
            "layer_types", "num_kv_shared_layers", "attention_k_eq_v", "tie_word_embeddings", "rope_parameters",
            "max_position_embeddings", "final_logit_softcapping", "hidden_size_per_layer_input", "vocab_size_per_layer_input",
            "enable_moe_block", "use_double_wide_mlp", "rms_norm_eps", "hidden_activation", "global_head_dim", "num_global_key_value_heads"]
    out = {"class": type(cfg).__module__.split(".")[0] + "." + type(cfg).__name__,
           "top": {k: getattr(cfg, k, "MISSING") for k in ["model_type", "architectures", "backbone_hidden_size", "use_ordered_embeddings",
                                                      "num_centroids", "centroid_intermediate_top_k", "tie_word_embeddings", "vocab_size"]},
           "text": {k: getattr(tc, k, "MISSING") for k in keys},
           "model_config": {k: getattr(d, k) for k in ["context_len", "head_dim", "vocab_size", "num_attention_heads", "is_multimodal",
                                                         "attention_arch", "is_hybrid_swa", "dtype"] if hasattr(d, k)}}
    out["model_config"]["total_kv_heads"] = d.get_total_num_kv_heads()
    return json.loads(json.dumps(out, default=str))
r = dump(True)
print(transformers.__version__, "remote code:", json.dumps(r, sort_keys=True))
from packaging.version import Version
if Version(transformers.__version__) >= Version("5.8.0"):
    n = dump(False)
    print("built-in:", n["class"])
    diffs = [(sec, k, r[sec][k], n[sec][k]) for sec in ("top", "text", "model_config") for k in r[sec] if r[sec][k] != n[sec][k]]
    for d in diffs:
        print("DIFF", *d)
    print("compared", sum(len(r[s]) for s in ("top", "text", "model_config")), "values:", len(diffs), "differ")
