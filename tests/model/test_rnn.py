"""The GRU encoder-decoder: the encoder's last state against PyTorch's packed sequences, additive
attention against the formula written out, padding that changes nothing, and greedy decoding
that agrees with teacher forcing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tinyformers.model.rnn import (
    AdditiveAttention,
    GRUEncoderDecoder,
    RNNConfig,
    last_states,
)

VOCAB = 20
BOS, EOS, PAD = 5, 6, 0


def model(attention: bool, seed: int = 0) -> GRUEncoderDecoder:
    torch.manual_seed(seed)
    found = GRUEncoderDecoder(
        RNNConfig(vocab_size=VOCAB, n_embd=8, n_hidden=12, attention=attention)
    )
    return found.eval()


def batch(seed: int = 1):
    """Three sources of lengths 5, 3 and 1, right-padded, and their mask."""
    generator = torch.Generator().manual_seed(seed)
    lengths = [5, 3, 1]
    src = torch.randint(7, VOCAB, (3, 5), generator=generator)
    mask = torch.zeros(3, 5, dtype=torch.long)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
        src[row, n:] = PAD
    return src, mask, lengths


@pytest.mark.parametrize("attention", [False, True])
def test_the_last_state_is_the_packed_gru_s_final_hidden_state(attention) -> None:
    net = model(attention)
    src, mask, lengths = batch()
    memory = net.encode(src, mask)
    packed = nn.utils.rnn.pack_padded_sequence(
        net.wte(src), torch.tensor(lengths), batch_first=True, enforce_sorted=False
    )
    _, final = net.encoder(packed)  # (1, B, H): torch stops each sequence at its own length
    torch.testing.assert_close(memory.last, final[0])
    assert memory.annotations.shape == (3, 5, net.config.n_hidden)


def test_last_states_without_a_mask_is_the_last_column() -> None:
    annotations = torch.randn(2, 4, 3)
    torch.testing.assert_close(last_states(annotations, None), annotations[:, -1])
    with pytest.raises(ValueError, match="at least one token"):
        last_states(annotations, torch.zeros(2, 4, dtype=torch.long))


def test_additive_attention_is_the_formula_written_out() -> None:
    torch.manual_seed(3)
    attention = AdditiveAttention(6)
    state = torch.randn(2, 6)
    annotations = torch.randn(2, 4, 6)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    context, weights = attention(state, attention.key(annotations), annotations, mask)
    W, U, b = attention.query.weight, attention.key.weight, attention.key.bias
    v = attention.score.weight[0]
    for row in range(2):
        real = int(mask[row].sum())
        scores = torch.stack(
            [v @ torch.tanh(W @ state[row] + U @ annotations[row, j] + b) for j in range(real)]
        )
        expected = torch.exp(scores) / torch.exp(scores).sum()
        torch.testing.assert_close(weights[row, :real], expected)
        assert weights[row, real:].abs().sum().item() == 0.0
        mixed = sum(expected[j] * annotations[row, j] for j in range(real))
        torch.testing.assert_close(context[row], mixed)


def test_attention_weights_rows_sum_to_one_and_skip_the_padding() -> None:
    net = model(attention=True)
    src, mask, lengths = batch()
    tgt = torch.tensor([[BOS, 8, 9, 10]] * 3)
    weights = net(src, tgt, mask).attentions  # (B, T, S)
    assert weights.shape == (3, 4, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4))
    for row, n in enumerate(lengths):
        assert weights[row, :, n:].abs().sum().item() == 0.0


@pytest.mark.parametrize("attention", [False, True])
def test_padding_changes_nothing(attention) -> None:
    net = model(attention)
    src, mask, lengths = batch()
    tgt = torch.tensor([[BOS, 8, 9]] * 3)
    together = net(src, tgt, mask).logits
    for row, n in enumerate(lengths):
        alone = net(src[row : row + 1, :n], tgt[row : row + 1]).logits
        torch.testing.assert_close(together[row], alone[0], atol=1e-5, rtol=1e-5)


def test_the_decoder_cell_is_torch_s_gru_over_its_inputs() -> None:
    """Without attention the decoder's input at every step is [embedding; h_S]; run through
    nn.GRU with the cell's weights, the states give the same logits."""
    net = model(attention=False)
    src, mask, _ = batch()
    tgt = torch.tensor([[BOS, 8, 9, 10]] * 3)
    memory = net.encode(src, mask)
    gru = nn.GRU(net.decoder.input_size, net.decoder.hidden_size, batch_first=True)
    with torch.no_grad():
        gru.weight_ih_l0.copy_(net.decoder.weight_ih)
        gru.weight_hh_l0.copy_(net.decoder.weight_hh)
        gru.bias_ih_l0.copy_(net.decoder.bias_ih)
        gru.bias_hh_l0.copy_(net.decoder.bias_hh)
    context = memory.last[:, None, :].expand(-1, tgt.size(1), -1)  # (B, T, H)
    states, _ = gru(torch.cat([net.wte(tgt), context], dim=-1), memory.last[None])
    expected = net.head(torch.cat([states, context], dim=-1))
    torch.testing.assert_close(net(src, tgt, mask).logits, expected, atol=1e-5, rtol=1e-5)
    assert net(src, tgt, mask).attentions is None


@pytest.mark.parametrize("attention", [False, True])
def test_greedy_decoding_agrees_with_teacher_forcing(attention) -> None:
    net = model(attention, seed=4)
    src, mask, _ = batch()
    ids, weights = net.generate_greedy(src, BOS, EOS, mask, max_new_tokens=6)
    for row, written in enumerate(ids):
        tgt = torch.tensor([[BOS, *written]])
        n = int(mask[row].sum())
        out = net(src[row : row + 1, :n], tgt)
        assert out.logits[0].argmax(-1).tolist()[: len(written)] == written
        if attention:
            steps = min(len(written) + 1, weights.size(1))  # the steps up to its own [EOS]
            torch.testing.assert_close(
                out.attentions[0, :steps], weights[row, :steps, :n], atol=1e-5, rtol=1e-5
            )


def test_the_loss_is_the_cross_entropy_of_the_logits() -> None:
    net = model(attention=True)
    src, mask, _ = batch()
    tgt = torch.tensor([[BOS, 8, 9]] * 3)
    targets = torch.tensor([[8, 9, EOS], [8, EOS, -100], [EOS, -100, -100]])
    out = net(src, tgt, mask, targets)
    expected = nn.functional.cross_entropy(out.logits.reshape(-1, VOCAB), targets.reshape(-1))
    torch.testing.assert_close(out.loss, expected)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"n_hidden": 0}, "n_hidden"),
        ({"vocab_size": 2.5}, "vocab_size"),
        ({"attention": "yes"}, "attention"),
        ({"max_output": True}, "max_output"),
    ],
)
def test_bad_configs_are_refused(change, message) -> None:
    with pytest.raises(ValueError, match=message):
        RNNConfig(**change)


def test_an_empty_source_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        model(attention=True).encode(torch.zeros(1, 0, dtype=torch.long))
