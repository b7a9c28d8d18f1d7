"""vLLM's draft ModelConfig with the remote-code class and (transformers >= 5.8.0) with the built-in class."""
import json, sys
T, A = sys.argv[1], sys.argv[2]
import transformers
from vllm.config import ModelConfig
from vllm.config.speculative import SpeculativeConfig
def dump(trust):
    m = ModelConfig(model=A, runner="draft", tokenizer=T, trust_remote_code=trust, dtype="bfloat16", seed=0,
                    spec_target_max_model_len=262144, hf_overrides=SpeculativeConfig.hf_config_override)
    c, tc = m.hf_config, m.hf_text_config
    out = {"class": type(c).__module__.split(".")[0] + "." + type(c).__name__,
           "model_config": {"architectures": m.architectures, "max_model_len": m.max_model_len, "head_size": m.get_head_size(),
                            "vocab": m.get_vocab_size(), "hidden": m.get_hidden_size(), "sliding_window": m.get_sliding_window(),
                            "dtype": str(m.dtype), "is_multimodal": m.is_multimodal_model,
                            "num_kv_heads": m.get_total_num_kv_heads(), "num_layers": m.get_total_num_hidden_layers() if hasattr(m, "get_total_num_hidden_layers") else None},
           "top": {k: getattr(c, k, "MISSING") for k in ["model_type", "architectures", "n_predict", "backbone_hidden_size", "use_ordered_embeddings",
                                                    "num_centroids", "centroid_intermediate_top_k", "tie_word_embeddings"]},
           "text": {k: getattr(tc, k, "MISSING") for k in ["hidden_size", "vocab_size", "num_hidden_layers", "head_dim", "global_head_dim",
                    "num_attention_heads", "num_key_value_heads", "num_global_key_value_heads", "max_position_embeddings", "attention_bias",
                    "rms_norm_eps", "sliding_window", "rope_parameters", "intermediate_size", "hidden_activation", "final_logit_softcapping",
                    "num_kv_shared_layers", "layer_types", "attention_k_eq_v", "tie_word_embeddings"]}}
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
