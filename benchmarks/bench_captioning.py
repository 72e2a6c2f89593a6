"""Captioning-side measurements for issue 4 (CPU, offline).

1. Tiny randomly initialised BLIP-2 captioning throughput (images/s) through `caption_items`.
2. MiniLM: encoding all 7,050 synthetic item texts vs re-encoding 1% of them (ItemTextEmbeddings).
3. BLIP-2 OPT-2.7B memory plan: parameter count of the real architecture built on the meta device
   (no weights are downloaded or allocated) x bytes per parameter.

Run: HF_HUB_OFFLINE=1 python benchmarks/bench_captioning.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path[:0] = [str(Path(__file__).parents[1]), str(Path(__file__).parents[1] / "tests" / "captioning")]


def bench_tiny_captioning(tmp: Path, n_images: int = 256) -> None:
    from tiny_blip2 import save_tiny_blip2

    from robustrec.captioning.blip2 import Blip2Captioner
    from robustrec.captioning.cache import CaptionCache
    from robustrec.data.content import load_item_images
    from robustrec.synthetic.content import write_synthetic_content

    factors = np.random.default_rng(0).standard_normal((n_images, 8))
    write_synthetic_content(tmp / "syn", "syn", factors, 0, "fp")
    items = load_item_images(tmp / "syn", "syn")
    model_dir = save_tiny_blip2(tmp / "tiny")
    for batch_size, tokens in ((8, 30), (32, 30), (32, 10)):
        captioner = Blip2Captioner(str(model_dir), device="cpu", max_new_tokens=tokens)
        captioner.load()
        cache = CaptionCache.open(tmp / f"c{batch_size}_{tokens}.json", captioner.captioner_id, "syn", "fp")
        start = time.perf_counter()
        summary = captioner.caption_items(items, cache, batch_size=batch_size)
        seconds = time.perf_counter() - start
        print(f"tiny BLIP-2: {summary.captioned} images, batch {batch_size}, max_new_tokens {tokens}: "
              f"{seconds:.2f} s = {summary.captioned / seconds:.0f} images/s")


def bench_text_encoding(tmp: Path, n_items: int = 7050, rate: float = 0.01) -> None:
    from robustrec.features.text import ItemTextEmbeddings, SentenceTextEncoder
    from robustrec.synthetic.content import reference_caption, synthetic_item_texts, synthetic_items

    factors = np.random.default_rng(0).standard_normal((n_items, 16))
    texts = synthetic_item_texts(factors, 0)
    encoder = SentenceTextEncoder()
    encoder.encode(["warm up"])
    embeddings = ItemTextEmbeddings(encoder, texts)
    start = time.perf_counter()
    _ = embeddings.clean
    full = time.perf_counter() - start
    rng = np.random.default_rng(1)
    changed_ids = np.flatnonzero(rng.random(n_items) < rate)
    items = synthetic_items(factors, 0)
    edited = {int(i): f"{texts[int(i)]} {reference_caption(items[int(i)])}" for i in changed_ids}
    start = time.perf_counter()
    _, changed = embeddings.with_texts(edited)
    partial = time.perf_counter() - start
    print(f"MiniLM: all {n_items} texts {full:.1f} s ({n_items / full:.0f} texts/s); "
          f"re-encode {len(changed)} changed ({rate:.0%}) {partial:.2f} s")


def memory_plan() -> None:
    import torch
    from transformers import Blip2Config, Blip2ForConditionalGeneration

    opt_27b = dict(model_type="opt", hidden_size=2560, ffn_dim=10240, num_hidden_layers=32,
                   num_attention_heads=32, vocab_size=50272, word_embed_proj_dim=2560,
                   max_position_embeddings=2048)
    config = Blip2Config(text_config=opt_27b, num_query_tokens=32)  # vision/Q-Former defaults = BLIP-2
    with torch.device("meta"):
        model = Blip2ForConditionalGeneration(config)
    parts = {
        "vision (ViT-g)": model.vision_model, "Q-Former": model.qformer,
        "projection": model.language_projection, "OPT-2.7B": model.language_model,
    }
    total = sum(p.numel() for p in model.parameters())
    for name, module in parts.items():
        print(f"  {name}: {sum(p.numel() for p in module.parameters()) / 1e6:.0f} M params")
    print(f"BLIP-2 OPT-2.7B: {total / 1e9:.3f} B params -> fp16 {total * 2 / 2**30:.1f} GiB, "
          f"fp32 {total * 4 / 2**30:.1f} GiB of weights")


if __name__ == "__main__":
    torch_threads = os.cpu_count()
    print(f"CPU cores: {torch_threads}")
    with tempfile.TemporaryDirectory() as tmp:
        bench_tiny_captioning(Path(tmp))
        bench_text_encoding(Path(tmp))
    memory_plan()
