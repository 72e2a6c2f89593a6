"""Build and save a tiny randomly initialised BLIP-2 (+ processor) for offline tests.

The tokenizer is a word-level vocabulary trained on the fly with `tokenizers`; the vision tower,
Q-Former and OPT decoder are one layer of width 32, images are 32x32. Captions are gibberish made
of the vocabulary words, which is all the captioning code path needs. Reusable from other tests:
`save_tiny_blip2(folder)` returns the folder.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = "a photo of red blue green soft baby bottle blanket toy with on the stroller".split()
NUM_QUERY_TOKENS = 4
IMAGE_SIZE = 32


def _tiny_tokenizer():
    """A word-level fast tokenizer with <pad>, <s>, </s>, <unk> (ids 0..3)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=["<pad>", "<s>", "</s>", "<unk>"])
    tokenizer.train_from_iterator([" ".join(WORDS)], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>",
    )


def _tiny_config(vocab_size: int, image_token_index: int):
    from transformers import Blip2Config

    layer = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    return Blip2Config(
        vision_config=dict(layer, image_size=IMAGE_SIZE, patch_size=8),
        qformer_config=dict(layer, vocab_size=vocab_size),
        text_config=dict(
            model_type="opt", hidden_size=32, ffn_dim=64, num_hidden_layers=1,
            num_attention_heads=2, vocab_size=vocab_size, word_embed_proj_dim=32,
            max_position_embeddings=64, bos_token_id=1, eos_token_id=2, pad_token_id=0,
        ),
        num_query_tokens=NUM_QUERY_TOKENS,
        image_token_index=image_token_index,
    )


def save_tiny_blip2(folder: Path, seed: int = 0) -> Path:
    """Save a tiny BLIP-2 model and its processor to `folder`; returns `folder`."""
    import torch
    from transformers import Blip2ForConditionalGeneration, Blip2Processor, BlipImageProcessor

    tokenizer = _tiny_tokenizer()
    image_processor = BlipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    processor = Blip2Processor(image_processor, tokenizer, num_query_tokens=NUM_QUERY_TOKENS)
    image_token = tokenizer.convert_tokens_to_ids("<image>")
    torch.manual_seed(seed)
    model = Blip2ForConditionalGeneration(_tiny_config(len(tokenizer), image_token)).eval()
    folder = Path(folder)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
