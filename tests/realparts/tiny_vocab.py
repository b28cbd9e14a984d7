"""A small byte-level BPE vocabulary and a Qwen3-style chat template for tiny test GGUFs.

llama.cpp accepts a "gpt2" tokenizer with the "qwen2" pre-tokenizer when every byte has
a token (GPT-2's byte-to-unicode alphabet) and every merge joins two existing tokens into
a third. The merges are learnt from a short English text so prompts tokenize into real
multi-byte tokens, as with a real model. Special tokens carry Qwen3's names so llama.cpp
recognises `<|im_end|>` and `<|endoftext|>` as end of generation.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass
from functools import cache

import gguf

SPECIAL_TOKENS: tuple[tuple[str, gguf.TokenType], ...] = (
    ("<|endoftext|>", gguf.TokenType.CONTROL),
    ("<|im_start|>", gguf.TokenType.CONTROL),
    ("<|im_end|>", gguf.TokenType.CONTROL),
    ("<tool_call>", gguf.TokenType.USER_DEFINED),
    ("</tool_call>", gguf.TokenType.USER_DEFINED),
    ("<think>", gguf.TokenType.USER_DEFINED),
    ("</think>", gguf.TokenType.USER_DEFINED),
)
BOS_TOKEN = "<|endoftext|>"
EOS_TOKEN = "<|im_end|>"
MIN_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)

# Qwen3's template, cut to what the tests need: system/user/assistant/tool turns, reasoning
# kept only after the last user turn, and the empty think block when enable_thinking is false.
CHAT_TEMPLATE = (
    "{%- set ns = namespace(last_query=-1) %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'user' %}{%- set ns.last_query = loop.index0 %}{%- endif %}"
    "{%- endfor %}"
    "{%- if messages[0].role == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- elif message.role == 'assistant' %}"
    "{%- set content = message.content if message.content is string else '' %}"
    "{%- set reasoning = message.reasoning_content if message.reasoning_content is string"
    " else '' %}"
    "{%- if '</think>' in content %}"
    "{%- set reasoning = content.split('</think>')[0].split('<think>')[-1].strip('\\n') %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}"
    "{%- endif %}"
    "{%- if loop.index0 > ns.last_query and reasoning %}"
    "{{- '<|im_start|>assistant\\n<think>\\n' + reasoning + '\\n</think>\\n\\n' + content"
    " + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>assistant\\n' + content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- elif message.role == 'tool' %}"
    "{{- '<|im_start|>user\\n<tool_response>\\n' + message.content"
    " + '\\n</tool_response><|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)

_CORPUS = """
The quick brown fox jumps over the lazy dog. A local model answers questions, writes code
and explains what it did. Hello, how are you today? I am fine, thank you for asking.
Please tell me about the weather, the news and the time. The workstation has a graphics
card with memory for the weights, the cache and the compute buffers. When the context is
long, the cache grows; when it is short, the model starts quickly. Think step by step,
then give the answer in one sentence. def main(): return print("hello world") # 0123456789
Experts per token change the compute, not the weights. Roles swap adapters in a second.
What is two plus two? Four. What is the capital of France? Paris. Write a short poem
about the sea, the stars and the night. Summarise this text in three points, please.
"""

# The GPT-2 pre-tokenizer pattern, close enough to "qwen2" for learning merges.
_WORDS = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]+|\s+""")


@cache
def byte_alphabet() -> tuple[str, ...]:
    """GPT-2's printable stand-in for each byte, in byte order."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    codes = {b: b for b in printable}
    extra = 0
    for b in range(256):
        if b not in codes:
            codes[b] = 256 + extra
            extra += 1
    return tuple(chr(codes[b]) for b in range(256))


def _learn_merges(count: int) -> list[tuple[str, str]]:
    """Greedy BPE over the corpus: the most frequent pair first, ties by text."""
    alphabet = byte_alphabet()
    words = Counter(
        tuple(alphabet[b] for b in word.encode()) for word in _WORDS.findall(_CORPUS)
    )
    merges: list[tuple[str, str]] = []
    while len(merges) < count:
        pairs: Counter[tuple[str, str]] = Counter()
        for word, freq in words.items():
            for pair in itertools.pairwise(word):
                pairs[pair] += freq
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged: Counter[tuple[str, ...]] = Counter()
        for word, freq in words.items():
            out: list[str] = []
            i = 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += freq
        words = merged
    return merges


@dataclass(frozen=True)
class Vocab:
    """Tokens, their types and merges, ready for GGUFWriter."""

    tokens: list[str]
    types: list[int]
    merges: list[str]

    def token_id(self, text: str) -> int:
        return self.tokens.index(text)


@cache
def build_vocab(vocab_size: int) -> Vocab:
    """A vocabulary of exactly vocab_size tokens: bytes, learnt merges, padding, specials.

    Raises:
        ValueError: vocab_size leaves no room for the 256 bytes and the special tokens.
    """
    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(f"vocab_size must be at least {MIN_VOCAB_SIZE}, got {vocab_size}")
    normal = vocab_size - len(SPECIAL_TOKENS)
    merges = _learn_merges(normal - 256)
    tokens = list(byte_alphabet())
    for a, b in merges:
        # Two merge paths can spell the same token ("ab"+"c", "a"+"bc"): list it once.
        if a + b not in tokens:
            tokens.append(a + b)
    types = [int(gguf.TokenType.NORMAL)] * len(tokens)
    # The corpus ran out of pairs: fill up with unused slots, as real padded vocabularies do.
    padding = normal - len(tokens)
    tokens += [f"[PAD{len(tokens) + i}]" for i in range(padding)]
    types += [int(gguf.TokenType.UNUSED)] * padding
    tokens += [text for text, _ in SPECIAL_TOKENS]
    types += [int(kind) for _, kind in SPECIAL_TOKENS]
    return Vocab(tokens, types, [f"{a} {b}" for a, b in merges])
