"""vLLM 0.22.0's own draft-config path on the synthetic assistant (CPU, transformers 5.6.0)."""
import sys, traceback
T, A = sys.argv[1], sys.argv[2]
import transformers; print("transformers", transformers.__version__)
from vllm.transformers_utils.config import get_config, get_hf_text_config, HFConfigParser
from vllm.config.speculative import SpeculativeConfig
# HFConfigParser.parse with the callable hf_overrides, as ModelConfig passes it for the draft
cd, cfg = HFConfigParser().parse(A, trust_remote_code=True, hf_overrides=SpeculativeConfig.hf_config_override)
print("HFConfigParser.parse:", type(cfg).__module__ + "." + type(cfg).__name__, cfg.model_type)
try:
    HFConfigParser().parse(A, trust_remote_code=False, hf_overrides=SpeculativeConfig.hf_config_override)
except Exception as e:
    print("without --trust-remote-code:", type(e).__name__, str(e).splitlines()[0][:160])
# get_config as ModelConfig.__post_init__ calls it for the draft (hf_overrides_fn = SpeculativeConfig.hf_config_override)
cfg = get_config(A, True, None, None, "auto", hf_overrides_kw=None, hf_overrides_fn=SpeculativeConfig.hf_config_override)
tc = get_hf_text_config(cfg)
print("get_config:", type(cfg).__name__, "model_type", cfg.model_type, "architectures", cfg.architectures, "n_predict", cfg.n_predict)
print(" text_config:", type(tc).__name__, "num_kv_shared_layers", tc.num_kv_shared_layers, "(set to 0 by hf_config_override)")
# what vllm/model_executor/models/gemma4_mtp.py reads (lines 351-360, 501-545) and v1/spec_decode/gemma4.py:284-305
print(" model reads: backbone_hidden_size", getattr(cfg, "backbone_hidden_size", tc.hidden_size), "hidden", tc.hidden_size,
      "vocab", tc.vocab_size, "layers", tc.num_hidden_layers, "tie", getattr(cfg, "tie_word_embeddings", True),
      "use_ordered_embeddings", getattr(cfg, "use_ordered_embeddings", False), "num_centroids", getattr(cfg, "num_centroids", 2048),
      "top_k", getattr(cfg, "centroid_intermediate_top_k", 32), "softcap", getattr(tc, "final_logit_softcapping", None),
      "get_text_config() is text_config", cfg.get_text_config() is cfg.text_config, "layer_types", getattr(cfg.get_text_config(), "layer_types", []))
print(" decoder layer reads: head_dim", tc.head_dim, "global_head_dim", getattr(tc, "global_head_dim", tc.head_dim), "heads", tc.num_attention_heads,
      "kv", tc.num_key_value_heads, "max_pos", tc.max_position_embeddings, "attention_bias", tc.attention_bias, "rms_norm_eps", tc.rms_norm_eps,
      "sliding_window", tc.sliding_window, "rope keys", sorted(tc.rope_parameters), "intermediate", tc.intermediate_size, "act", tc.hidden_activation,
      "attn_logit_softcapping", getattr(tc, "attn_logit_softcapping", None))
# the target with and without trust_remote_code
t1 = get_config(T, True); t0 = get_config(T, False)
print("target with/without trust_remote_code: same class", type(t1) is type(t0), type(t1).__module__, "same dict", t1.to_dict() == t0.to_dict())
import pickle, cloudpickle
blob = cloudpickle.dumps(cfg)
print("cloudpickle round trip of the draft config:", type(pickle.loads(blob)).__name__, len(blob), "bytes")
# the whole draft ModelConfig, as SpeculativeConfig builds it (speculative.py:665-684), if this CPU setup allows it
try:
    from vllm.config import ModelConfig
    m = ModelConfig(model=A, runner="draft", tokenizer=T, trust_remote_code=True, dtype="bfloat16", seed=0,
                    spec_target_max_model_len=262144, hf_overrides=SpeculativeConfig.hf_config_override)
    print("draft ModelConfig: architectures", m.architectures, "max_model_len", m.max_model_len, "head_size", m.get_head_size(),
          "vocab", m.get_vocab_size(), "hidden", m.get_hidden_size())
    print(" override_draft_max_model_len(None, draft, target 262144) ->", SpeculativeConfig._maybe_override_draft_max_model_len(None, m.max_model_len, 262144))
except Exception as e:
    print("draft ModelConfig: could not be built here:", type(e).__name__, str(e)[:300])
    traceback.print_exc(limit=-4)
