"""python extract_kernel.py TREE/python/sglang/srt/layers/attention/triton_ops/extend_attention.py OUT.py
Copy `tanh` and `_fwd_kernel` out of SGLang's extend_attention.py into a stand-alone module (no sglang import)."""
import sys

lines = open(sys.argv[1]).read().split("\n")


def grab(name):
    i = [k for k, line in enumerate(lines) if line.startswith("def " + name + "(")][0] - 1
    j = i + 2
    while j < len(lines) and not (lines[j].startswith("@") or lines[j].startswith("def ")):
        j += 1
    return "\n".join(lines[i:j])


open(sys.argv[2], "w").write("import triton\nimport triton.language as tl\n\n" + grab("tanh") + "\n\n" + grab("_fwd_kernel") + "\n")
