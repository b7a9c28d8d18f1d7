"""``gemma4_assistant`` config class, shipped as Hugging Face remote code next to a synthetic MTP assistant.

Why this file exists: transformers 5.6.0, which both engine environments run (sglang 0.5.12 pins it), has no
``gemma4_assistant`` model type (the first release with one is 5.8.0). SGLang 0.5.12 and vLLM 0.22.0 read the
draft's config.json with ``AutoConfig.from_pretrained`` and neither registers the type itself, so without this
class both stop with "Transformers does not recognize this architecture" before any GPU work.
``harness model synth --assistant`` copies this file into the synthetic assistant directory and writes
``"auto_map": {"AutoConfig": "configuration_gemma4_assistant.Gemma4AssistantConfig"}`` into its config.json; the
engine profiles add ``--trust-remote-code`` to their MTP arguments so that AutoConfig imports it.

Only synthetic (dummy-weight) assistants get it from the harness. A real assistant checkpoint
(google/gemma-4-*-it-assistant) has the same problem on transformers 5.6.0 and needs the same two additions
(this file and the auto_map entry) in a local copy passed with --assistant-path.

transformers >= 5.8.0 has its own Gemma4AssistantConfig. With ``trust_remote_code=True`` AutoConfig takes the
auto_map class over a built-in one (``explicit_local_code`` is false for classes under ``transformers.``), so
this class is used there too; without trust_remote_code the built-in class is used and this file is ignored.

This class holds only what the engines read: the Gemma-4 text config of the draft layers (``text_config``, a
transformers ``Gemma4TextConfig``), the target width (``backbone_hidden_size``) and the optional centroid-head
fields. It does not repeat the architecture checks of the 5.8.0 class.
"""

from typing import Any

from transformers import PretrainedConfig
from transformers.models.gemma4.configuration_gemma4 import Gemma4TextConfig


class Gemma4AssistantConfig(PretrainedConfig):
    model_type = "gemma4_assistant"
    sub_configs = {"text_config": Gemma4TextConfig}

    # The draft's decoder layers (engines read it as config.text_config / get_text_config()).
    text_config: Gemma4TextConfig | dict[str, Any] | None = None
    # Hidden size of the target model: the width of the pre/post projections and of the shared embedding.
    backbone_hidden_size: int = 1536
    # Centroid-masked output head (E2B/E4B assistants); the engines build it only when this is true.
    use_ordered_embeddings: bool = False
    num_centroids: int = 2048
    centroid_intermediate_top_k: int = 32
    tie_word_embeddings: bool = True

    def __post_init__(self, **kwargs):
        if self.text_config is None:
            self.text_config = Gemma4TextConfig()
        elif isinstance(self.text_config, dict):
            self.text_config = Gemma4TextConfig(**self.text_config)
        super().__post_init__(**kwargs)
