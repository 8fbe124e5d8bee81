"""T5-style span corruption: lossless, the right amount dropped, spans apart, sentinels in order."""

import statistics

import pytest

from tinyformers.text.span_corruption import (
    SENTINEL_PATTERN,
    corrupt_spans,
    reassemble,
    sentinel,
    span_counts,
)

TEXT = "the small dog sees the big cat near the river and the old man reads a book"
SENTENCE = TEXT.split()
SETTINGS = [(0.15, 3.0), (0.3, 2.0), (0.5, 1.0), (0.05, 8.0), (0.9, 3.0)]


def words(n: int) -> list[str]:
    return [f"w{i}" for i in range(n)]


def sentinels_in(tokens) -> list[str]:
    return [t for t in tokens if SENTINEL_PATTERN.fullmatch(t)]


@pytest.mark.parametrize("rate, mean_span", SETTINGS)
@pytest.mark.parametrize("n", [2, 3, 7, 17, 60, 300])
def test_input_and_target_give_back_the_original(n, rate, mean_span):
    for seed in range(20):
        tokens = words(n)
        corrupted = corrupt_spans(tokens, rate, mean_span, seed)
        assert reassemble(corrupted.inputs, corrupted.targets) == tokens
        assert corrupted.original == tuple(tokens)


@pytest.mark.parametrize("rate, mean_span", SETTINGS)
def test_spans_never_overlap_or_touch_and_match_the_original(rate, mean_span):
    for n in (2, 5, 17, 100):
        tokens = words(n)
        for seed in range(30):
            spans = corrupt_spans(tokens, rate, mean_span, seed).spans
            assert spans, "at least one span is always dropped"
            for span in spans:
                assert 0 <= span.start < span.end <= n
                assert span.tokens == tuple(tokens[span.start : span.end])
            for before, after in zip(spans, spans[1:], strict=False):
                assert before.end < after.start  # a kept token between two spans


@pytest.mark.parametrize("rate, mean_span", SETTINGS)
def test_sentinels_are_numbered_in_order(rate, mean_span):
    for seed in range(30):
        corrupted = corrupt_spans(words(40), rate, mean_span, seed)
        k = len(corrupted.spans)
        assert sentinels_in(corrupted.inputs) == [sentinel(i) for i in range(k)]
        assert sentinels_in(corrupted.targets) == [sentinel(i) for i in range(k + 1)]
        assert [span.sentinel for span in corrupted.spans] == [sentinel(i) for i in range(k)]


def test_target_lists_each_sentinel_followed_by_its_span():
    corrupted = corrupt_spans(SENTENCE, 0.3, 2.0, seed=4)
    expected = [t for span in corrupted.spans for t in (span.sentinel, *span.tokens)]
    assert list(corrupted.targets) == [*expected, sentinel(len(corrupted.spans))]
    assert corrupted.targets[0] == sentinel(0)


def test_input_replaces_each_span_by_one_sentinel():
    corrupted = corrupt_spans(SENTENCE, 0.3, 2.0, seed=4)
    kept = [
        t for i, t in enumerate(SENTENCE) if not any(s.start <= i < s.end for s in corrupted.spans)
    ]
    assert [t for t in corrupted.inputs if not SENTINEL_PATTERN.fullmatch(t)] == kept
    assert len(corrupted.inputs) == len(kept) + len(corrupted.spans)


@pytest.mark.parametrize("rate", [0.15, 0.3, 0.5])
def test_dropped_fraction_is_near_the_rate_on_average(rate):
    fractions = [
        corrupt_spans(words(n), rate, 3.0, seed).dropped_fraction
        for n in range(10, 210, 5)
        for seed in range(3)
    ]
    assert statistics.mean(fractions) == pytest.approx(rate, abs=0.01)


def test_dropped_count_follows_t5s_rounding():
    for n in (10, 17, 100, 333):
        corrupted = corrupt_spans(words(n), 0.15, 3.0, seed=0)
        assert corrupted.n_dropped == round(n * 0.15)
        assert len(corrupted.spans) == max(round(round(n * 0.15) / 3.0), 1)


@pytest.mark.parametrize("mean_span", [1.0, 2.0, 3.0, 5.0])
def test_mean_span_length_is_near_the_setting(mean_span):
    lengths = [
        span.end - span.start
        for seed in range(50)
        for span in corrupt_spans(words(400), 0.15, mean_span, seed).spans
    ]
    assert statistics.mean(lengths) == pytest.approx(mean_span, rel=0.05)
    if mean_span > 1:
        assert len(set(lengths)) > 1, "span lengths are drawn at random, not all equal"


def test_same_seed_same_corruption_and_seeds_differ():
    first = corrupt_spans(SENTENCE, seed=7)
    assert corrupt_spans(SENTENCE, seed=7) == first
    layouts = {
        tuple((s.start, s.end) for s in corrupt_spans(SENTENCE, seed=k).spans) for k in range(20)
    }
    assert len(layouts) > 5


def test_first_and_last_tokens_can_both_be_dropped():
    spans = [corrupt_spans(words(12), 0.3, 2.0, seed).spans for seed in range(200)]
    assert any(s[0].start == 0 for s in spans)
    assert any(s[-1].end == 12 for s in spans)
    assert any(s[-1].end < 12 for s in spans)  # unlike T5's own code, a kept token may end it


def test_shortest_input_keeps_one_token_and_drops_one():
    for seed in range(10):
        corrupted = corrupt_spans(["a", "b"], 0.9, 3.0, seed)
        assert corrupted.n_dropped == 1
        assert reassemble(corrupted.inputs, corrupted.targets) == ["a", "b"]
    assert span_counts(2, 0.01, 1.0) == (1, 1)


@pytest.mark.parametrize(
    "tokens, rate, mean_span, message",
    [
        ([], 0.15, 3.0, "at least two words"),
        (["one"], 0.15, 3.0, "at least two words"),
        (SENTENCE, 0.0, 3.0, "corruption rate"),
        (SENTENCE, 1.0, 3.0, "corruption rate"),
        (SENTENCE, 10**9, 3.0, "corruption rate"),
        (SENTENCE, 0.15, 0.0, "mean span length"),
        (SENTENCE, 0.15, 10**9, "mean span length"),
        (["a", "<extra_id_0>", "b"], 0.15, 3.0, "reserved for the sentinels"),
    ],
)
def test_bad_settings_are_refused_with_a_message(tokens, rate, mean_span, message):
    with pytest.raises(ValueError, match=message):
        corrupt_spans(tokens, rate, mean_span)


def test_non_strings_are_refused():
    with pytest.raises(ValueError, match="list of strings"):
        corrupt_spans([1, 2, 3])


def test_reassemble_rejects_a_target_without_its_sentinel():
    with pytest.raises(ValueError, match="start with a sentinel"):
        reassemble(["a", sentinel(0)], ["b"])
    with pytest.raises(ValueError, match="no span for <extra_id_1>"):
        reassemble(["a", sentinel(1)], [sentinel(0), "b"])


def test_unicode_and_markup_words_are_kept_as_they_are():
    tokens = ["Зоя", "🐶", "</script><img", "src=x", "onerror=alert(1)>", "ok"]
    for seed in range(10):
        corrupted = corrupt_spans(tokens, 0.3, 1.0, seed)
        assert reassemble(corrupted.inputs, corrupted.targets) == tokens
