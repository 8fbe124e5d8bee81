"""Tiny trained models kept in an AppTest session, for tests of what the app does with them."""

from __future__ import annotations


def keep_tiny_models(names: list[str]) -> None:
    """Keep one tiny GPT (the same weights each time) per name in this session, as the training
    page does with a model it trained."""
    import torch
    from widgets import keep_trained_model

    from tinyformers.hub.registry import LoadedModel
    from tinyformers.model.build import build_model
    from tinyformers.model.config import GPTConfig
    from tinyformers.text.tokenizers import train_char

    tokenizer = train_char("the cat sat on the mat")
    config = GPTConfig(vocab_size=tokenizer.vocab_size, n_layer=1, n_head=1, n_embd=8, block_size=8)
    for name in names:
        torch.manual_seed(0)
        model = build_model(config).eval()
        keep_trained_model(LoadedModel(name, "gpt", model, tokenizer, "trained", {}))
