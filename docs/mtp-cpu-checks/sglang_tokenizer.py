"""SGLang's get_tokenizer / get_generation_config on the synthetic target with and without trust_remote_code."""
import sys

T = sys.argv[1]
from sglang.srt.utils.hf_transformers_utils import get_tokenizer, get_generation_config
res = {}
for trust in (False, True):
    tok = get_tokenizer(T, trust_remote_code=trust)
    ids = tok.encode("w10 w20 <|image|> w30000")
    gen = get_generation_config(T, trust_remote_code=trust)
    g = gen.to_dict() if gen else {}
    g.pop("trust_remote_code", None)  # the kwarg itself is stored in the dict
    res[trust] = (type(tok).__module__ + "." + type(tok).__name__, ids, tok.eos_token_id, len(tok), g)
    print(f"trust_remote_code={trust}:", res[trust][:4])
print("identical (tokenizer class, ids, eos, size, generation config):", res[False] == res[True])
