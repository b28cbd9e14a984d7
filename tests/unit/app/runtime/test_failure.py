"""Why a backend died, read from its log: an adapter llama-server refused.

The logs are what this project's llama-server build (tests/realparts/llama_build.py)
printed when started with `--lora` of an adapter that does not fit the model; the same
start is made for real in tests/integration/test_roles_llama_server.py.
"""

from __future__ import annotations

from app.engines.llamacpp_log import AdapterRefusal, adapter_refusal
from app.runtime.failure import explain_exit, explain_start_error

ARCH_MISMATCH = """\
0.00.001.885 I srv  llama_server: initializing ...
0.00.007.989 I srv    load_model: loading model '/models/tiny-moe.gguf'
0.00.022.034 E llama_adapter_lora_init_from_file_ptr: failed to apply lora adapter: model arch and LoRA arch mismatch
0.00.022.106 E cmn  common_init_: failed to load lora adapter '/models/qwen3-lora.gguf'
0.00.022.130 E cmn  common_init_: failed to create context with model '/models/tiny-moe.gguf'
0.00.022.154 E srv    load_model: failed to create_context with model '/models/tiny-moe.gguf'
0.00.022.179 I srv    operator(): operator(): cleaning up before exit...
0.00.022.842 E srv  llama_server: exiting due to model loading error
"""  # noqa: E501 (the engine's own lines)

SHAPE_MISMATCH = """\
0.00.018.503 E llama_adapter_lora_init_from_file_ptr: failed to apply lora adapter: tensor 'blk.0.attn_q.weight' has incorrect shape (hint: maybe wrong base model?)
0.00.018.540 E cmn  common_init_: failed to load lora adapter '/tmp/wide-lora.gguf'
0.00.018.542 E cmn  common_init_: failed to create context with model '/tmp/tiny-moe.gguf'
0.00.019.208 E srv  llama_server: exiting due to model loading error
"""  # noqa: E501 (the engine's own lines)


def test_the_refused_adapter_and_the_model_are_read_from_the_log() -> None:
    assert adapter_refusal(ARCH_MISMATCH) == AdapterRefusal(
        "qwen3-lora.gguf", "tiny-moe.gguf", "model arch and LoRA arch mismatch")
    assert adapter_refusal("main: exiting due to model loading error") is None


def test_a_refused_adapter_is_said_in_words_with_both_file_names() -> None:
    assert explain_exit(1, ARCH_MISMATCH) == (
        "adapter qwen3-lora.gguf does not fit model tiny-moe.gguf: it was made for another "
        "architecture; start without it (leave its role out) or with the model it was made "
        "for")
    assert explain_exit(1, SHAPE_MISMATCH).startswith(
        "adapter wide-lora.gguf does not fit model tiny-moe.gguf: its matrices have other "
        "shapes;")
    assert explain_start_error(ARCH_MISMATCH, host="local").startswith(
        "local: adapter qwen3-lora.gguf does not fit model tiny-moe.gguf")


def test_a_model_that_cannot_be_opened_is_still_that() -> None:
    log = ("E gguf_init_from_file: failed to open GGUF file '/models/x.gguf'\n"
           "E srv    load_model: failed to load model, '/models/x.gguf'\n")
    assert explain_exit(1, log).startswith("the model file could not be opened")
