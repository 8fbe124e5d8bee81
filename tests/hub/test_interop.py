"""Our GPT and BERT against transformers' GPT2LMHeadModel and BertForMaskedLM, same weights."""

import pytest
import torch

from tinyformers.hub.checkpoint import save_checkpoint
from tinyformers.hub.interop import (
    bert_from_hf,
    bert_to_hf,
    export_hf,
    from_hf,
    gpt_from_hf,
    gpt_to_hf,
    to_hf,
)
from tinyformers.model.config import BertConfig, GPTConfig

transformers = pytest.importorskip("transformers")

ATOL = 1e-5


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Nothing here may reach the network: from_pretrained must read the local folder."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


def batch(model, t=10, seed=0):
    """Two sequences of ids, segment ids, and an attention mask that pads the second one."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, model.config.vocab_size, (2, t), generator=gen)
    token_type_ids = torch.zeros_like(ids)
    token_type_ids[:, t // 2 :] = 1
    attention_mask = torch.ones_like(ids)
    attention_mask[1, t - 3 :] = 0  # the second sequence ends in three padding tokens
    return ids, token_type_ids, attention_mask


def assert_same_outputs(ours, theirs, n_layer: int):
    assert max_diff(ours.logits, theirs.logits) < ATOL
    assert len(theirs.attentions) == len(ours.attentions) == n_layer
    for a, b in zip(ours.attentions, theirs.attentions, strict=True):
        assert max_diff(a, b) < ATOL
    assert len(theirs.hidden_states) == len(ours.hidden_states) == n_layer + 1
    for a, b in zip(ours.hidden_states, theirs.hidden_states, strict=True):
        assert max_diff(a, b) < ATOL


# ---------------------------------------------------------------------------------------------
# GPT
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["gelu_tanh", "gelu"])
def test_gpt_matches_gpt2_lm_head_model(make_model, activation):
    ours = make_model(GPTConfig, activation=activation, n_inner=48)
    hf = gpt_to_hf(ours)
    assert type(hf).__name__ == "GPT2LMHeadModel"
    assert not hf.training
    ids, _, attention_mask = batch(ours)
    with torch.no_grad():
        for mask in (None, attention_mask):
            mine = ours(ids, attention_mask=mask, output_attentions=True, output_hidden_states=True)
            theirs = hf(ids, attention_mask=mask, output_attentions=True, output_hidden_states=True)
            assert_same_outputs(mine, theirs, ours.config.n_layer)
            assert max_diff(ours(ids, attention_mask=mask).logits, theirs.logits) < ATOL


def test_gpt_loss_matches_gpt2_loss(tiny_gpt):
    ours = tiny_gpt
    hf = gpt_to_hf(ours)
    ids, _, _ = batch(ours)
    with torch.no_grad():
        # transformers shifts the labels itself; we take already-shifted targets
        hf_loss = hf(ids, labels=ids).loss
        targets = torch.cat([ids[:, 1:], torch.full((2, 1), -100)], dim=1)
        assert abs(ours(ids, targets=targets).loss.item() - hf_loss.item()) < ATOL


def test_gpt_round_trip_through_transformers_is_exact(tiny_gpt):
    ours = tiny_gpt
    back = gpt_from_hf(gpt_to_hf(ours))
    assert back.config.replace(n_inner=None) == ours.config
    mine, theirs = ours.state_dict(), back.state_dict()
    assert mine.keys() == theirs.keys()
    for name in mine:
        assert torch.equal(mine[name], theirs[name]), name
    assert back.lm_head.weight is back.wte.weight
    ids, _, _ = batch(ours)
    with torch.no_grad():
        assert torch.equal(back(ids).logits, ours(ids).logits)


def test_gpt_imported_from_a_randomly_initialised_gpt2():
    config = transformers.GPT2Config(
        vocab_size=50, n_positions=12, n_embd=24, n_layer=2, n_head=3,
        activation_function="gelu_new", attn_implementation="eager",
    )  # fmt: skip
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for parameter in hf.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    ours = from_hf(hf)
    assert ours.config.block_size == 12 and ours.config.mlp_width == 96
    ids = torch.randint(0, 50, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        mine = ours(ids, output_attentions=True, output_hidden_states=True)
        theirs = hf(ids, output_attentions=True, output_hidden_states=True)
    assert_same_outputs(mine, theirs, 2)


def test_gpt_import_refuses_an_unknown_activation():
    config = transformers.GPT2Config(
        vocab_size=50, n_positions=12, n_embd=24, n_layer=1, n_head=3, activation_function="relu"
    )
    with pytest.raises(ValueError, match="activation 'relu' has no counterpart"):
        gpt_from_hf(transformers.GPT2LMHeadModel(config))


def test_gpt_import_never_silently_changes_the_attention_scaling():
    config = transformers.GPT2Config(
        vocab_size=50, n_positions=12, n_embd=24, n_layer=2, n_head=3,
        scale_attn_by_inverse_layer_idx=True, attn_implementation="eager",
    )  # fmt: skip
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for parameter in hf.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    try:
        ours = gpt_from_hf(hf)
    except ValueError:
        return  # refusing is fine
    ids = torch.randint(0, 50, (1, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert max_diff(ours(ids).logits, hf(ids).logits) < ATOL


# ---------------------------------------------------------------------------------------------
# BERT
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["gelu", "gelu_tanh"])
def test_bert_matches_bert_for_masked_lm(make_model, activation):
    ours = make_model(BertConfig, activation=activation, type_vocab_size=3)
    hf = bert_to_hf(ours)
    assert type(hf).__name__ == "BertForMaskedLM"
    ids, token_type_ids, attention_mask = batch(ours)
    token_type_ids[0, -1] = 2
    kwargs = dict(token_type_ids=token_type_ids, output_attentions=True, output_hidden_states=True)
    with torch.no_grad():
        for mask in (None, attention_mask):
            mine = ours(ids, attention_mask=mask, **kwargs)
            theirs = hf(ids, attention_mask=mask, **kwargs)
            assert_same_outputs(mine, theirs, ours.config.n_layer)
        padded_keys = theirs.attentions[0][1, :, :, -3:]
        assert (padded_keys == 0).all()


def test_bert_mlm_loss_matches(tiny_bert):
    ours = tiny_bert
    hf = bert_to_hf(ours)
    ids, token_type_ids, attention_mask = batch(ours)
    labels = torch.full_like(ids, -100)
    labels[0, 3], labels[1, 1] = 4, 9
    kwargs = dict(token_type_ids=token_type_ids, attention_mask=attention_mask)
    with torch.no_grad():
        mine = ours(ids, labels=labels, **kwargs).loss
        theirs = hf(ids, labels=labels, **kwargs).loss
    assert abs(mine.item() - theirs.item()) < ATOL


def test_bert_round_trip_through_transformers_is_exact(tiny_bert):
    ours = tiny_bert
    back = bert_from_hf(bert_to_hf(ours))
    assert back.config.replace(n_inner=None) == ours.config
    mine, theirs = ours.state_dict(), back.state_dict()
    assert mine.keys() == theirs.keys()
    for name in mine:
        assert torch.equal(mine[name], theirs[name]), name
    assert back.mlm_head.decoder.weight is back.wte.weight
    ids, token_type_ids, attention_mask = batch(ours)
    with torch.no_grad():
        same = dict(token_type_ids=token_type_ids, attention_mask=attention_mask)
        assert torch.equal(back(ids, **same).logits, ours(ids, **same).logits)


def test_bert_imported_from_a_randomly_initialised_bert():
    config = transformers.BertConfig(
        vocab_size=60, hidden_size=24, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=40, max_position_embeddings=14, attn_implementation="eager",
    )  # fmt: skip
    torch.manual_seed(0)
    hf = transformers.BertForMaskedLM(config).eval()
    with torch.no_grad():
        for parameter in hf.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    ours = from_hf(hf)
    assert ours.config.mlp_width == 40
    ids = torch.randint(0, 60, (2, 14), generator=torch.Generator().manual_seed(1))
    token_type_ids = (torch.arange(14) >= 7).long().expand(2, 14)
    with torch.no_grad():
        kwargs = dict(
            token_type_ids=token_type_ids, output_attentions=True, output_hidden_states=True
        )
        assert_same_outputs(ours(ids, **kwargs), hf(ids, **kwargs), 2)


# ---------------------------------------------------------------------------------------------
# What cannot be exported, and export from a checkpoint folder
# ---------------------------------------------------------------------------------------------

NOT_EXPORTABLE = [
    (GPTConfig, dict(position="rotary"), "GPT-2", "positions are 'rotary', not 'learned'"),
    (GPTConfig, dict(position="sinusoidal"), "GPT-2", "positions are 'sinusoidal'"),
    (GPTConfig, dict(ln_placement="post"), "GPT-2", "LayerNorm is post-LN, not pre-LN"),
    (GPTConfig, dict(causal=False), "GPT-2", "the causal mask is switched off"),
    (GPTConfig, dict(residual=False), "GPT-2", "residual connections or LayerNorm"),
    (BertConfig, dict(ln_placement="pre"), "BERT", "LayerNorm is pre-LN, not post-LN"),
    (BertConfig, dict(layer_norm=False), "BERT", "residual connections or LayerNorm"),
]


@pytest.mark.parametrize("config_class, changes, layout, reason", NOT_EXPORTABLE)
def test_export_refuses_non_standard_models(make_model, config_class, changes, layout, reason):
    model = make_model(config_class, **changes)
    with pytest.raises(ValueError, match=f"cannot be exported to the {layout} layout: .*{reason}"):
        to_hf(model)


def test_export_lists_every_problem(make_model):
    model = make_model(GPTConfig, position="rotary", causal=False)
    with pytest.raises(ValueError, match="'rotary'.*; the causal mask is switched off"):
        to_hf(model)


def test_seq2seq_has_no_counterpart(tiny_seq2seq):
    with pytest.raises(ValueError, match="Seq2Seq has no transformers counterpart"):
        to_hf(tiny_seq2seq)
    with pytest.raises(ValueError, match="cannot import a Linear"):
        from_hf(torch.nn.Linear(2, 2))


@pytest.mark.parametrize(
    "config_class, hf_class", [(GPTConfig, "GPT2LMHeadModel"), (BertConfig, "BertForMaskedLM")]
)
def test_export_hf_folder_loads_with_from_pretrained(
    tmp_path, make_model, char_tokenizer, config_class, hf_class
):
    ours = make_model(config_class)
    save_checkpoint(ours, tmp_path / "ours", tokenizer=char_tokenizer)
    out = export_hf(tmp_path / "ours", tmp_path / "hf")
    assert out == tmp_path / "hf"
    assert (out / "tokenizer.json").read_text() == char_tokenizer.to_str()
    loaded = getattr(transformers, hf_class).from_pretrained(out, local_files_only=True).eval()
    ids, token_type_ids, attention_mask = batch(ours)
    kwargs = {"attention_mask": attention_mask}
    if hf_class == "BertForMaskedLM":
        kwargs["token_type_ids"] = token_type_ids
    with torch.no_grad():
        assert max_diff(loaded(ids, **kwargs).logits, ours(ids, **kwargs).logits) < ATOL
