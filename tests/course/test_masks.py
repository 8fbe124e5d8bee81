"""The mask views recompute a head exactly as the model does: the weights equal the model's own
attention weights, masked entries are exactly 0, rows sum to 1; padding changes nothing for the
real tokens; the leakage helpers agree with the experiment they serve."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tinyformers.course import masks as mv
from tinyformers.hub.registry import load_shipped
from tinyformers.model.attention import causal_mask, prefix_lm_mask
from tinyformers.model.config import BertConfig, GPTConfig
from tinyformers.text.corpora import generate_corpus, lesson_corpus
from tinyformers.text.tokenizers import train_char
from tinyformers.training.experiments import (
    CAUSAL,
    LEAKY,
    RunUpdate,
    check_text,
    histories_by_variant,
    leakage_experiment,
)
from tinyformers.training.loop import Progress

SENTENCE = "the old dog sees Mia . she runs ."
SHORT = "Tom runs ."


@pytest.fixture(scope="module")
def stories():
    return load_shipped("gpt-stories")


@pytest.fixture(scope="module")
def dates():
    return load_shipped("seq2seq-date")


def tokens_of(ids: list[int]) -> list[str]:
    return [f"t{i}" for i in ids]


def assert_well_formed(view: mv.MaskView) -> None:
    """The properties every view must have, whatever the mask."""
    torch.testing.assert_close(view.weights, view.returned, atol=1e-6, rtol=0)
    assert torch.all(view.weights[~view.mask] == 0)  # exactly 0, not merely small
    assert torch.all(view.returned[~view.mask] == 0)
    assert torch.all(view.masked_scores[~view.mask] == float("-inf"))
    assert torch.equal(view.masked_scores[view.mask], view.scores[view.mask])
    seen = view.mask.any(dim=-1)
    torch.testing.assert_close(view.weights.sum(-1)[seen], torch.ones(int(seen.sum())))
    assert view.mask.shape == view.scores.shape == (len(view.query_tokens), len(view.key_tokens))


# ---------------------------------------------------------------------------------------------
# Causal
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("position", ["learned", "rotary", "sinusoidal"])
def test_causal_view_equals_the_models_own_weights(make_model, position) -> None:
    model = make_model(GPTConfig, position=position)
    ids = [3, 7, 1, 9, 9, 4, 2]
    for layer in range(2):
        for head in range(2):
            view = mv.causal_view(model, ids, tokens_of(ids), layer, head)
            out = model(torch.tensor([ids]), output_attentions=True)
            torch.testing.assert_close(
                view.weights, out.attentions[layer][0, head], atol=1e-6, rtol=0
            )
            assert torch.equal(view.mask, causal_mask(len(ids)))
            assert_well_formed(view)


def test_causal_view_on_a_shipped_model(stories) -> None:
    ids = stories.tokenizer.encode(SENTENCE)
    tokens = stories.tokenizer.display_tokens(ids)
    view = mv.causal_view(stories.model, ids, tokens, 2, 1)
    assert_well_formed(view)
    assert view.n_masked == len(ids) * (len(ids) - 1) // 2
    assert view.weights[0, 0] == 1  # the first token can only look at itself


def test_scores_are_the_heads_dot_products_scaled(tiny_gpt) -> None:
    """A reference written out with the layer's weight matrices: head h owns columns
    h*d .. (h+1)*d of q_proj and k_proj."""
    ids, layer, head = [1, 2, 3, 4], 1, 1
    view = mv.causal_view(tiny_gpt, ids, tokens_of(ids), layer, head)
    hidden = tiny_gpt(torch.tensor([ids]), output_hidden_states=True).hidden_states[layer][0]
    block = tiny_gpt.h[layer]
    x = block.ln_1(hidden)  # pre-LN: attention reads the normalized stream
    d = tiny_gpt.config.n_embd // tiny_gpt.config.n_head
    cols = slice(head * d, (head + 1) * d)
    q = x @ block.attn.q_proj.weight[cols].T + block.attn.q_proj.bias[cols]
    k = x @ block.attn.k_proj.weight[cols].T + block.attn.k_proj.bias[cols]
    torch.testing.assert_close(view.scores, q @ k.T / d**0.5, atol=1e-5, rtol=0)


def test_run_with_the_causal_mask_reproduces_the_forward_pass(make_model) -> None:
    for position in ("learned", "rotary"):
        model = make_model(GPTConfig, position=position)
        ids = torch.tensor([[5, 4, 3, 2, 1, 0, 7]])
        own = mv.run_self_attention(model, ids)
        again = mv.run_self_attention(model, ids, mask=causal_mask(7))
        for a, b in zip(own.attentions, again.attentions, strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
        torch.testing.assert_close(own.outputs, again.outputs, atol=1e-5, rtol=0)
        for a, b in zip(own.block_inputs, again.block_inputs, strict=True):
            torch.testing.assert_close(a, b)


def test_causal_view_refuses_a_model_without_the_mask(make_model) -> None:
    model = make_model(GPTConfig, causal=False)
    with pytest.raises(ValueError, match="causal"):
        mv.causal_view(model, [1, 2], ["a", "b"], 0, 0)


# ---------------------------------------------------------------------------------------------
# Prefix-LM
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix_len", [0, 1, 3, 6])
def test_prefix_lm_mask_is_bidirectional_in_the_prefix_and_causal_after(prefix_len) -> None:
    t = 6
    mask = prefix_lm_mask(t, prefix_len)
    for query in range(t):
        for key in range(t):
            expected = key < prefix_len or key <= query
            assert bool(mask[query, key]) == expected, (query, key)
    prefix = mask[:prefix_len, :prefix_len]
    assert torch.all(prefix)  # every prefix position sees every other one, both ways
    assert torch.equal(mask[prefix_len:, prefix_len:], causal_mask(t - prefix_len))


@pytest.mark.parametrize("prefix_len", [0, 2, 5])
def test_prefix_view_applies_the_mask_in_every_layer(make_model, prefix_len) -> None:
    model = make_model(GPTConfig, position="rotary")
    ids = [3, 1, 4, 1, 5]
    view = mv.prefix_view(model, ids, tokens_of(ids), 1, 0, prefix_len)
    assert torch.equal(view.mask, prefix_lm_mask(5, prefix_len))
    assert_well_formed(view)
    if prefix_len >= 2:  # position 0 reads position 1 of the prefix: not possible causally
        assert view.weights[0, 1] > 0
    if prefix_len == 0:
        causal = mv.causal_view(model, ids, tokens_of(ids), 1, 0)
        torch.testing.assert_close(view.weights, causal.weights)


def test_prefix_length_is_checked(tiny_gpt) -> None:
    with pytest.raises(ValueError, match="prefix length must be between 0 and 3"):
        mv.prefix_view(tiny_gpt, [1, 2, 3], ["a", "b", "c"], 0, 0, 4)


# ---------------------------------------------------------------------------------------------
# Padding
# ---------------------------------------------------------------------------------------------


def test_padding_view_hides_the_padded_keys(stories) -> None:
    tok = stories.tokenizer
    batch = [tok.encode(SENTENCE), tok.encode(SHORT)]
    strings = [tok.display_tokens(ids) for ids in batch]
    view = mv.padding_view(stories.model, batch, strings, 1, 3, 1, tok.pad_id)
    n = len(batch[1])
    assert view.key_tokens[n:] == [mv.PAD_TOKEN] * (len(batch[0]) - n)
    assert not view.mask[:, n:].any()  # no query sees a [PAD] key
    assert torch.equal(view.mask[:n, :n], causal_mask(n))  # causal among the real tokens
    assert_well_formed(view)


@pytest.mark.parametrize("family", ["gpt", "bert"])
def test_padded_batch_outputs_of_real_tokens_match_the_unpadded_run(family) -> None:
    loaded = load_shipped(f"{family}-stories")
    tok = loaded.tokenizer
    sequences = [tok.encode(SENTENCE), tok.encode(SHORT)]
    if family == "bert":
        sequences = [[tok.cls_id, *ids, tok.sep_id] for ids in sequences]
    batch = mv.padded_batch(loaded.model, sequences, tok.pad_id)
    assert max(batch.differences) < 1e-5
    model = loaded.model
    for row, ids in enumerate(sequences):
        alone = model(torch.tensor([ids]), output_hidden_states=True).hidden_states[-1][0]
        padded = model(
            batch.ids, attention_mask=batch.attention_mask, output_hidden_states=True
        ).hidden_states[-1][row, : len(ids)]
        torch.testing.assert_close(padded, alone, atol=1e-5, rtol=0)
    for layer_weights in batch.attentions:
        for row, n in enumerate(batch.lengths):
            assert torch.all(layer_weights[row, :, :, n:] == 0)  # [PAD] keys get no weight
    if family == "bert":  # bidirectional: without the mask, real tokens read the padding
        assert max(batch.differences_without_mask) > 1e-2
    else:  # right padding comes after every real token: the causal mask hides it already
        assert max(batch.differences_without_mask) < 1e-5


def test_padded_batch_checks_its_input(tiny_bert) -> None:
    with pytest.raises(ValueError, match="at least two sequences"):
        mv.padded_batch(tiny_bert, [[1, 2]], 0)
    with pytest.raises(ValueError, match="at least one token"):
        mv.padded_batch(tiny_bert, [[1, 2], []], 0)
    with pytest.raises(ValueError, match="padding id"):
        mv.padded_batch(tiny_bert, [[1, 2], [3]], 10_000)
    with pytest.raises(ValueError, match="only 16 positions"):
        mv.padded_batch(tiny_bert, [[1] * 17, [3]], 0)


# ---------------------------------------------------------------------------------------------
# Cross-attention
# ---------------------------------------------------------------------------------------------


def test_cross_view_on_the_date_model(dates) -> None:
    tok, model = dates.tokenizer, dates.model
    sources = [tok.encode("12 March 2021"), tok.encode("5 May 1999")]
    targets = []
    for ids in sources:
        out = model.generate_greedy(torch.tensor([ids]), tok.bos_id, tok.eos_id)
        targets.append([tok.bos_id, *out[0].tolist()])
    strings = [tok.display_tokens(ids) for ids in sources]
    target_strings = [tok.display_tokens(ids) for ids in targets]
    for layer in range(2):
        view = mv.cross_view(model, sources, targets, strings, target_strings, layer, 2, 1, 0)
        assert_well_formed(view)
        n = len(sources[1])
        assert view.key_tokens == strings[1] + [mv.PAD_TOKEN] * (len(sources[0]) - n)
        assert view.mask[:, :n].all() and not view.mask[:, n:].any()
        assert view.query_tokens[0] == "[BOS]"


def test_cross_view_equals_a_direct_cross_attention_run(tiny_seq2seq) -> None:
    sources, targets = [[5, 6, 7, 8], [9, 10]], [[1, 2, 3], [1, 4]]
    for row in range(2):
        view = mv.cross_view(
            tiny_seq2seq,
            sources,
            targets,
            [tokens_of(s) for s in sources],
            [tokens_of(t) for t in targets],
            1,
            1,
            row,
            0,
        )
        alone = tiny_seq2seq(
            torch.tensor([sources[row]]), torch.tensor([targets[row]]), output_attentions=True
        ).cross_attentions[1][0, 1]
        n, m = len(targets[row]), len(sources[row])
        torch.testing.assert_close(view.weights[:n, :m], alone, atol=1e-5, rtol=0)
        assert_well_formed(view)


def test_cross_view_needs_an_encoder_decoder(tiny_gpt) -> None:
    with pytest.raises(ValueError, match="encoder-decoder"):
        mv.cross_view(tiny_gpt, [[1], [2]], [[1], [1]], [["a"], ["b"]], [["x"], ["x"]], 0, 0, 0, 0)


# ---------------------------------------------------------------------------------------------
# Checks on layer, head and ids
# ---------------------------------------------------------------------------------------------


def test_layer_head_and_ids_are_checked(tiny_gpt) -> None:
    with pytest.raises(ValueError, match="layer must be between 0 and 1"):
        mv.causal_view(tiny_gpt, [1, 2], ["a", "b"], 2, 0)
    with pytest.raises(ValueError, match="head must be between 0 and 1"):
        mv.causal_view(tiny_gpt, [1, 2], ["a", "b"], 0, 5)
    with pytest.raises(ValueError, match="no tokens"):
        mv.causal_view(tiny_gpt, [], [], 0, 0)
    with pytest.raises(ValueError, match="token ids must be between 0 and 39"):
        mv.causal_view(tiny_gpt, [1, 99], ["a", "b"], 0, 0)
    with pytest.raises(ValueError, match="2 positions but 1 token strings"):
        mv.causal_view(tiny_gpt, [1, 2], ["a"], 0, 0)


def test_a_mask_of_ones_own_only_for_a_gpt(make_model) -> None:
    bert = make_model(BertConfig)
    with pytest.raises(ValueError, match="GPT"):
        mv.run_self_attention(bert, torch.tensor([[1, 2]]), mask=causal_mask(2))
    model = make_model(GPTConfig)
    with pytest.raises(ValueError, match="boolean matrix"):
        mv.run_self_attention(
            model, torch.tensor([[1, 2]]), mask=torch.ones(3, 3, dtype=torch.bool)
        )


# ---------------------------------------------------------------------------------------------
# The leakage experiment's helpers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["too short", "x" * 20, "Зоя 🐶 " * 5])
def test_short_text_is_refused_with_the_experiments_own_message(text) -> None:
    with pytest.raises(ValueError) as expected:
        leakage_experiment(text, steps=10)
    with pytest.raises(ValueError) as early:
        check_text(text)
    assert str(early.value) == str(expected.value)


@pytest.mark.parametrize("text", ["Зоя видит 🐶🐱 собаку. " * 3, "ab\ncd\te " * 10])
def test_one_character_one_token(text) -> None:
    assert len(train_char(text).encode(text)) == len(text)


def test_long_enough_text_passes_the_check() -> None:
    check_text("the dog runs . " * 5)


def test_histories_group_updates_by_variant() -> None:
    def progress(step: int) -> Progress:
        return Progress(step, 1.0 / step, None, 0.01, 100.0, 0.1)

    updates = [RunUpdate(CAUSAL, progress(1)), RunUpdate(CAUSAL, progress(2)), "a sample"]
    updates += [RunUpdate(LEAKY, progress(1))]
    histories = histories_by_variant(updates)
    assert list(histories) == [CAUSAL, LEAKY]
    assert [p.step for p in histories[CAUSAL]] == [1, 2]
    assert histories_by_variant([]) == {}


# ---------------------------------------------------------------------------------------------
# A lesson's sentences and dates as views
# ---------------------------------------------------------------------------------------------


def test_the_shortest_sequence_gets_padding() -> None:
    assert mv.padded_row([5, 3, 4]) == 1
    assert mv.padded_row([4, 4]) == 0
    with pytest.raises(ValueError, match="no sequences"):
        mv.padded_row([])


def test_pad_id_of_falls_back_to_zero(stories) -> None:
    assert mv.pad_id_of(stories.tokenizer) == stories.tokenizer.pad_id
    assert mv.pad_id_of(type("NoPad", (), {"pad_id": None})()) == 0


def test_batch_tokens_pad_to_the_longest(stories) -> None:
    tok = stories.tokenizer
    long, short = tok.encode(SENTENCE), tok.encode(SHORT)
    strings = mv.batch_tokens(tok, [short, long])
    assert strings[1] == tok.display_tokens(long)
    assert strings[0] == tok.display_tokens(short) + [mv.PAD_TOKEN] * (len(long) - len(short))


def test_sentence_view_picks_the_view_of_each_kind(stories) -> None:
    tok, model = stories.tokenizer, stories.model
    first, second = tok.encode(SENTENCE), tok.encode(SHORT)
    tokens = tok.display_tokens(first)
    causal = mv.sentence_view("causal", model, tok, [first], 1, 2)
    assert torch.equal(causal.weights, mv.causal_view(model, first, tokens, 1, 2).weights)
    prefix = mv.sentence_view("prefix", model, tok, [first, second], 1, 2, prefix_len=4)
    expected = mv.prefix_view(model, first, tokens, 1, 2, 4)
    assert torch.equal(prefix.mask, expected.mask) and torch.equal(prefix.weights, expected.weights)
    padding = mv.sentence_view("padding", model, tok, [first, second], 1, 2)
    strings = [tokens, tok.display_tokens(second)]
    direct = mv.padding_view(model, [first, second], strings, 1, 2, 1, tok.pad_id)
    assert padding.key_tokens == direct.key_tokens and torch.equal(padding.mask, direct.mask)
    with pytest.raises(ValueError, match="not a self-attention mask"):
        mv.sentence_view("cross", model, tok, [first], 0, 0)


def test_token_room_is_cut_to_the_context(tiny_gpt) -> None:
    assert mv.token_room(tiny_gpt, 24) == tiny_gpt.config.block_size == 16
    assert mv.token_room(tiny_gpt, 5) == 5
    with pytest.raises(ValueError, match="at least 1"):
        mv.token_room(tiny_gpt, 0)


def test_sentence_ids_cut_to_the_limit_and_refuse_an_empty_text(stories) -> None:
    tok = stories.tokenizer
    assert mv.sentence_ids(tok, SENTENCE, 3) == tok.encode(SENTENCE)[:3]
    with pytest.raises(mv.EmptyText, match="no tokens for this model"):
        mv.sentence_ids(tok, "", 3)


def test_batch_ids_are_berts_input_or_gpt_ids(stories) -> None:
    tok = stories.tokenizer
    texts = [SENTENCE, "Tom runs ."]
    assert mv.batch_ids(tok, texts, "gpt", 4) == [tok.encode(t)[:4] for t in texts]
    with pytest.raises(mv.EmptyText):
        mv.batch_ids(tok, [SENTENCE, ""], "gpt", 4)
    bert = load_shipped("bert-stories").tokenizer
    rows = mv.batch_ids(bert, texts, "bert", 24)
    assert [row[0] for row in rows] == [bert.cls_id] * 2 and rows[1][-1] == bert.sep_id


def test_builtin_corpora() -> None:
    assert mv.builtin_corpus("lessons") == lesson_corpus()
    assert mv.builtin_corpus("stories") == generate_corpus(mv.STORIES, seed=0)
    assert set(mv.CORPORA) == {"stories", "lessons", "own"}
    with pytest.raises(ValueError, match="unknown built-in corpus"):
        mv.builtin_corpus("own")


def test_date_ids_tell_empty_from_unreadable(dates) -> None:
    tok = dates.tokenizer
    assert mv.date_ids(tok, " 5 May 1999 ", "date", "12 March 2021") == tok.encode("5 May 1999")
    with pytest.raises(mv.EmptyText, match="The date is empty: type a date such as 1 May"):
        mv.date_ids(tok, "   ", "date", "1 May")
    with pytest.raises(ValueError, match="second date has characters") as raised:
        mv.date_ids(tok, "5 мая 1999", "second date", "1 May")
    assert not isinstance(raised.value, mv.EmptyText)


def test_date_cross_view_reads_the_greedy_output_on_the_shorter_date(dates) -> None:
    tok, model = dates.tokenizer, dates.model
    sources = [tok.encode("12 March 2021"), tok.encode("5 May 1999")]
    targets = [mv.decoder_input(model, tok, ids) for ids in sources]
    greedy = model.generate_greedy(torch.tensor([sources[0]]), tok.bos_id, tok.eos_id)
    assert targets[0] == [tok.bos_id, *greedy[0].tolist()]
    view = mv.date_cross_view(model, tok, sources, targets, 1, 2)
    strings = [tok.display_tokens(ids) for ids in sources]
    target_strings = [tok.display_tokens(ids) for ids in targets]
    direct = mv.cross_view(model, sources, targets, strings, target_strings, 1, 2, 1, tok.pad_id)
    assert view.key_tokens == direct.key_tokens and view.query_tokens == direct.query_tokens
    assert torch.equal(view.weights, direct.weights)


def test_largest_pad_weight_is_zero_with_the_mask(stories) -> None:
    tok = stories.tokenizer
    batch = mv.padded_batch(stories.model, [tok.encode(SENTENCE), tok.encode(SHORT)], 0)
    assert batch.largest_pad_weight(1, 1) == 0.0
    n = len(tok.encode(SHORT))
    unmasked = mv.run_self_attention(stories.model, batch.ids)  # the [PAD] keys are readable
    leaky = dataclasses.replace(batch, attentions=unmasked.attentions)
    expected = unmasked.attentions[1][1, 1][:, n:].abs().max().item()
    assert leaky.largest_pad_weight(1, 1) == expected > 0


# ---------------------------------------------------------------------------------------------
# Predict, then reveal
# ---------------------------------------------------------------------------------------------


def test_hidden_pairs_are_the_cells_above_the_diagonal(stories) -> None:
    ids = mv.sentence_ids(stories.tokenizer, SENTENCE, mv.MAX_TOKENS)
    prediction = mv.predict_hidden_pairs(stories, ids)
    assert prediction.values == {"model": "gpt-stories", "tokens": 9}
    reveal = prediction.reveal()
    assert reveal.answer == int((~causal_mask(9)).sum()) == 9 * 8 // 2
    assert reveal.values == {"cells": 81, "seen": 45}


def test_questions_on_the_causal_mask_need_a_causal_model() -> None:
    bert = load_shipped("bert-stories")
    with pytest.raises(ValueError, match="no causal mask"):
        mv.predict_hidden_pairs(bert, [2, 3, 4])
    with pytest.raises(ValueError, match="no causal mask"):
        mv.predict_prefix_changes(bert, [2, 3, 4])


@pytest.mark.parametrize("text", [SENTENCE, SHORT, "Mia", "the dog sees the cat . the cat runs"])
def test_prefix_changes_only_the_prefix_before_its_last_token(stories, text) -> None:
    ids = mv.sentence_ids(stories.tokenizer, text, mv.MAX_TOKENS)
    prediction = mv.predict_prefix_changes(stories, ids)
    prefix = (len(ids) + 1) // 2
    assert prediction.values["prefix"] == prefix
    reveal = prediction.reveal()
    # rows 0 .. prefix - 2 gain keys; the last prefix row and every row after see the same
    assert reveal.answer == max(prefix - 1, 0)
    assert torch.equal(reveal.data["view"].mask, prefix_lm_mask(len(ids), prefix))


def test_prefix_changes_names_the_tokens_that_change(stories) -> None:
    ids = mv.sentence_ids(stories.tokenizer, SENTENCE, mv.MAX_TOKENS)
    prediction = mv.predict_prefix_changes(stories, ids)
    assert prediction.values["prefix_tokens"] == "'the old dog sees Mia'"
    changed = prediction.reveal().values["changed"]
    assert changed == "0: 'the', 1: ' old', 2: ' dog', 3: ' sees'"


def test_padding_leak_is_no_for_a_gpt_padded_on_the_right(stories) -> None:
    prediction = mv.predict_padding_leak(stories, [SENTENCE, SHORT])
    assert prediction.values == {"model": "gpt-stories", "padded": "'Tom runs .'", "pads": 6}
    reveal = prediction.reveal()
    assert reveal.answer == "No, they would stay the same"
    assert reveal.values["change"] < 1e-4


def test_padding_leak_is_yes_for_a_model_that_reads_both_ways() -> None:
    bert = load_shipped("bert-stories")
    prediction = mv.predict_padding_leak(bert, [SHORT, SENTENCE])
    assert prediction.values["padded"] == "'Tom runs .'"  # the shorter one, wherever it stands
    reveal = prediction.reveal()
    assert reveal.answer == "Yes, they would change"
    assert reveal.values["change"] > 0.1


def test_padding_leak_needs_two_sentences_of_different_lengths(stories) -> None:
    with pytest.raises(ValueError, match="two sentences"):
        mv.predict_padding_leak(stories, [SENTENCE, None])
    with pytest.raises(ValueError, match="same number of tokens"):
        mv.predict_padding_leak(stories, [SHORT, SHORT])
