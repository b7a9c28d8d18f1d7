"""How the CPU checkpoints of docs/random-init-floor/ were made (session 8): the synthetic E2B config with a
vocabulary of 16,384 words (the CPU's memory), optionally cut to fewer layers (KV sharing off), seed-0 postnorm-v1
weights from `harness model init-weights`; then `harness parity-floor --model-path DIR --python <torch venv> --device
cpu --out docs/random-init-floor/<name>.json`.

    PYTHONPATH=. python3 docs/random-init-floor/make_checkpoint.py DIR LAYERS
"""
import json, os, sys
from pathlib import Path
from typer.testing import CliRunner
from harness.cli.app import app
d = Path(sys.argv[1]); layers = int(sys.argv[2])
r = CliRunner().invoke(app, ["model", "synth", "-m", "E2B", "-o", str(d)]); assert r.exit_code == 0, r.output
cfg = json.loads((d / "config.json").read_text()); t = cfg["text_config"]
n0 = t["num_hidden_layers"]
t.update(vocab_size=16384, vocab_size_per_layer_input=16384)
if layers != n0:
    t["layer_types"] = t["layer_types"][:layers - 1] + ["full_attention"]; t["num_hidden_layers"] = layers
    t["num_kv_shared_layers"] = 0
cfg["vision_config"].update(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2, head_dim=16)
cfg["audio_config"] = None
(d / "config.json").write_text(json.dumps(cfg))
from harness.synth import write_tokenizer
write_tokenizer(d, 16384, 8192)
r = CliRunner().invoke(app, ["model", "init-weights", "-m", "E2B", "--model-path", str(d), "--seed", "0",
                             "--python", os.environ.get("HARNESS_TORCH_PYTHON", "python3"), "--device", "cpu"])
print(r.exit_code, r.output[-800:])
