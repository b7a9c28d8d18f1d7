"""vLLM's SpeculativeConfig for --speculative-config '{"method": "mtp", "model": A, "num_speculative_tokens": 3}' --trust-remote-code."""
import sys
T, A = sys.argv[1], sys.argv[2]
from vllm.config import ModelConfig, ParallelConfig
from vllm.config.speculative import SpeculativeConfig
for trust in (True, False):
    tgt = ModelConfig(model=T, tokenizer=T, trust_remote_code=trust, dtype="bfloat16", seed=0)
    print(f"target (trust_remote_code={trust}):", type(tgt.hf_config).__module__, tgt.architectures, "max_model_len", tgt.max_model_len)
    try:
        sc = SpeculativeConfig(target_model_config=tgt, target_parallel_config=ParallelConfig(), method="mtp", model=A, num_speculative_tokens=3)
        d = sc.draft_model_config
        print("  SpeculativeConfig: method", sc.method, "num_speculative_tokens", sc.num_speculative_tokens, "draft", d.architectures,
              type(d.hf_config).__module__, "draft max_model_len", d.max_model_len, "draft_tp", sc.draft_tensor_parallel_size)
    except Exception as e:
        lines = str(e).splitlines()
        why = next((l.strip() for l in lines if "custom code" in l or "recognize" in l), lines[0])
        print("  SpeculativeConfig:", type(e).__name__, why[:200])
