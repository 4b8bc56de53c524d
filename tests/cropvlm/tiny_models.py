"""Tiny random-weight image-text-to-text checkpoints, built in code (no hub access).

Each `build_*` writes a complete checkpoint folder (config, safetensors weights, generation
config, tokenizer, image processor, processor with chat template) that loads with
`AutoProcessor.from_pretrained` / `AutoModelForImageTextToText.from_pretrained`, exactly as a
real checkpoint does. The families and their special tokens:

    idefics3 (SmolVLM): <fake_token_around_image> <global-img> <image> <row_i_col_j>
                        <end_of_utterance>; SmolVLM's chat template ("User:<image>...")
    qwen2_vl:           <|vision_start|> <|image_pad|> <|vision_end|> (<|video_pad|>);
                        Qwen's ChatML template
    llava (1.5):        <image> (one per patch + CLS dropped), "USER: <image>\\n... ASSISTANT:"

The tokenizer is a byte-level BPE trained on a few sentences (so any text encodes) with
the family's special tokens added; the weights are random but seeded, so a build is
reproducible. Import only inside tests: it needs torch, transformers and tokenizers.
"""

from __future__ import annotations

from pathlib import Path


SMOLVLM_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

_CORPUS = [
    "What is the total amount paid?\nGive a very brief answer.",
    "What is the invoice number?\nOutline the region in the image that would help answer this question.",
    "[12, 5, 40, 9]. [0, 0, 100, 100]. [33, 67, 58, 71]. [1, 2, 3, 4].",
    "Total 12.50 Date 2024-03-01 Invoice INV-0042 Receipt Store Name Tax Cash Change",
    "User: Assistant: system user assistant You are a helpful assistant. USER: ASSISTANT:",
    "0123456789 , . [ ] - / : % $ abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ",
]


def build_tokenizer(special_tokens: list[str], *, eos: str, pad: str, bos: str | None = None, vocab_size: int = 400):
    """A byte-level BPE tokenizer (any text encodes) with `special_tokens` added."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(_CORPUS * 4, trainer)
    names = {"eos_token": eos, "pad_token": pad}
    if bos:
        names["bos_token"] = bos
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, **names)
    specials = [t for t in dict.fromkeys([*special_tokens, eos, pad, *([bos] if bos else [])])]
    wrapped.add_special_tokens({"additional_special_tokens": specials})
    return wrapped


def _vocab_size(tokenizer) -> int:
    return ((len(tokenizer) + 63) // 64) * 64  # padded like real checkpoints


def spread_weights(model, seed: int, head_gain: float = 4.0) -> None:
    """Re-initialise weights so activations keep their scale and the logits are peaked.

    transformers' default init (std 0.02) makes a tiny model's next-token distribution nearly
    uniform, so greedy decoding would hinge on near-ties and ignore the image; with unit-scale
    layers the outputs depend on the input, which the batching tests need.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() < 2:
                continue
            fan_in = param[0].numel()
            if "embed_tokens" in name or "embedding" in name and param.dim() == 2 and "patch" not in name:
                std = 1.0
            elif "lm_head" in name:
                std = head_gain / fan_in**0.5
            else:
                std = 1.0 / fan_in**0.5
            param.copy_(torch.randn(param.shape, generator=generator) * std)


def _save(model, processor, path: Path, eos_id: int, pad_id: int, bos_id: int | None) -> Path:
    from transformers import GenerationConfig

    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id, bos_token_id=bos_id)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def _llama_text(vocab: int, pad_id: int, eos_id: int, bos_id: int | None, **dims):
    from transformers import LlamaConfig

    base = dict(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=4096, pad_token_id=pad_id, eos_token_id=eos_id,
        bos_token_id=bos_id, tie_word_embeddings=False,
    )
    base.update(dims)
    return LlamaConfig(**base)


def build_idefics3(path: str | Path, *, seed: int = 0, image_size: int = 32, patch_size: int = 8,
                   scale_factor: int = 2, text: dict | None = None, vision: dict | None = None,
                   dtype=None, spread: bool = True) -> Path:
    """A tiny SmolVLM (Idefics3): SigLIP-style encoder + pixel shuffle + Llama decoder.

    `image_size` is the encoder's input (SmolVLM: 512); the processor resizes the longest edge
    to it (`size={"longest_edge": image_size}`) so every image is one tile of
    (image_size / patch_size)^2 / scale_factor^2 tokens (tiny default: 4).
    """
    import torch
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessorPil,
        Idefics3Processor,
        Idefics3VisionConfig,
    )

    path = Path(path)
    rows = [f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6)]
    specials = ["<|im_start|>", "<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>", *rows]
    tokenizer = build_tokenizer(specials, eos="<end_of_utterance>", pad="<|endoftext|>", bos="<|im_start|>")
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    eos_id = tokenizer.convert_tokens_to_ids("<end_of_utterance>")
    pad_id = tokenizer.pad_token_id
    vision_config = Idefics3VisionConfig(
        **{**dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  image_size=image_size, patch_size=patch_size), **(vision or {})}
    )
    text_config = _llama_text(_vocab_size(tokenizer), pad_id, eos_id, None, **(text or {}))
    config = Idefics3Config(
        vision_config=vision_config, text_config=text_config, scale_factor=scale_factor,
        image_token_id=image_id, pad_token_id=pad_id, tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config)
    if spread:
        spread_weights(model, seed)
    if dtype is not None:
        model = model.to(dtype)
    image_seq_len = (image_size // patch_size) ** 2 // scale_factor**2
    image_processor = Idefics3ImageProcessorPil(
        size={"longest_edge": image_size}, max_image_size={"longest_edge": image_size}, do_image_splitting=True,
    )
    processor = Idefics3Processor(image_processor, tokenizer, image_seq_len=image_seq_len,
                                  chat_template=SMOLVLM_CHAT_TEMPLATE)
    return _save(model, processor, path, eos_id, pad_id, None)


def build_smolvlm_256m(path: str | Path, *, seed: int = 0, dtype=None) -> Path:
    """SmolVLM-256M-sized Idefics3 with random weights and the tiny tokenizer (vocab 49152).

    SigLIP-B/16 at 512 px (12 layers, 768 hidden), pixel shuffle 4 -> 64 image tokens,
    SmolLM2-135M-sized decoder (576 hidden, 30 layers, 9 heads, 3 kv heads, 1536 MLP).
    """
    return build_idefics3(
        path, seed=seed, image_size=512, patch_size=16, scale_factor=4, dtype=dtype, spread=False,
        vision=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12),
        text=dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                  num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                  rope_theta=100000.0),
    )


def build_qwen2_vl(path: str | Path, *, seed: int = 0, patch_size: int = 4, max_pixels: int = 32 * 32) -> Path:
    """A tiny Qwen2-VL: dynamic resolution, `max_pixels` bounds the pixels per image."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessorPil

    from cropvlm.hf.loading import ImageOnlyQwen2VLProcessor

    path = Path(path)
    specials = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    tokenizer = build_tokenizer(specials, eos="<|im_end|>", pad="<|endoftext|>")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in specials}
    eos_id, pad_id = ids["<|im_end|>"], tokenizer.pad_token_id
    config = Qwen2VLConfig(
        text_config=dict(
            vocab_size=_vocab_size(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 10000.0},
            eos_token_id=eos_id, pad_token_id=pad_id, bos_token_id=None,
        ),
        vision_config=dict(depth=2, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2,
                           patch_size=patch_size, spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config)
    spread_weights(model, seed)
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=patch_size, merge_size=2, temporal_patch_size=2,
        min_pixels=(2 * patch_size) ** 2, max_pixels=max_pixels,
    )
    processor = ImageOnlyQwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                          chat_template=QWEN2_VL_CHAT_TEMPLATE)
    return _save(model, processor, path, eos_id, pad_id, None)


def build_llava(path: str | Path, *, seed: int = 0, image_size: int = 16, patch_size: int = 4) -> Path:
    """A tiny LLaVA-1.5: CLIP encoder (CLS dropped), MLP projector, Llama decoder."""
    import torch
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    path = Path(path)
    tokenizer = build_tokenizer(["<image>"], eos="</s>", pad="<pad>", bos="<s>")
    tokenizer.add_bos_token = True
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    eos_id, pad_id, bos_id = tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.bos_token_id
    vision_config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                     num_attention_heads=2, image_size=image_size, patch_size=patch_size,
                                     projection_dim=32)
    text_config = _llama_text(_vocab_size(tokenizer), pad_id, eos_id, bos_id)
    config = LlavaConfig(vision_config=vision_config, text_config=text_config, image_token_id=image_id,
                         vision_feature_layer=-2, vision_feature_select_strategy="default",
                         pad_token_id=pad_id, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    spread_weights(model, seed)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": image_size},
                                            crop_size={"height": image_size, "width": image_size})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=patch_size,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=LLAVA_CHAT_TEMPLATE)
    return _save(model, processor, path, eos_id, pad_id, bos_id)


BUILDERS = {"idefics3": build_idefics3, "qwen2_vl": build_qwen2_vl, "llava": build_llava}
