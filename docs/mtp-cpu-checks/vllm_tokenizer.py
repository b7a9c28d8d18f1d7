"""vLLM's tokenizer loading on the synthetic target with and without trust_remote_code."""
import sys
T = sys.argv[1]
from vllm.tokenizers import get_tokenizer
r = {}
for trust in (False, True):
    tok = get_tokenizer(T, trust_remote_code=trust)
    r[trust] = (type(tok).__module__ + "." + type(tok).__name__, tok.encode("w10 w20 <|image|> w30000"), tok.eos_token_id, len(tok))
    print(f"trust_remote_code={trust}:", r[trust])
print("identical:", r[False] == r[True])
