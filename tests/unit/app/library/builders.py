"""Writers of real model files for the library's tests (and the benchmark).

GGUF files come from the `gguf` package's GGUFWriter (what llama.cpp's converters use);
safetensors files are written by hand from the format's definition (8-byte little-endian
header length, JSON header, data); PEFT folders, an Ollama store, a Hugging Face hub cache
and an LM Studio folder are laid out the way those tools lay them out.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter

THINKING_TEMPLATE = (
    "{%- for m in messages -%}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
    "{%- endfor -%}{%- if enable_thinking is defined and not enable_thinking -%}"
    "<think>\n\n</think>{%- endif -%}"
)
PLAIN_TEMPLATE = "{% for m in messages %}{{ m.content }}{% endfor %}"


@dataclass
class Shape:
    """A model's shape, small enough to write real files quickly."""

    arch: str = "qwen3"
    layers: int = 2
    hidden: int = 64
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 16
    ffn: int = 128
    vocab: int = 256
    experts: int = 0
    experts_used: int = 0
    expert_ffn: int = 32
    context: int = 4096

    def torch_tensors(self) -> dict[str, tuple[int, ...]]:
        """GGUF tensor names with PyTorch-order shapes ([out, in]), as GGUFWriter takes them."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        out: dict[str, tuple[int, ...]] = {
            "token_embd.weight": (self.vocab, self.hidden),
            "output_norm.weight": (self.hidden,),
            "output.weight": (self.vocab, self.hidden),
        }
        for i in range(self.layers):
            out |= {
                f"blk.{i}.attn_norm.weight": (self.hidden,),
                f"blk.{i}.attn_q.weight": (q, self.hidden),
                f"blk.{i}.attn_k.weight": (kv, self.hidden),
                f"blk.{i}.attn_v.weight": (kv, self.hidden),
                f"blk.{i}.attn_output.weight": (self.hidden, q),
                f"blk.{i}.ffn_norm.weight": (self.hidden,),
            }
            if self.experts:
                e, f = self.experts, self.expert_ffn
                out |= {
                    f"blk.{i}.ffn_gate_inp.weight": (e, self.hidden),
                    f"blk.{i}.ffn_gate_exps.weight": (e, f, self.hidden),
                    f"blk.{i}.ffn_up_exps.weight": (e, f, self.hidden),
                    f"blk.{i}.ffn_down_exps.weight": (e, self.hidden, f),
                }
            else:
                out |= {
                    f"blk.{i}.ffn_gate.weight": (self.ffn, self.hidden),
                    f"blk.{i}.ffn_up.weight": (self.ffn, self.hidden),
                    f"blk.{i}.ffn_down.weight": (self.hidden, self.ffn),
                }
        return out


def _add_model_kv(writer: GGUFWriter, shape: Shape, template: str | None) -> None:
    arch = shape.arch
    writer.add_name(f"tiny-{arch}")
    writer.add_uint32(f"{arch}.block_count", shape.layers)
    writer.add_uint32(f"{arch}.context_length", shape.context)
    writer.add_uint32(f"{arch}.embedding_length", shape.hidden)
    writer.add_uint32(f"{arch}.feed_forward_length", shape.ffn)
    writer.add_uint32(f"{arch}.attention.head_count", shape.heads)
    writer.add_uint32(f"{arch}.attention.head_count_kv", shape.kv_heads)
    writer.add_uint32(f"{arch}.attention.key_length", shape.head_dim)
    writer.add_uint32(f"{arch}.attention.value_length", shape.head_dim)
    writer.add_float32(f"{arch}.rope.freq_base", 1_000_000.0)
    if shape.experts:
        writer.add_uint32(f"{arch}.expert_count", shape.experts)
        writer.add_uint32(f"{arch}.expert_used_count", shape.experts_used)
        writer.add_uint32(f"{arch}.expert_feed_forward_length", shape.expert_ffn)
    writer.add_file_type(1)
    writer.add_string("tokenizer.ggml.model", "gpt2")
    writer.add_array("tokenizer.ggml.tokens", [f"t{i}" for i in range(shape.vocab)])
    writer.add_array("tokenizer.ggml.token_type", [1] * shape.vocab)
    if template is not None:
        writer.add_string("tokenizer.chat_template", template)


def write_gguf(
    path: Path,
    shape: Shape | None = None,
    *,
    header_only: bool = False,
    template: str | None = THINKING_TEMPLATE,
    quant: GGMLQuantizationType | None = None,
    extra: Callable[[GGUFWriter], None] | None = None,
    split_max_tensors: int = 0,
) -> Path:
    """Write a GGUF model; `header_only` stops after the tensor table (no data).

    `quant` declares the 2D weights in that type (header-only files only: no data to
    quantise). `split_max_tensors` writes a split model (`…-0000N-of-0000M.gguf`).
    """
    shape = shape or Shape()
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = GGUFWriter(path, shape.arch, split_max_tensors=split_max_tensors)
    _add_model_kv(writer, shape, template)
    if extra is not None:
        extra(writer)
    for name, dims in shape.torch_tensors().items():
        if header_only:
            qtype = quant if quant is not None and len(dims) >= 2 else GGMLQuantizationType.F16
            if len(dims) == 1:
                qtype = GGMLQuantizationType.F32
            block, size = _quant_size(qtype)
            nbytes = int(np.prod(dims)) // block * size
            writer.add_tensor_info(name, dims, np.dtype(np.float16), nbytes, raw_dtype=qtype)
        else:
            dtype = np.float32 if len(dims) == 1 else np.float16
            writer.add_tensor(name, np.zeros(dims, dtype=dtype))
    _finish(writer, header_only)
    return path


def _quant_size(qtype: GGMLQuantizationType) -> tuple[int, int]:
    from gguf.constants import GGML_QUANT_SIZES

    block, size = GGML_QUANT_SIZES[qtype]
    return int(block), int(size)


def _finish(writer: GGUFWriter, header_only: bool) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    if header_only:
        writer.write_ti_data_to_file()
        writer.flush()
    else:
        writer.write_tensors_to_file()
    writer.close()


def write_gguf_lora(
    path: Path,
    shape: Shape | None = None,
    *,
    rank: int = 8,
    alpha: float = 16.0,
    modules: Sequence[str] = ("attn_q", "attn_v"),
    base_name: str = "Qwen3-Tiny",
) -> Path:
    """Write a GGUF LoRA the way llama.cpp's convert_lora_to_gguf.py does."""
    shape = shape or Shape()
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = GGUFWriter(path, shape.arch)
    writer.add_type("adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", alpha)
    writer.add_uint32("general.base_model.count", 1)
    writer.add_string("general.base_model.0.name", base_name)
    tensors = shape.torch_tensors()
    for i in range(shape.layers):
        for module in modules:
            out_f, in_f = tensors[f"blk.{i}.{module}.weight"]
            base = f"blk.{i}.{module}.weight"
            writer.add_tensor(f"{base}.lora_a", np.zeros((rank, in_f), dtype=np.float32))
            writer.add_tensor(f"{base}.lora_b", np.zeros((out_f, rank), dtype=np.float32))
    _finish(writer, header_only=False)
    return path


# ---------------------------------------------------------------- safetensors
DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "U8": 1, "F8_E4M3": 1, "I64": 8}


def safetensors_bytes(
    tensors: Mapping[str, tuple[str, Sequence[int]]],
    metadata: Mapping[str, str] | None = None,
) -> bytes:
    """A whole safetensors file: header plus zeroed data for `{name: (dtype, shape)}`."""
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name, (dtype, dims) in tensors.items():
        count = int(np.prod(dims)) if dims else 1
        nbytes = count * DTYPE_BYTES[dtype]
        header[name] = {
            "dtype": dtype,
            "shape": list(dims),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + bytes(offset)


def write_safetensors(
    path: Path,
    tensors: Mapping[str, tuple[str, Sequence[int]]],
    metadata: Mapping[str, str] | None = None,
    *,
    cut_data: int = 0,
) -> Path:
    """Write a safetensors file; `cut_data` drops that many bytes from its end."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = safetensors_bytes(tensors, metadata)
    path.write_bytes(data[: len(data) - cut_data] if cut_data else data)
    return path


@dataclass
class HfModel:
    shape: Shape = field(default_factory=Shape)
    model_type: str = "qwen3"
    dtype: str = "BF16"
    quantization_config: dict[str, Any] | None = None
    extra_config: dict[str, Any] = field(default_factory=dict)
    template: str | None = THINKING_TEMPLATE
    shards: int = 1

    def config(self) -> dict[str, Any]:
        s = self.shape
        config: dict[str, Any] = {
            "architectures": ["Qwen3ForCausalLM"],
            "model_type": self.model_type,
            "hidden_size": s.hidden,
            "num_hidden_layers": s.layers,
            "num_attention_heads": s.heads,
            "num_key_value_heads": s.kv_heads,
            "head_dim": s.head_dim,
            "intermediate_size": s.ffn,
            "max_position_embeddings": s.context,
            "vocab_size": s.vocab,
            "rope_scaling": None,
            "sliding_window": None,
            "torch_dtype": "bfloat16",
        }
        if s.experts:
            config |= {
                "num_experts": s.experts,
                "num_experts_per_tok": s.experts_used,
                "moe_intermediate_size": s.expert_ffn,
            }
        if self.quantization_config:
            config["quantization_config"] = self.quantization_config
        return config | self.extra_config

    def tensors(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        s = self.shape
        q, kv = s.heads * s.head_dim, s.kv_heads * s.head_dim
        out: dict[str, tuple[str, tuple[int, ...]]] = {
            "model.embed_tokens.weight": (self.dtype, (s.vocab, s.hidden)),
            "model.norm.weight": (self.dtype, (s.hidden,)),
            "lm_head.weight": (self.dtype, (s.vocab, s.hidden)),
        }
        for i in range(s.layers):
            p = f"model.layers.{i}"
            out[f"{p}.input_layernorm.weight"] = (self.dtype, (s.hidden,))
            for name, dims in (
                ("self_attn.q_proj", (q, s.hidden)),
                ("self_attn.k_proj", (kv, s.hidden)),
                ("self_attn.v_proj", (kv, s.hidden)),
                ("self_attn.o_proj", (s.hidden, q)),
            ):
                out |= self._linear(f"{p}.{name}", dims)
            if s.experts:
                out[f"{p}.mlp.gate.weight"] = (self.dtype, (s.experts, s.hidden))
                for j in range(s.experts):
                    e = f"{p}.mlp.experts.{j}"
                    out |= self._linear(f"{e}.gate_proj", (s.expert_ffn, s.hidden))
                    out |= self._linear(f"{e}.up_proj", (s.expert_ffn, s.hidden))
                    out |= self._linear(f"{e}.down_proj", (s.hidden, s.expert_ffn))
            else:
                out |= self._linear(f"{p}.mlp.gate_proj", (s.ffn, s.hidden))
                out |= self._linear(f"{p}.mlp.up_proj", (s.ffn, s.hidden))
                out |= self._linear(f"{p}.mlp.down_proj", (s.hidden, s.ffn))
        return out

    def _linear(self, name: str, dims: tuple[int, int]) -> dict[str, tuple[str, tuple[int, ...]]]:
        out_f, in_f = dims
        method = (self.quantization_config or {}).get("quant_method")
        if method == "gptq":
            return {
                f"{name}.qweight": ("I32", (in_f // 8, out_f)),
                f"{name}.qzeros": ("I32", (1, out_f // 8)),
                f"{name}.scales": ("F16", (1, out_f)),
                f"{name}.g_idx": ("I32", (in_f,)),
            }
        if method == "awq":
            return {
                f"{name}.qweight": ("I32", (in_f, out_f // 8)),
                f"{name}.qzeros": ("I32", (1, out_f // 8)),
                f"{name}.scales": ("F16", (1, out_f)),
            }
        if method == "bitsandbytes":
            return {
                f"{name}.weight": ("U8", (out_f * in_f // 2, 1)),
                f"{name}.weight.absmax": ("F32", (out_f * in_f // 64,)),
                f"{name}.weight.quant_map": ("F32", (16,)),
            }
        if method == "fp8":
            return {
                f"{name}.weight": ("F8_E4M3", (out_f, in_f)),
                f"{name}.weight_scale_inv": ("F32", (1, 1)),
            }
        return {f"{name}.weight": (self.dtype, dims)}


def write_hf_model(folder: Path, model: HfModel | None = None) -> Path:
    """A Hugging Face model folder: config, generation config, tokenizer config, weights."""
    model = model or HfModel()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(model.config()))
    (folder / "generation_config.json").write_text(json.dumps({"temperature": 0.6}))
    tokenizer: dict[str, Any] = {"model_max_length": model.shape.context}
    if model.template is not None:
        tokenizer["chat_template"] = model.template
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer))
    tensors = model.tensors()
    if model.shards == 1:
        write_safetensors(folder / "model.safetensors", tensors)
        return folder
    names = list(tensors)
    per = -(-len(names) // model.shards)
    weight_map: dict[str, str] = {}
    for k in range(model.shards):
        shard = f"model-{k + 1:05d}-of-{model.shards:05d}.safetensors"
        chunk = {n: tensors[n] for n in names[k * per : (k + 1) * per]}
        write_safetensors(folder / shard, chunk)
        weight_map |= dict.fromkeys(chunk, shard)
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder


def write_peft(
    folder: Path,
    shape: Shape | None = None,
    *,
    rank: int = 8,
    alpha: float = 16,
    modules: Sequence[str] = ("q_proj", "v_proj"),
    base: str = "Qwen/Qwen3-Tiny",
    dtype: str = "F32",
) -> Path:
    """A PEFT LoRA folder: adapter_config.json and adapter_model.safetensors."""
    shape = shape or Shape()
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "peft_type": "LORA",
        "r": rank,
        "lora_alpha": alpha,
        "target_modules": list(modules),
        "base_model_name_or_path": base,
        "task_type": "CAUSAL_LM",
    }
    (folder / "adapter_config.json").write_text(json.dumps(config))
    q, kv = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    dims = {
        "q_proj": ("self_attn", q, shape.hidden),
        "k_proj": ("self_attn", kv, shape.hidden),
        "v_proj": ("self_attn", kv, shape.hidden),
        "o_proj": ("self_attn", shape.hidden, q),
        "gate_proj": ("mlp", shape.ffn, shape.hidden),
        "up_proj": ("mlp", shape.ffn, shape.hidden),
        "down_proj": ("mlp", shape.hidden, shape.ffn),
    }
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    for i in range(shape.layers):
        for module in modules:
            block, out_f, in_f = dims[module]
            base_name = f"base_model.model.model.layers.{i}.{block}.{module}"
            tensors[f"{base_name}.lora_A.weight"] = (dtype, (rank, in_f))
            tensors[f"{base_name}.lora_B.weight"] = (dtype, (out_f, rank))
    write_safetensors(folder / "adapter_model.safetensors", tensors)
    return folder


# ---------------------------------------------------------------- stores
def add_to_ollama(root: Path, name: str, tag: str, gguf: Path, adapter: Path | None = None) -> Path:
    """Put `gguf` in an Ollama store as `name:tag` (blob by sha256 + a manifest)."""
    layers = [_ollama_blob(root, gguf, "application/vnd.ollama.image.model")]
    if adapter is not None:
        layers.append(_ollama_blob(root, adapter, "application/vnd.ollama.image.adapter"))
    layers.append(
        {
            "mediaType": "application/vnd.ollama.image.template",
            "digest": "sha256:" + "0" * 64,
            "size": 0,
        }
    )
    manifest = root / "manifests" / "registry.ollama.ai" / "library" / name / tag
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"schemaVersion": 2, "layers": layers}))
    return root / "blobs" / f"sha256-{hashlib.sha256(gguf.read_bytes()).hexdigest()}"


def _ollama_blob(root: Path, source: Path, media_type: str) -> dict[str, Any]:
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    blob = root / "blobs" / f"sha256-{digest}"
    blob.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, blob)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": blob.stat().st_size}


def add_to_hf_cache(hub: Path, repo: str, files_from: Path, revision: str = "a" * 40) -> Path:
    """Lay out a folder's files as the hub cache does: blobs, snapshot links, refs/main."""
    repo_dir = hub / f"models--{repo.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo_dir / "blobs").mkdir(exist_ok=True)
    for source in sorted(files_from.iterdir()):
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        shutil.copyfile(source, repo_dir / "blobs" / digest)
        (snapshot / source.name).symlink_to(Path("../../blobs") / digest)
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(revision)
    return snapshot
