"""Alignment: from preferences to a policy, on gpt-stories.

The policy is a copy of gpt-stories asked to follow an instruction, "tell a story about the
cat :", with one sentence. An answer **follows the rule** when the stories grammar accepts it
(``stories.is_grammatical``); whether it names the animal asked for is measured beside it.

* Instruction tuning (``sft``): a few supervised steps on instruction → grammatical sentence
  about the animal. The tuned model is the reference of everything after it.
* Preference pairs (``make_pairs``): two answers sampled from the reference for each prompt;
  when exactly one of them follows the rule, it is the preferred one; other pairs are dropped.
* The reward model (``RewardModel``): a copy of the reference's trunk with a scalar head on the
  last token, trained with the Bradley–Terry loss (``bradley_terry_loss``) and measured on
  held-out pairs (``pair_accuracy``).
* DPO (``dpo_loss``, ``train_dpo``): the policy is pushed to raise the log-probability ratio to
  the frozen reference of the preferred answer above that of the rejected one.
* Policy gradient (``train_reinforce``): REINFORCE with the batch's mean reward as baseline,
  against the reward model's score, plus kl_weight · KL(policy ‖ reference) summed over each
  answer's tokens (``token_kl``, the exact KL of the next-token distributions along it).
* Measurements (``evaluate``): the share of sampled answers that follow the rule and the share
  that name the animal, the reward model's mean score, the KL to the reference and the
  language-model loss on held-out stories, for every model; that loss minus gpt-stories' own is
  the alignment tax.

The shipped model is never changed: every model trained here starts as a deep copy. Training
reports ``StageUpdate``s through ``report``, the protocol of ``jobs.py`` (it returns False once
someone asked to stop).
"""

from __future__ import annotations

import copy
import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinyformers.i18n import N_, _
from tinyformers.model.gpt import GPT
from tinyformers.predict import Prediction, Reveal
from tinyformers.text.corpora import stories
from tinyformers.training.loop import pad_batch

Report = Callable[[object], bool]

BASE = "gpt-stories"
INSTRUCTION = "tell a story about the {topic} :"
TOPICS = ("cat", "dog", "fox", "bird", "horse", "rabbit", "duck", "frog")
DEFAULT_TOPIC = "cat"
DEFAULT_SENTENCE = "the cat sees the small dog ."
MAX_ANSWER_TOKENS = 16  # an answer stops at " ." or after this many tokens
HELD_OUT_STORIES_SEED = 777  # held-out stories for the language-model loss (gpt-stories: seed 0)
SFT_SEED_OFFSET = 100  # instruction examples come from seed + this
BASE_NAME, SFT_NAME, DPO_NAME, RL_NAME = "gpt-stories", "instruction-tuned", "DPO", "REINFORCE + KL"
STAGES = ("sft", "reward", "dpo", "rl")
MIN_STEPS, MAX_STEPS = 0, 400
SUPERVISED_LR_FACTOR = 3  # instruction tuning and the reward model learn 3× faster than DPO and RL


def _check_number(value: object, name: str, low: float, high: float, whole: bool) -> None:
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        kind = "a whole number" if whole else "a number"
        raise ValueError(f"{name} must be {kind} from {low:g} to {high:g}, got {value!r}")


@dataclass(frozen=True)
class AlignSettings:
    """One alignment run: instruction tuning, pairs, a reward model, DPO and REINFORCE + KL."""

    sft_steps: int = 30
    pairs_per_topic: int = 12
    reward_steps: int = 60
    dpo_steps: int = 40
    rl_steps: int = 30
    beta: float = 0.5  # DPO's β
    kl_weight: float = 0.1  # the KL penalty of REINFORCE + KL
    batch_size: int = 8
    learning_rate: float = 1e-4  # of DPO and REINFORCE
    eval_samples: int = 8  # answers sampled per topic when measuring
    held_out_stories: int = 40
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("sft_steps", "reward_steps", "dpo_steps", "rl_steps"):
            _check_number(getattr(self, name), name.replace("_", " "), MIN_STEPS, MAX_STEPS, True)
        _check_number(self.pairs_per_topic, "pairs per topic", 2, 100, True)
        _check_number(self.beta, "β", 0.01, 10.0, False)
        _check_number(self.kl_weight, "the KL weight", 0.0, 10.0, False)
        _check_number(self.batch_size, "batch size", 2, 64, True)
        _check_number(self.learning_rate, "the learning rate", 1e-6, 1e-1, False)
        _check_number(self.eval_samples, "answers per topic", 2, 64, True)
        _check_number(self.held_out_stories, "held-out stories", 5, 500, True)
        _check_number(self.seed, "the seed", 0, 2**31 - 1, True)


def check_policy(model: nn.Module) -> None:
    if not isinstance(model, GPT):
        raise ValueError(f"the policy must be a GPT, not {type(model).__name__}")


def check_topic(topic: str) -> str:
    if topic not in TOPICS:
        raise ValueError(f"unknown topic {topic!r}; choose from {', '.join(TOPICS)}")
    return topic


def instruction(topic: str) -> str:
    return INSTRUCTION.format(topic=check_topic(topic))


# ---------------------------------------------------------------------------------------------
# The rule that stands in for a human's preference
# ---------------------------------------------------------------------------------------------


def topic_words(topic: str) -> set[str]:
    """The animal's singular and plural form: "cat" → {"cat", "cats"}."""
    pairs = {singular: (singular, plural) for singular, plural in stories.ANIMAL_NOUNS}
    return set(pairs[check_topic(topic)])


def is_grammatical(answer: str) -> bool:
    return bool(answer.strip()) and stories.is_grammatical(answer)


def on_topic(answer: str, topic: str) -> bool:
    return bool(topic_words(topic) & set(answer.split()))


def follows_rule(answer: str) -> bool:
    """The rule that stands in for a person's preference: the stories grammar accepts it."""
    return is_grammatical(answer)


# ---------------------------------------------------------------------------------------------
# Sampling answers and scoring them
# ---------------------------------------------------------------------------------------------


def stop_id(tokenizer) -> int:
    """The token that ends a sentence, " ."."""
    ids = tokenizer.encode(" .")
    if len(ids) != 1:
        raise ValueError("the tokenizer has no single token for ' .'")
    return ids[0]


@torch.no_grad()
def sample_answers(
    model: nn.Module,
    tokenizer,
    prompt: str,
    n: int,
    generator: torch.Generator,
    temperature: float = 1.0,
) -> list[list[int]]:
    """``n`` answers to ``prompt``, drawn together: each stops after " ." (kept) or after
    ``MAX_ANSWER_TOKENS`` tokens."""
    end = stop_id(tokenizer)
    prompt_ids = tokenizer.encode(prompt)
    rows = torch.tensor([prompt_ids] * n)  # (n, T)
    done = torch.zeros(n, dtype=torch.bool)
    answers: list[list[int]] = [[] for _ in range(n)]
    for _step in range(MAX_ANSWER_TOKENS):
        logits = model(rows[:, -model.config.block_size :]).logits[:, -1]  # (n, V)
        probs = F.softmax(logits / temperature, dim=-1)
        tokens = torch.multinomial(probs, 1, generator=generator)  # (n, 1)
        rows = torch.cat([rows, tokens], dim=1)  # (n, T + 1)
        for i in range(n):
            if not done[i]:
                answers[i].append(int(tokens[i]))
                done[i] = int(tokens[i]) == end
        if done.all():
            break
    return answers


def _joined(tokenizer, prompts: str | Sequence[str], answers):
    """Prompt + answer rows, right-padded: ids and mask (B, T), and the mask of answer tokens
    among the targets (B, T - 1). ``prompts`` is one prompt for every answer, or one each."""
    if isinstance(prompts, str):
        prompts = [prompts] * len(answers)
    prompt_ids = [tokenizer.encode(p) for p in prompts]
    rows = [p + list(a) for p, a in zip(prompt_ids, answers, strict=True)]
    ids, mask = pad_batch(rows, tokenizer.pad_id or 0)  # (B, T) each
    answer_mask = torch.zeros_like(mask[:, 1:], dtype=torch.float)  # (B, T - 1)
    for row, (p, a) in enumerate(zip(prompt_ids, answers, strict=True)):
        answer_mask[row, len(p) - 1 : len(p) - 1 + len(a)] = 1.0
    return ids, mask, answer_mask


def answer_log_probs(model: nn.Module, tokenizer, prompts: str | Sequence[str], answers) -> Tensor:
    """log π(answer | prompt), summed over the answer's tokens: (B,), with gradients if the
    model has them."""
    ids, mask, answer_mask = _joined(tokenizer, prompts, answers)
    logits = model(ids, attention_mask=mask).logits[:, :-1]  # (B, T - 1, V)
    log_probs = F.log_softmax(logits, dim=-1)
    taken = log_probs.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)  # (B, T - 1)
    return (taken * answer_mask).sum(dim=1)


def token_kl(policy: nn.Module, reference: nn.Module, tokenizer, prompt: str, answers) -> Tensor:
    """Σ over each answer's positions of KL(π(· | context) ‖ π_ref(· | context)), the exact KL
    of the two next-token distributions: (B,), never negative, 0 when policy is reference."""
    ids, mask, answer_mask = _joined(tokenizer, prompt, answers)
    log_p = F.log_softmax(policy(ids, attention_mask=mask).logits[:, :-1], dim=-1)  # (B, T-1, V)
    with torch.no_grad():
        log_q = F.log_softmax(reference(ids, attention_mask=mask).logits[:, :-1], dim=-1)
    kl = (log_p.exp() * (log_p - log_q)).sum(dim=-1).clamp_min(0.0)  # (B, T - 1)
    return (kl * answer_mask).sum(dim=1)


# ---------------------------------------------------------------------------------------------
# The losses
# ---------------------------------------------------------------------------------------------


def bradley_terry_loss(chosen: Tensor, rejected: Tensor) -> Tensor:
    """−log σ(r_w − r_l), averaged: the Bradley–Terry model says the preferred answer wins with
    probability σ(r_w − r_l)."""
    return -F.logsigmoid(chosen - rejected).mean()


def dpo_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    reference_chosen: Tensor,
    reference_rejected: Tensor,
    beta: float,
) -> Tensor:
    """−log σ(β [(log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))]), averaged."""
    margin = (policy_chosen - reference_chosen) - (policy_rejected - reference_rejected)
    return -F.logsigmoid(beta * margin).mean()


# ---------------------------------------------------------------------------------------------
# Instruction tuning
# ---------------------------------------------------------------------------------------------


def instruction_examples(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` (topic, sentence) pairs: generated grammatical sentences that name the topic in
    their first four words (so, nearly always, in the subject), the topics in turn."""
    rng = random.Random(seed + SFT_SEED_OFFSET)
    found = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        while True:
            sentence = stories.generate_sentence(rng).text
            if topic_words(topic) & set(sentence.split()[:4]):
                found.append((topic, sentence))
                break
    return found


@dataclass(frozen=True)
class StageUpdate:
    """One logged step of one stage (a key of ``STAGES``)."""

    stage: str
    step: int
    values: dict[str, float]


def _report(report: Report | None, stage: str, step: int, **values: float) -> bool:
    if report is None:
        return True
    return report(StageUpdate(stage, step, values)) is not False


def sft_example_count(settings: AlignSettings) -> int:
    """How many instruction → answer pairs instruction tuning learns from."""
    return max(len(TOPICS), 2 * settings.batch_size)


def sft(policy: nn.Module, tokenizer, settings: AlignSettings, report: Report | None = None):
    """Supervised steps on instruction → answer (the loss on the answer's tokens only).
    Trains ``policy`` in place; returns False if stopped."""
    examples = instruction_examples(sft_example_count(settings), settings.seed)
    optimizer = torch.optim.AdamW(
        policy.parameters(), lr=SUPERVISED_LR_FACTOR * settings.learning_rate
    )
    rng = random.Random(settings.seed)
    policy.train()
    for step in range(1, settings.sft_steps + 1):
        batch = rng.sample(examples, min(settings.batch_size, len(examples)))
        answers = [tokenizer.encode(" " + sentence) for _, sentence in batch]
        prompts = [instruction(topic) for topic, _ in batch]
        lengths = torch.tensor([len(a) for a in answers], dtype=torch.float)
        loss = -(answer_log_probs(policy, tokenizer, prompts, answers) / lengths).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if not _report(report, "sft", step, loss=loss.item()):
            return False
    policy.eval()
    return True


# ---------------------------------------------------------------------------------------------
# Preference pairs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    topic: str
    chosen: tuple[int, ...]
    rejected: tuple[int, ...]


def make_pairs(
    model: nn.Module, tokenizer, per_topic: int, generator: torch.Generator, tries: int = 4
) -> list[Pair]:
    """Up to ``per_topic`` pairs for every topic, from two answers sampled together: when
    exactly one of them follows the rule, it is preferred; otherwise the two give no pair."""
    pairs = []
    for topic in TOPICS:
        found = []
        for _try in range(tries):
            answers = sample_answers(model, tokenizer, instruction(topic), 2 * per_topic, generator)
            for a, b in zip(answers[::2], answers[1::2], strict=True):
                sa = follows_rule(tokenizer.decode(a))
                sb = follows_rule(tokenizer.decode(b))
                if sa != sb:
                    winner, loser = (a, b) if sa else (b, a)
                    found.append(Pair(topic, tuple(winner), tuple(loser)))
            if len(found) >= per_topic:
                break
        pairs += found[:per_topic]
    return pairs


def split_pairs(pairs: Sequence[Pair], seed: int, held_out: float = 0.25):
    """Shuffled (train, held-out) pairs."""
    shuffled = list(pairs)
    random.Random(seed).shuffle(shuffled)
    cut = max(1, round(len(shuffled) * held_out)) if len(shuffled) > 1 else 0
    return shuffled[cut:], shuffled[:cut]


# ---------------------------------------------------------------------------------------------
# The reward model
# ---------------------------------------------------------------------------------------------


class RewardModel(nn.Module):
    """A copy of a GPT's trunk (its head replaced by the identity) and a linear layer from the
    last real token's vector to one score."""

    def __init__(self, gpt: nn.Module):
        super().__init__()
        check_policy(gpt)
        self.body = copy.deepcopy(gpt)
        self.body.lm_head = nn.Identity()
        self.head = nn.Linear(gpt.config.n_embd, 1)
        nn.init.zeros_(self.head.bias)

    def forward(self, idx: Tensor, attention_mask: Tensor) -> Tensor:
        hidden = self.body(idx, attention_mask=attention_mask).logits  # (B, T, C) after ln_f
        last = attention_mask.sum(dim=1) - 1  # (B,) position of each last real token
        return self.head(hidden[torch.arange(hidden.size(0)), last]).squeeze(-1)  # (B,)


def rewards(reward_model: RewardModel, tokenizer, prompts: str | Sequence[str], answers) -> Tensor:
    """The reward model's score of each (prompt, answer): (B,)."""
    ids, mask, _ = _joined(tokenizer, prompts, answers)
    return reward_model(ids, mask)


def pair_rewards(reward_model: RewardModel, tokenizer, pairs: Sequence[Pair]):
    """The reward model's scores of every pair's preferred and rejected answer: two (N,)."""
    prompts = [instruction(p.topic) for p in pairs]
    both = rewards(
        reward_model,
        tokenizer,
        prompts * 2,
        [p.chosen for p in pairs] + [p.rejected for p in pairs],
    )
    return both[: len(pairs)], both[len(pairs) :]


@torch.no_grad()
def pair_accuracy(reward_model: RewardModel, tokenizer, pairs: Sequence[Pair]) -> float:
    """The share of pairs whose preferred answer the reward model scores higher."""
    if not pairs:
        raise ValueError("there are no pairs to measure the reward model on")
    chosen, rejected = pair_rewards(reward_model, tokenizer, pairs)
    return (chosen > rejected).float().mean().item()


def train_reward_model(
    reference: nn.Module,
    tokenizer,
    pairs: Sequence[Pair],
    settings: AlignSettings,
    report: Report | None = None,
) -> tuple[RewardModel, bool]:
    """A reward model on a copy of ``reference``'s trunk, trained with Bradley–Terry."""
    torch.manual_seed(settings.seed)
    model = RewardModel(reference)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=SUPERVISED_LR_FACTOR * settings.learning_rate
    )
    rng = random.Random(settings.seed + 1)
    model.train()
    for step in range(1, settings.reward_steps + 1):
        batch = rng.sample(list(pairs), min(settings.batch_size, len(pairs)))
        loss = bradley_terry_loss(*pair_rewards(model, tokenizer, batch))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if not _report(report, "reward", step, loss=loss.item()):
            return model.eval(), False
    return model.eval(), True


# ---------------------------------------------------------------------------------------------
# DPO and REINFORCE + KL
# ---------------------------------------------------------------------------------------------


def pair_dpo_loss(
    policy: nn.Module, reference: nn.Module, tokenizer, pairs: Sequence[Pair], beta: float
) -> Tensor:
    """``dpo_loss`` over ``pairs``: every log-probability from one batched forward pass."""
    prompts = [instruction(p.topic) for p in pairs] * 2
    answers = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    policy_lp = answer_log_probs(policy, tokenizer, prompts, answers)  # (2N,)
    with torch.no_grad():
        reference_lp = answer_log_probs(reference, tokenizer, prompts, answers)
    n = len(pairs)
    return dpo_loss(policy_lp[:n], policy_lp[n:], reference_lp[:n], reference_lp[n:], beta)


def train_dpo(
    reference: nn.Module,
    tokenizer,
    pairs: Sequence[Pair],
    settings: AlignSettings,
    report: Report | None = None,
) -> tuple[nn.Module, bool]:
    """A copy of ``reference`` trained with DPO on ``pairs``; ``reference`` is only run."""
    policy = copy.deepcopy(reference).train()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=settings.learning_rate)
    rng = random.Random(settings.seed + 2)
    for step in range(1, settings.dpo_steps + 1):
        batch = rng.sample(list(pairs), min(settings.batch_size, len(pairs)))
        loss = pair_dpo_loss(policy, reference, tokenizer, batch, settings.beta)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if not _report(report, "dpo", step, loss=loss.item()):
            return policy.eval(), False
    return policy.eval(), True


def reinforce_loss(log_probs: Tensor, reward: Tensor, kl: Tensor, kl_weight: float) -> Tensor:
    """−mean((r − mean r) · log π(y)) + kl_weight · mean KL: REINFORCE with the batch's mean
    reward as its baseline, and the KL penalty. ``reward`` carries no gradient."""
    advantage = (reward - reward.mean()).detach()  # (B,)
    return -(advantage * log_probs).mean() + kl_weight * kl.mean()


def train_reinforce(
    reference: nn.Module,
    reward_model: RewardModel,
    tokenizer,
    settings: AlignSettings,
    report: Report | None = None,
) -> tuple[nn.Module, bool]:
    """A copy of ``reference`` trained by REINFORCE: each step samples ``batch_size`` answers to
    one topic's instruction, weighs each answer's log-probability by its reward minus the
    batch's mean reward (the baseline), and adds kl_weight · KL(policy ‖ reference)."""
    policy = copy.deepcopy(reference).train()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=settings.learning_rate)
    generator = torch.Generator().manual_seed(settings.seed + 3)
    for step in range(1, settings.rl_steps + 1):
        topic = TOPICS[(step - 1) % len(TOPICS)]
        prompt = instruction(topic)
        answers = sample_answers(policy, tokenizer, prompt, settings.batch_size, generator)
        with torch.no_grad():
            reward = rewards(reward_model, tokenizer, prompt, answers)  # (B,)
        log_probs = answer_log_probs(policy, tokenizer, prompt, answers)  # (B,)
        kl = token_kl(policy, reference, tokenizer, prompt, answers)  # (B,)
        loss = reinforce_loss(log_probs, reward, kl, settings.kl_weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if not _report(report, "rl", step, reward=reward.mean().item(), kl=kl.mean().item()):
            return policy.eval(), False
    return policy.eval(), True


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


def held_out_stories(n: int) -> list[str]:
    rng = random.Random(HELD_OUT_STORIES_SEED)
    return [stories.generate_story(rng) for _ in range(n)]


@torch.no_grad()
def lm_loss(model: nn.Module, tokenizer, texts: Sequence[str]) -> float:
    """Mean next-token cross-entropy over every token of ``texts`` (each cropped to the model's
    block): the language-model loss."""
    rows = [tokenizer.encode(t)[: model.config.block_size + 1] for t in texts]
    rows = [r for r in rows if len(r) > 1]
    if not rows:
        raise ValueError("there is no text to measure the language-model loss on")
    ids, mask = pad_batch(rows, tokenizer.pad_id or 0)  # (B, T)
    logits = model(ids[:, :-1], attention_mask=mask[:, :-1]).logits  # (B, T - 1, V)
    losses = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")  # (B, T - 1)
    weights = mask[:, 1:].float()
    return ((losses * weights).sum() / weights.sum()).item()


@dataclass
class ModelScores:
    name: str
    follow_rate: float  # answers the grammar accepts
    on_topic_rate: float
    mean_reward: float | None  # the reward model's mean score of the answers
    mean_kl: float  # per answer, to the reference (the instruction-tuned model)
    lm_loss: float  # on held-out stories
    samples: dict[str, list[str]]  # topic → the decoded answers


@torch.no_grad()
def evaluate(
    name: str,
    model: nn.Module,
    reference: nn.Module,
    tokenizer,
    settings: AlignSettings,
    reward_model: RewardModel | None,
    held_out: Sequence[str],
) -> ModelScores:
    """Sample ``eval_samples`` answers per topic with one fixed seed and measure them."""
    generator = torch.Generator().manual_seed(settings.seed + 4)
    follow, topical, scores, kls, samples = [], [], [], [], {}
    for topic in TOPICS:
        prompt = instruction(topic)
        answers = sample_answers(model, tokenizer, prompt, settings.eval_samples, generator)
        texts = [tokenizer.decode(a).strip() for a in answers]
        samples[topic] = texts
        follow += [follows_rule(t) for t in texts]
        topical += [on_topic(t, topic) for t in texts]
        kls += token_kl(model, reference, tokenizer, prompt, answers).tolist()
        if reward_model is not None:
            scores += rewards(reward_model, tokenizer, prompt, answers).tolist()
    return ModelScores(
        name=name,
        follow_rate=statistics.mean(follow),
        on_topic_rate=statistics.mean(topical),
        mean_reward=statistics.mean(scores) if scores else None,
        mean_kl=statistics.mean(kls),
        lm_loss=lm_loss(model, tokenizer, held_out),
        samples=samples,
    )


@dataclass
class AlignmentResult:
    settings: AlignSettings
    scores: list[ModelScores] = field(default_factory=list)
    models: dict[str, nn.Module] = field(default_factory=dict)  # the trained ones, by name
    reward_model: RewardModel | None = None
    train_pairs: int = 0
    held_out_pairs: int = 0
    reward_accuracy: float | None = None  # on the held-out pairs
    reward_train_accuracy: float | None = None
    stop_reason: str | None = None

    def score(self, name: str) -> ModelScores | None:
        return next((s for s in self.scores if s.name == name), None)

    def tax(self, name: str) -> float | None:
        """The held-out language-model loss of ``name`` minus that of the shipped model."""
        found, base = self.score(name), self.score(BASE_NAME)
        return None if found is None or base is None else found.lm_loss - base.lm_loss


def run_alignment(
    base: nn.Module, tokenizer, settings: AlignSettings, report: Report | None = None
) -> AlignmentResult:
    """The whole pipeline on copies of ``base``; stops early (keeping what it has) if ``report``
    returns False."""
    check_policy(base)
    torch.manual_seed(settings.seed)
    result = AlignmentResult(settings)
    reference = copy.deepcopy(base)
    if not sft(reference, tokenizer, settings, report):
        result.stop_reason = "stopped"
        return result
    reference.eval()
    result.models[SFT_NAME] = reference
    generator = torch.Generator().manual_seed(settings.seed + 5)
    pairs = make_pairs(reference, tokenizer, settings.pairs_per_topic, generator)
    train_pairs, held_pairs = split_pairs(pairs, settings.seed)
    if not train_pairs or not held_pairs:
        raise ValueError(
            "the rule could not tell the sampled answers apart: no pairs to learn from"
        )
    result.train_pairs, result.held_out_pairs = len(train_pairs), len(held_pairs)
    reward_model, going = train_reward_model(reference, tokenizer, train_pairs, settings, report)
    result.reward_model = reward_model
    result.reward_accuracy = pair_accuracy(reward_model, tokenizer, held_pairs)
    result.reward_train_accuracy = pair_accuracy(reward_model, tokenizer, train_pairs)
    if going:
        dpo_policy, going = train_dpo(reference, tokenizer, train_pairs, settings, report)
        result.models[DPO_NAME] = dpo_policy
    if going:
        rl_policy, going = train_reinforce(reference, reward_model, tokenizer, settings, report)
        result.models[RL_NAME] = rl_policy
    if not going:
        result.stop_reason = "stopped"
    held_out = held_out_stories(settings.held_out_stories)
    for name, model in {BASE_NAME: base, **result.models}.items():
        result.scores.append(
            evaluate(name, model, reference, tokenizer, settings, reward_model, held_out)
        )
    return result


def updates_of(updates: Sequence[object]) -> dict[str, list[StageUpdate]]:
    """A job's ``StageUpdate``s sorted by stage."""
    found: dict[str, list[StageUpdate]] = {}
    for update in updates:
        if isinstance(update, StageUpdate):
            found.setdefault(update.stage, []).append(update)
    return found


# ---------------------------------------------------------------------------------------------
# The student's own answer
# ---------------------------------------------------------------------------------------------


def answer_ids(tokenizer, sentence: str) -> list[int]:
    """The student's answer as the policy would write it (a leading space, as after the
    instruction's " :")."""
    if not isinstance(sentence, str) or not sentence.strip():
        raise ValueError(_("type an answer: one sentence of the stories language"))
    ids = tokenizer.encode(" " + " ".join(sentence.split()))
    if len(ids) > 3 * MAX_ANSWER_TOKENS:
        raise ValueError(
            _("the answer is too long: {count} tokens, at most {most}").format(
                count=len(ids), most=3 * MAX_ANSWER_TOKENS
            )
        )

    return ids


@dataclass(frozen=True)
class AnswerCheck:
    sentence: str
    topic: str
    verdict: str  # the grammar's verdict: "ok" or why not
    on_topic: bool
    log_prob: float  # under the shipped model, after the instruction
    reward: float | None  # the reward model's score, once one was trained


@torch.no_grad()
def check_answer(
    base: nn.Module, tokenizer, topic: str, sentence: str, reward_model: RewardModel | None = None
) -> AnswerCheck:
    ids = answer_ids(tokenizer, sentence)
    prompt = instruction(topic)
    text = " ".join(sentence.split())
    log_prob = answer_log_probs(base, tokenizer, prompt, [ids]).item()
    reward = rewards(reward_model, tokenizer, prompt, [ids]).item() if reward_model else None
    return AnswerCheck(text, topic, stories.explain(text), on_topic(text, topic), log_prob, reward)


def flipped(sentence: str) -> str:
    """The sentence with its first verb that has a number put in the other number."""
    words = sentence.split()
    verbs = stories.SINGULAR_VERBS | stories.PLURAL_VERBS
    for i, word in enumerate(words):
        if word in verbs:
            words[i] = stories.flip_verb_number(word)
            return " ".join(words)
    raise ValueError("the answer has no verb whose number could be flipped")


@dataclass(frozen=True)
class AnswerComparison:
    """The student's answer beside the same answer with one verb's number flipped: the grammar's
    verdicts, each model's log-probability of both, and the reward model's scores."""

    topic: str
    sentence: str
    other: str | None  # the flipped answer (None when the answer has no verb to flip)
    verdict: str
    other_verdict: str | None
    on_topic: bool
    log_probs: dict[str, tuple[float, float | None]]  # model → (answer, flipped answer)
    rewards: tuple[float, float | None] | None


@torch.no_grad()
def compare_answers(
    models: dict[str, nn.Module],
    tokenizer,
    topic: str,
    sentence: str,
    reward_model: RewardModel | None = None,
) -> AnswerComparison:
    """Each model's log π(answer | instruction) for the student's answer and its flipped
    version, and the reward model's scores of both (once a reward model was trained)."""
    text = " ".join(str(sentence).split())
    ids = answer_ids(tokenizer, text)
    try:
        other = flipped(text)
    except ValueError:
        other = None
    answers = [ids] if other is None else [ids, answer_ids(tokenizer, other)]
    prompt = instruction(topic)
    log_probs = {}
    for name, model in models.items():
        found = answer_log_probs(model, tokenizer, prompt, answers).tolist()
        log_probs[name] = (found[0], found[1] if other is not None else None)
    scores = None
    if reward_model is not None:
        found = rewards(reward_model, tokenizer, prompt, answers).tolist()
        scores = (found[0], found[1] if other is not None else None)
    other_verdict = stories.explain(other) if other is not None else None
    return AnswerComparison(
        topic,
        text,
        other,
        stories.explain(text),
        other_verdict,
        on_topic(text, topic),
        log_probs,
        scores,
    )


# ---------------------------------------------------------------------------------------------
# Predict, then see
# ---------------------------------------------------------------------------------------------

RATE_BANDS = ("under 25%", "25% to 50%", "50% to 75%", "75% or more")
YOURS, FLIPPED = N_("your sentence"), N_("the flipped sentence")
PREDICT_SAMPLES = 16


def rate_band(rate: float) -> str:
    return RATE_BANDS[min(3, int(rate * 4))]


def predict_follow_rate(loaded, topic: str, seed: int) -> Prediction:
    """What share of the shipped model's answers to the instruction follow the rule."""
    prompt = instruction(topic)

    def reveal() -> Reveal:
        generator = torch.Generator().manual_seed(seed)
        answers = sample_answers(loaded.model, loaded.tokenizer, prompt, PREDICT_SAMPLES, generator)
        texts = [loaded.tokenizer.decode(a).strip() for a in answers]
        rate = statistics.mean(follows_rule(t) for t in texts)
        values = {"rate": f"{100 * rate:.0f}%", "example": texts[0]}
        return Reveal(rate_band(rate), values)

    values = {"n": PREDICT_SAMPLES, "prompt": prompt}
    return Prediction(values, reveal, RATE_BANDS)


def predict_start_loss(loaded, topic: str, beta: float, seed: int) -> Prediction:
    """The DPO loss at the first step, where the policy is still a copy of the reference."""

    def reveal() -> Reveal:
        policy, reference = copy.deepcopy(loaded.model), loaded.model
        generator = torch.Generator().manual_seed(seed)
        answers = sample_answers(reference, loaded.tokenizer, instruction(topic), 2, generator)
        pair = Pair(topic, tuple(answers[0]), tuple(answers[1]))
        with torch.no_grad():
            loss = pair_dpo_loss(policy, reference, loaded.tokenizer, [pair], beta).item()
        return Reveal(round(loss, 4), {"loss": f"{loss:.4f}", "log2": f"{math.log(2):.4f}"})

    _check_number(beta, "β", 0.01, 10.0, False)
    return Prediction({"beta": f"{beta:g}"}, reveal, bounds=(0.0, 100.0))


def predict_likelier(loaded, topic: str, sentence: str) -> Prediction:
    """Whether the shipped model finds the student's answer or its verb-flipped version likelier."""
    other = flipped(sentence)
    answer_ids(loaded.tokenizer, sentence)

    def reveal() -> Reveal:
        mine = check_answer(loaded.model, loaded.tokenizer, topic, sentence)
        theirs = check_answer(loaded.model, loaded.tokenizer, topic, other)
        answer = YOURS if mine.log_prob >= theirs.log_prob else FLIPPED
        values = {"mine": f"{mine.log_prob:.2f}", "theirs": f"{theirs.log_prob:.2f}"}
        return Reveal(answer, values)

    values = {"sentence": " ".join(sentence.split()), "flipped": other}
    return Prediction(values, reveal, (YOURS, FLIPPED))


def lesson_values(settings: AlignSettings) -> dict[str, object]:
    """The placeholders of the lesson's "setup" section."""
    return {
        "instruction": instruction(DEFAULT_TOPIC),
        "topics": ", ".join(TOPICS),
        "sft_steps": settings.sft_steps,
        "sft_examples": sft_example_count(settings),
        "max_tokens": MAX_ANSWER_TOKENS,
    }
