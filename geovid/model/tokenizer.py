"""A CLIP tokenizer with a word-level vocabulary, built offline from the world's caption grammar.

Stable Diffusion pipelines load ``tokenizer/`` with ``CLIPTokenizer.from_pretrained``, which reads a byte-level
BPE (``vocab.json`` + ``merges.txt``). We build one without any download: the 256 byte symbols of CLIP's
byte-to-unicode table (alone and with the end-of-word marker ``</w>``), then for every known word a chain of
merges that glues it together from the right (``d</w>`` ← ``e d</w>`` ← ``r ed</w>`` gives ``red</w>``).
Every merge joins one plain symbol to a suffix that ends in ``</w>``, so inside any word only the last pair can
ever merge: known words always become exactly one token and unknown words fall back to (partial) characters,
which are all in the vocabulary, so nothing is ever out of vocabulary.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
END_OF_WORD = "</w>"

#: Tokens per prompt (CLIP uses 77; the world's longest caption is ~18 tokens and the default negative prompt
#: ~20, so 32 leaves room and keeps cross-attention cheap).
MODEL_MAX_LENGTH = 32

#: Words of the default negative prompt (docs/method.md §2) and a few general ones, so that such prompts tokenize to
#: whole words even though the bundled model never saw them in training (their embeddings stay at init).
EXTRA_WORDS: tuple[str, ...] = (
    "doubled", "doubling", "duplicate", "ghosting", "ghost", "distorted", "distortion", "distortions",
    "deformed", "blurry", "blur", "low", "detail", "quality", "artefacts", "artifacts", "noisy", "noise",
    "image", "photo", "picture", "scene", "object", "objects", "the", "on", "with", "floor", "an", "empty",
    "ground", "table", "shape", "shapes", "next", "to", "above", "below", "near", "far",
)


def world_words() -> list[str]:
    """Every word the world's captions can use (from its palette, shapes, sizes and grammar)."""
    from geovid.world.scene import PALETTE, SHAPES, SIZES

    grammar = ["a", "an", "and", "left", "right", "of", "in", "front", "behind", "empty", "floor"]
    plural = [s + "s" for s in SHAPES]
    return sorted(set(grammar) | set(PALETTE) | set(SHAPES) | set(plural) | set(SIZES))


def _byte_symbols() -> list[str]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return list(bytes_to_unicode().values())


def build_vocab(words: Iterable[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The BPE vocabulary (token → id) and merge list for ``words`` (lower-case, no spaces).

    Ids: 256 byte symbols, the same with ``</w>``, the merged symbols in merge order, then BOS and EOS last
    (as in CLIP, so ``eos_token_id = vocab_size - 1``).
    """
    base = _byte_symbols()
    vocab: dict[str, int] = {}
    for s in base + [b + END_OF_WORD for b in base]:
        vocab.setdefault(s, len(vocab))
    merges: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    byte_map = _byte_map()
    for word in sorted({w.strip().lower() for w in words if w.strip()}):
        if any(ch.isspace() for ch in word):
            raise ValueError(f"vocabulary words must not contain spaces: {word!r}")
        symbols = [byte_map[b] for b in word.encode("utf-8")]
        suffix = symbols[-1] + END_OF_WORD
        for sym in reversed(symbols[:-1]):
            pair = (sym, suffix)
            suffix = sym + suffix
            if pair not in seen:
                seen.add(pair)
                merges.append(pair)
                vocab.setdefault(suffix, len(vocab))
    vocab[BOS_TOKEN] = len(vocab)
    vocab[EOS_TOKEN] = len(vocab)
    return vocab, merges


def _byte_map() -> dict[int, str]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return bytes_to_unicode()


def build_tokenizer(out_dir: str | Path, words: Iterable[str] | None = None,
                    model_max_length: int = MODEL_MAX_LENGTH):
    """Write a ``CLIPTokenizer`` folder for ``words`` (default: world words + :data:`EXTRA_WORDS`) and load it.

    Args:
        out_dir: folder to create (e.g. ``<model>/tokenizer``).
        words: vocabulary words; each becomes a single token.
        model_max_length: prompt length in tokens (prompts are padded/truncated to it).

    Returns:
        The loaded ``transformers.CLIPTokenizer`` (saved back with ``save_pretrained`` so the folder holds the
        files transformers itself writes).
    """
    from transformers import CLIPTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    words = list(words) if words is not None else world_words() + list(EXTRA_WORDS)
    vocab, merges = build_vocab(words)
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges),
                                    encoding="utf-8")
    # Loading from the two files works with both the slow (transformers 4) and the tokenizers-backed
    # (transformers 5) CLIPTokenizer; saving back adds the config (and tokenizer.json where supported).
    tok = CLIPTokenizer.from_pretrained(str(out), model_max_length=model_max_length, bos_token=BOS_TOKEN,
                                        eos_token=EOS_TOKEN, unk_token=EOS_TOKEN, pad_token=EOS_TOKEN)
    tok.save_pretrained(str(out))
    return CLIPTokenizer.from_pretrained(str(out))
