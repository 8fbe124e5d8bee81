"""A tiny synthetic English for short stories, with a generator and a checking parser.

The language is small enough for a model with about a million parameters to learn, but it has
the features that make subject-verb agreement interesting to probe:

* singular and plural subjects: "the dog runs" / "the dogs run";
* up to two adjectives in a fixed order: "the small red fox";
* prepositional phrases on nouns: "the keys near the cabinet are old" (the verb agrees with the
  head noun "keys", not with the nearer "cabinet");
* relative clauses, subject- and object-relative: "the dogs that chase the cat run",
  "the dogs that the cat sees run" (the inner verb agrees with the inner subject);
* names with a fixed gender and pronouns that refer back in the next sentence of a story:
  "Mia sees the fox . she smiles .".

Only people and animals do things; anything can be described with "is"/"are":
"the river is cold" is a sentence, "the river runs" is not.

Text format: lowercase except names, words separated by single spaces, each sentence ending in
" .". Everything is generated from a ``random.Random`` you pass in, so the same seed always gives
the same text. ``is_grammatical`` and ``explain`` parse a sentence with a small recursive-descent
parser over the word categories and accept exactly the sentences the generator can produce.
"""

import random
from dataclasses import dataclass, replace
from itertools import pairwise

SINGULAR = "sg"
PLURAL = "pl"
NUMBERS = (SINGULAR, PLURAL)
_NUMBER_WORDS = {SINGULAR: "singular", PLURAL: "plural"}

# ---------------------------------------------------------------------------------------------
# The lexicon. Nouns and verbs are (singular, plural) pairs.
# ---------------------------------------------------------------------------------------------

ANIMAL_NOUNS: tuple[tuple[str, str], ...] = (
    ("dog", "dogs"),
    ("cat", "cats"),
    ("fox", "foxes"),
    ("bird", "birds"),
    ("horse", "horses"),
    ("rabbit", "rabbits"),
    ("mouse", "mice"),
    ("wolf", "wolves"),
    ("bear", "bears"),
    ("duck", "ducks"),
    ("frog", "frogs"),
    ("goat", "goats"),
    ("cow", "cows"),
    ("pig", "pigs"),
    ("owl", "owls"),
    ("lion", "lions"),
    ("tiger", "tigers"),
    ("monkey", "monkeys"),
    ("goose", "geese"),
    ("hen", "hens"),
    ("bee", "bees"),
    ("snake", "snakes"),
    ("turtle", "turtles"),
    ("squirrel", "squirrels"),
    ("robot", "robots"),
    ("dragon", "dragons"),
)

PEOPLE_NOUNS: tuple[tuple[str, str], ...] = (
    ("boy", "boys"),
    ("girl", "girls"),
    ("child", "children"),
    ("man", "men"),
    ("woman", "women"),
    ("baby", "babies"),
    ("farmer", "farmers"),
    ("teacher", "teachers"),
    ("king", "kings"),
    ("queen", "queens"),
    ("doctor", "doctors"),
    ("baker", "bakers"),
    ("sailor", "sailors"),
    ("friend", "friends"),
    ("pirate", "pirates"),
    ("wizard", "wizards"),
)

# People and animals can act (be the subject of a verb other than "is"/"are").
ANIMATE_NOUNS = ANIMAL_NOUNS + PEOPLE_NOUNS

# Pronouns for singular nouns in stories: animals are "it", these people "he" or "she". Other
# singular people ("the farmer") are never referred to by a pronoun.
GENDERED_NOUNS: dict[str, str] = {
    "boy": "he",
    "man": "he",
    "king": "he",
    "girl": "she",
    "woman": "she",
    "queen": "she",
}

THING_NOUNS: tuple[tuple[str, str], ...] = (
    ("river", "rivers"),
    ("tree", "trees"),
    ("house", "houses"),
    ("ball", "balls"),
    ("box", "boxes"),
    ("hat", "hats"),
    ("door", "doors"),
    ("window", "windows"),
    ("garden", "gardens"),
    ("hill", "hills"),
    ("lake", "lakes"),
    ("road", "roads"),
    ("bridge", "bridges"),
    ("cake", "cakes"),
    ("apple", "apples"),
    ("book", "books"),
    ("cup", "cups"),
    ("key", "keys"),
    ("cabinet", "cabinets"),
    ("table", "tables"),
    ("chair", "chairs"),
    ("boat", "boats"),
    ("rock", "rocks"),
    ("flower", "flowers"),
    ("forest", "forests"),
    ("village", "villages"),
    ("castle", "castles"),
    ("cave", "caves"),
    ("shell", "shells"),
    ("star", "stars"),
    ("kite", "kites"),
    ("drum", "drums"),
    ("basket", "baskets"),
    ("bench", "benches"),
    ("tower", "towers"),
    ("field", "fields"),
    ("leaf", "leaves"),
    ("shelf", "shelves"),
    ("pond", "ponds"),
    ("lamp", "lamps"),
)

NAMES: dict[str, str] = {
    "Mia": "she",
    "Leo": "he",
    "Ava": "she",
    "Sam": "he",
    "Zoe": "she",
    "Max": "he",
    "Lily": "she",
    "Ben": "he",
    "Nora": "she",
    "Omar": "he",
    "Yuki": "she",
    "Ravi": "he",
    "Ella": "she",
    "Finn": "he",
    "Anna": "she",
    "Tom": "he",
    "Lena": "she",
    "Jack": "he",
    "Rosa": "she",
    "Kofi": "he",
}

INTRANSITIVE_VERBS: tuple[tuple[str, str], ...] = (
    ("runs", "run"),
    ("sleeps", "sleep"),
    ("jumps", "jump"),
    ("sings", "sing"),
    ("dances", "dance"),
    ("smiles", "smile"),
    ("laughs", "laugh"),
    ("cries", "cry"),
    ("swims", "swim"),
    ("flies", "fly"),
    ("hides", "hide"),
    ("waits", "wait"),
    ("rests", "rest"),
    ("plays", "play"),
    ("shouts", "shout"),
    ("walks", "walk"),
    ("sits", "sit"),
    ("falls", "fall"),
    ("dreams", "dream"),
    ("hums", "hum"),
    ("wanders", "wander"),
)

TRANSITIVE_VERBS: tuple[tuple[str, str], ...] = (
    ("sees", "see"),
    ("chases", "chase"),
    ("follows", "follow"),
    ("finds", "find"),
    ("likes", "like"),
    ("loves", "love"),
    ("helps", "help"),
    ("watches", "watch"),
    ("carries", "carry"),
    ("pushes", "push"),
    ("pulls", "pull"),
    ("holds", "hold"),
    ("visits", "visit"),
    ("paints", "paint"),
    ("builds", "build"),
    ("greets", "greet"),
    ("feeds", "feed"),
    ("catches", "catch"),
    ("throws", "throw"),
    ("hugs", "hug"),
    ("draws", "draw"),
    ("washes", "wash"),
    ("opens", "open"),
    ("hears", "hear"),
    ("calls", "call"),
    ("climbs", "climb"),
    ("fixes", "fix"),
    ("lifts", "lift"),
    ("kicks", "kick"),
    ("has", "have"),
    ("touches", "touch"),
)

COPULA: tuple[str, str] = ("is", "are")

# Adjectives come in groups; two adjectives before a noun must come from different groups and
# appear in this order, as in English: "the small old dog", "the happy red bird". Feelings only
# describe people and animals: "the happy tree" and "the rock is sad" are not sentences.
ADJECTIVE_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "feeling",
        (
            "happy",
            "sad",
            "brave",
            "kind",
            "lazy",
            "quiet",
            "clever",
            "hungry",
            "sleepy",
            "angry",
            "shy",
            "funny",
            "gentle",
            "proud",
            "silly",
            "grumpy",
        ),
    ),
    ("size", ("small", "big", "tiny", "huge", "tall", "short", "long")),
    ("condition", ("cold", "warm", "wet", "dry", "clean", "dirty")),
    ("age", ("old", "young", "new")),
    (
        "color",
        (
            "red",
            "blue",
            "green",
            "yellow",
            "white",
            "black",
            "brown",
            "pink",
            "gray",
            "purple",
            "orange",
            "golden",
        ),
    ),
)
MAX_ADJECTIVES = 2
FEELING_GROUP = 0

PREPOSITIONS: tuple[str, ...] = (
    "near",
    "under",
    "behind",
    "beside",
    "above",
    "inside",
    "with",
    "from",
    "by",
    "around",
)

PRONOUNS: dict[str, str] = {"he": SINGULAR, "she": SINGULAR, "it": SINGULAR, "they": PLURAL}

# The checker refuses longer sentences (the generator's stay far below this) so that deeply
# nested input cannot exhaust Python's recursion limit.
MAX_SENTENCE_WORDS = 200


# ---------------------------------------------------------------------------------------------
# Word categories, shared by the generator and the parser.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Word:
    """What the grammar knows about one word form."""

    category: str  # the, that, noun, name, pronoun, verb, copula, adjective, preposition, end
    number: str | None = None
    animate: bool | None = None
    transitive: bool = False
    group: int = -1  # adjective group, in ADJECTIVE_GROUPS order
    other_form: str | None = None  # the same noun or verb in the other number


def _build_lexicon() -> dict[str, _Word]:
    lexicon: dict[str, _Word] = {"the": _Word("the"), "that": _Word("that"), ".": _Word("end")}

    def add(word: str, entry: _Word) -> None:
        assert word not in lexicon, f"'{word}' is listed twice in the lexicon"
        lexicon[word] = entry

    for pairs, animate in ((ANIMATE_NOUNS, True), (THING_NOUNS, False)):
        for singular, plural in pairs:
            add(singular, _Word("noun", SINGULAR, animate, other_form=plural))
            add(plural, _Word("noun", PLURAL, animate, other_form=singular))
    for name in NAMES:
        add(name, _Word("name", SINGULAR, animate=True))
    for pronoun, number in PRONOUNS.items():
        add(pronoun, _Word("pronoun", number))
    for pairs, transitive in ((INTRANSITIVE_VERBS, False), (TRANSITIVE_VERBS, True)):
        for singular, plural in pairs:
            add(singular, _Word("verb", SINGULAR, transitive=transitive, other_form=plural))
            add(plural, _Word("verb", PLURAL, transitive=transitive, other_form=singular))
    add(COPULA[0], _Word("copula", SINGULAR, other_form=COPULA[1]))
    add(COPULA[1], _Word("copula", PLURAL, other_form=COPULA[0]))
    for group, (_, adjectives) in enumerate(ADJECTIVE_GROUPS):
        for adjective in adjectives:
            add(adjective, _Word("adjective", group=group))
    for preposition in PREPOSITIONS:
        add(preposition, _Word("preposition"))
    return lexicon


_LEXICON = _build_lexicon()

VOCABULARY: frozenset[str] = frozenset(_LEXICON)
SINGULAR_VERBS: frozenset[str] = frozenset(
    word
    for word, entry in _LEXICON.items()
    if entry.category in ("verb", "copula") and entry.number == SINGULAR
)
PLURAL_VERBS: frozenset[str] = frozenset(
    word
    for word, entry in _LEXICON.items()
    if entry.category in ("verb", "copula") and entry.number == PLURAL
)
SINGULAR_NOUNS: frozenset[str] = frozenset(s for s, _ in ANIMATE_NOUNS + THING_NOUNS)
PLURAL_NOUNS: frozenset[str] = frozenset(p for _, p in ANIMATE_NOUNS + THING_NOUNS)
_PEOPLE_SINGULARS = frozenset(singular for singular, _ in PEOPLE_NOUNS)


def word_category(word: str) -> str:
    """The grammar's category of a word form: "the", "that", "noun", "name", "pronoun",
    "verb", "copula", "adjective", "preposition" or "end" (the final ".")."""
    entry = _LEXICON.get(word)
    if entry is None:
        raise ValueError(_unknown_word_message(word))
    return entry.category


CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(entry.category for entry in _LEXICON.values()))


def referring_pronoun(word: str) -> str:
    """The pronoun a story's next sentence uses for a subject headed by ``word`` (a name, a
    noun or a pronoun), or "" when there is none (a singular "farmer")."""
    if word in NAMES:
        return NAMES[word]
    if word in PRONOUNS:
        return word
    if word not in SINGULAR_NOUNS | PLURAL_NOUNS:
        raise ValueError(f"'{word}' cannot head a subject of the stories language")
    return _pronoun_for_noun(word)


def flip_verb_number(verb: str) -> str:
    """Return the other-number form of a verb: "runs" -> "run", "are" -> "is"."""
    entry = _LEXICON.get(verb)
    if entry is None or entry.category not in ("verb", "copula"):
        raise ValueError(f"'{verb}' is not a verb of the stories language")
    assert entry.other_form is not None
    return entry.other_form


# ---------------------------------------------------------------------------------------------
# Generating sentences and stories.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sentence:
    """A generated sentence and where its main-clause agreement lives.

    ``subject_index`` and ``verb_index`` index into ``text.split()``: the head noun (or name or
    pronoun) of the main-clause subject, and the main verb that agrees with it in ``number``.
    """

    text: str
    subject_index: int
    verb_index: int
    number: str


@dataclass
class _Phrase:
    """Words of a generated noun phrase, with the position and features of its head."""

    words: list[str]
    head: int
    number: str
    animate: bool | None
    pronoun: str = ""  # how a later sentence refers back to it


# How often optional parts appear. Modifiers only appear while there is depth left.
_P_MODIFIER = 0.35
_P_RELATIVE = 0.5  # share of modifiers that are relative clauses (the rest are prepositional)
_P_NAME_SUBJECT = 0.15
_P_PRONOUN_SUBJECT = 0.1
_P_ANIMATE_SUBJECT = 0.75  # the other noun subjects are things, which can only take "is"/"are"
_P_NAME_ELSEWHERE = 0.15  # objects, inside prepositional phrases and relative clauses
_P_VERB_PP = 0.3


def _adjective_groups(animate: bool | None) -> list[int]:
    """Indices of the adjective groups that can describe a (non-)animate noun."""
    return [g for g in range(len(ADJECTIVE_GROUPS)) if animate is not False or g != FEELING_GROUP]


def _choose_adjectives(rng: random.Random, animate: bool) -> list[str]:
    count = rng.choice((0, 0, 1, 1, 2))
    groups = sorted(rng.sample(_adjective_groups(animate), count))
    return [rng.choice(ADJECTIVE_GROUPS[group][1]) for group in groups]


def _choose_noun(rng: random.Random, number: str, animate: bool) -> str:
    singular, plural = rng.choice(ANIMATE_NOUNS if animate else THING_NOUNS)
    return singular if number == SINGULAR else plural


def _name_phrase(rng: random.Random) -> _Phrase:
    name = rng.choice(sorted(NAMES))
    return _Phrase([name], 0, SINGULAR, True, pronoun=NAMES[name])


def _bare_noun_phrase(rng: random.Random, number: str, animate: bool) -> _Phrase:
    """The word "the", up to two adjectives and a noun, with no modifier."""
    noun = _choose_noun(rng, number, animate)
    words = ["the", *_choose_adjectives(rng, animate), noun]
    return _Phrase(words, len(words) - 1, number, animate, _pronoun_for_noun(noun))


def _pronoun_for_noun(noun: str) -> str:
    """The pronoun a story uses for a noun, or "" if it has none (a singular "farmer")."""
    if noun in PLURAL_NOUNS:
        return "they"
    if noun in GENDERED_NOUNS:
        return GENDERED_NOUNS[noun]
    return "" if noun in _PEOPLE_SINGULARS else "it"


def _noun_phrase(
    rng: random.Random, depth: int, *, animate: bool | None = None, allow_name: bool = True
) -> _Phrase:
    """A name, or "the" + adjectives + noun with maybe a modifier (while depth > 0).

    ``animate=None`` means any noun will do.
    """
    if allow_name and animate is not False and rng.random() < _P_NAME_ELSEWHERE:
        return _name_phrase(rng)
    if animate is None:
        animate = rng.random() < 0.5
    phrase = _bare_noun_phrase(rng, rng.choice(NUMBERS), animate)
    if depth > 0 and rng.random() < _P_MODIFIER:
        phrase.words += _modifier(rng, depth - 1, phrase.number, animate)
    return phrase


def _modifier(rng: random.Random, depth: int, head_number: str, head_animate: bool) -> list[str]:
    """A prepositional phrase or relative clause attached to a head noun."""
    if rng.random() >= _P_RELATIVE:
        return [rng.choice(PREPOSITIONS), *_noun_phrase(rng, depth).words]
    if rng.random() < 0.5:
        return ["that", *_verb_phrase(rng, depth, head_number, head_animate)]
    inner = _noun_phrase(rng, depth, animate=True)
    return ["that", *inner.words, _verb_form(rng.choice(TRANSITIVE_VERBS), inner.number)]


def _verb_form(pair: tuple[str, str], number: str) -> str:
    return pair[0] if number == SINGULAR else pair[1]


def _verb_phrase(rng: random.Random, depth: int, number: str, animate: bool | None) -> list[str]:
    """A verb agreeing with ``number`` and what follows it; only animate subjects act."""
    kind = rng.choice(("intransitive", "transitive", "transitive", "copula"))
    if animate is False:
        kind = "copula"
    if kind == "copula":
        group = rng.choice(_adjective_groups(animate))
        return [_verb_form(COPULA, number), rng.choice(ADJECTIVE_GROUPS[group][1])]
    if kind == "transitive":
        verb = _verb_form(rng.choice(TRANSITIVE_VERBS), number)
        return [verb, *_noun_phrase(rng, depth).words]
    words = [_verb_form(rng.choice(INTRANSITIVE_VERBS), number)]
    if rng.random() < _P_VERB_PP:
        words += [rng.choice(PREPOSITIONS), *_noun_phrase(rng, depth).words]
    return words


def _subject(rng: random.Random, depth: int) -> _Phrase:
    roll = rng.random()
    if roll < _P_PRONOUN_SUBJECT:
        pronoun = rng.choice(sorted(PRONOUNS))
        return _Phrase([pronoun], 0, PRONOUNS[pronoun], None, pronoun)
    if roll < _P_PRONOUN_SUBJECT + _P_NAME_SUBJECT:
        return _name_phrase(rng)
    animate = rng.random() < _P_ANIMATE_SUBJECT
    return _noun_phrase(rng, depth, animate=animate, allow_name=False)


def _clause(rng: random.Random, subject: _Phrase, depth: int) -> Sentence:
    verb_phrase = _verb_phrase(rng, depth, subject.number, subject.animate)
    words = [*subject.words, *verb_phrase, "."]
    return Sentence(" ".join(words), subject.head, len(subject.words), subject.number)


def generate_sentence(rng: random.Random, *, max_depth: int = 1) -> Sentence:
    """One random sentence; ``max_depth`` limits how deeply modifiers nest (0 = none)."""
    if max_depth < 0:
        raise ValueError(f"max_depth must be 0 or more, got {max_depth}")
    return _clause(rng, _subject(rng, max_depth), max_depth)


def _story_character(rng: random.Random) -> _Phrase:
    """A name or a person or animal that a pronoun can refer back to."""
    if rng.random() < 0.5:
        return _name_phrase(rng)
    while True:
        character = _bare_noun_phrase(rng, rng.choice(NUMBERS), animate=True)
        if character.pronoun:
            return character


def _pronoun_for(referent: _Phrase) -> _Phrase:
    return _Phrase([referent.pronoun], 0, referent.number, True, referent.pronoun)


def _short_mention(referent: _Phrase) -> _Phrase:
    """Mention a character again: the name, or "the" + its noun without adjectives."""
    if len(referent.words) == 1:
        return referent
    return replace(referent, words=["the", referent.words[referent.head]], head=1)


def generate_story(rng: random.Random, n_sentences: int | None = None) -> str:
    """A short story of 2-5 sentences (or ``n_sentences``) about one or two characters.

    A pronoun ("he", "she", "it", "they") always refers to the subject of the sentence before.
    """
    if n_sentences is None:
        n_sentences = rng.randint(2, 5)
    if n_sentences < 1:
        raise ValueError(f"a story needs at least one sentence, got n_sentences={n_sentences}")
    hero = _story_character(rng)
    previous = hero
    sentences = []
    for position in range(n_sentences):
        roll = rng.random()
        if position == 0:
            subject = hero
        elif roll < 0.5:
            subject = _pronoun_for(previous)
        elif roll < 0.75:
            subject = previous = _short_mention(hero)
        else:
            subject = previous = _story_character(rng)
        sentences.append(_clause(rng, subject, depth=1).text)
    return " ".join(sentences)


def generate_corpus(n_stories: int, seed: int = 0) -> str:
    """``n_stories`` stories, one per line; the same seed always gives the same text."""
    if n_stories < 0:
        raise ValueError(f"n_stories must be 0 or more, got {n_stories}")
    rng = random.Random(seed)
    return "\n".join(generate_story(rng) for _ in range(n_stories))


def _agreement_example(rng: random.Random) -> Sentence:
    number = rng.choice(NUMBERS)
    other = PLURAL if number == SINGULAR else SINGULAR
    head = _bare_noun_phrase(rng, number, animate=True)
    kind = rng.choice(("preposition", "subject relative", "object relative"))
    if kind == "preposition":
        attractor = _bare_noun_phrase(rng, other, animate=rng.random() < 0.5)
        modifier = [rng.choice(PREPOSITIONS), *attractor.words]
    elif kind == "subject relative":
        attractor = _bare_noun_phrase(rng, other, animate=rng.random() < 0.5)
        verb = _verb_form(rng.choice(TRANSITIVE_VERBS), number)
        modifier = ["that", verb, *attractor.words]
    else:
        attractor = _bare_noun_phrase(rng, other, animate=True)
        verb = _verb_form(rng.choice(TRANSITIVE_VERBS), other)
        modifier = ["that", *attractor.words, verb]
    subject = replace(head, words=head.words + modifier)
    return _clause(rng, subject, depth=0)


def agreement_examples(n: int, seed: int = 0) -> list[Sentence]:
    """Sentences whose main verb is separated from its subject by a noun of the other number.

    The separating noun (the "attractor") sits in a prepositional phrase ("the dog near the
    trees runs") or a relative clause ("the dogs that the cat sees run"), so a model that just
    copies the number of the nearest noun gets these wrong.
    """
    if n < 0:
        raise ValueError(f"n must be 0 or more, got {n}")
    rng = random.Random(seed)
    return [_agreement_example(rng) for _ in range(n)]


def split_sentences(text: str) -> list[str]:
    """Split text on " ." into sentences, each keeping its final " ."."""
    sentences: list[str] = []
    current: list[str] = []
    for word in text.split():
        current.append(word)
        if word == ".":
            sentences.append(" ".join(current))
            current = []
    if current:
        sentences.append(" ".join(current))
    return sentences


# ---------------------------------------------------------------------------------------------
# Checking sentences: a recursive-descent parser that returns every possible parse.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parse:
    """One way to read words[start:end]; for noun phrases, the head and its features."""

    end: int
    problems: tuple[str, ...] = ()
    head: int = -1
    number: str | None = None
    animate: bool | None = None


class _Parser:
    """Parses one sentence (a list of known words, without the final ".").

    Each method takes a start position and returns all parses of its phrase starting there, so
    ambiguity (a prepositional phrase that could belong to either noun) needs no special care.
    Agreement and meaning mistakes do not stop a parse; they are collected in ``problems`` so
    ``explain`` can name them. The furthest position where a required word was missing is
    remembered for the syntax-error message.
    """

    def __init__(self, words: list[str]) -> None:
        self.words = words
        self.entries = [_LEXICON[word] for word in words]
        self.failure_at = -1
        self.expected: list[str] = []

    def _is(self, i: int, category: str) -> bool:
        return i < len(self.words) and self.entries[i].category == category

    def _fail(self, i: int, wanted: str) -> None:
        if i > self.failure_at:
            self.failure_at, self.expected = i, [wanted]
        elif i == self.failure_at and wanted not in self.expected:
            self.expected.append(wanted)

    def sentence(self) -> list[_Parse]:
        parses = []
        for subject in self.subject(0):
            for verb_phrase in self.verb_phrase(subject.end, subject, relative=False):
                problems = subject.problems + verb_phrase.problems
                parses.append(replace(verb_phrase, problems=problems))
        return parses

    def subject(self, i: int) -> list[_Parse]:
        if self._is(i, "pronoun"):
            return [_Parse(i + 1, head=i, number=self.entries[i].number)]
        return self.noun_phrase(i, "a subject")

    def noun_phrase(self, i: int, wanted: str) -> list[_Parse]:
        if self._is(i, "name"):
            return [_Parse(i + 1, head=i, number=SINGULAR, animate=True)]
        if not self._is(i, "the"):
            self._fail(i, wanted)
            return []
        end = i + 1
        while self._is(end, "adjective"):
            end += 1
        if not self._is(end, "noun"):
            self._fail(end, "a noun")
            return []
        noun = self.entries[end]
        problems = self._adjective_problems(range(i + 1, end), end)
        phrase = _Parse(end + 1, problems, head=end, number=noun.number, animate=noun.animate)
        return [phrase, *self.modified(phrase)]

    def modified(self, phrase: _Parse) -> list[_Parse]:
        """The noun phrase extended by one prepositional phrase or relative clause."""
        i = phrase.end
        if self._is(i, "preposition"):
            extensions = self.noun_phrase(i + 1, "a noun phrase")
        elif self._is(i, "that"):
            extensions = self.relative_clause(i + 1, phrase)
        else:
            return []
        return [
            replace(phrase, end=extension.end, problems=phrase.problems + extension.problems)
            for extension in extensions
        ]

    def relative_clause(self, i: int, head: _Parse) -> list[_Parse]:
        """After "that": a verb phrase (the head is its subject) or subject + transitive verb."""
        if self._is(i, "verb") or self._is(i, "copula"):
            return self.verb_phrase(i, head, relative=True)
        parses = []
        for inner in self.noun_phrase(i, "a verb or a noun phrase after 'that'"):
            verb = inner.end
            if self._is(verb, "verb") and self.entries[verb].transitive:
                problems = inner.problems + self._subject_problems(inner, verb, relative=True)
                parses.append(_Parse(verb + 1, problems))
            else:
                self._fail(verb, "a transitive verb")
        return parses

    def verb_phrase(self, i: int, subject: _Parse, *, relative: bool) -> list[_Parse]:
        """A verb agreeing with ``subject``, then an adjective, an object or a place."""
        if not (self._is(i, "verb") or self._is(i, "copula")):
            self._fail(i, "a verb")
            return []
        problems = self._subject_problems(subject, i, relative)
        if self._is(i, "copula"):
            if self._is(i + 1, "adjective"):
                return [_Parse(i + 2, problems + self._feeling_problems(i + 1, subject.head))]
            self._fail(i + 1, "an adjective")
            return []
        if self.entries[i].transitive:
            objects = self.noun_phrase(i + 1, "an object")
            return [_Parse(obj.end, problems + obj.problems) for obj in objects]
        parses = [_Parse(i + 1, problems)]
        if self._is(i + 1, "preposition"):
            places = self.noun_phrase(i + 2, "a noun phrase")
            parses += [_Parse(place.end, problems + place.problems) for place in places]
        return parses

    def _subject_problems(self, subject: _Parse, verb: int, relative: bool) -> tuple[str, ...]:
        """Agreement of the verb at ``verb`` with ``subject``, and whether the subject can act."""
        problems = []
        verb_word, subject_word = self.words[verb], self.words[subject.head]
        if self.entries[verb].number != subject.number:
            where = " in the relative clause" if relative else ""
            problems.append(
                f"verb '{verb_word}'{where} does not agree with "
                f"{_NUMBER_WORDS[subject.number]} subject '{subject_word}'"
            )
        if self.entries[verb].category == "verb" and subject.animate is False:
            problems.append(
                f"'{subject_word}' is not a person or animal, so it cannot be the subject of "
                f"'{verb_word}'"
                " (things can only be described with 'is' or 'are')"
            )
        return tuple(problems)

    def _feeling_problems(self, adjective: int, noun: int) -> tuple[str, ...]:
        """Feelings ("happy") only describe people and animals."""
        if self.entries[adjective].group == FEELING_GROUP and self.entries[noun].animate is False:
            word = self.words[adjective]
            return (f"'{word}' describes people and animals, not '{self.words[noun]}'",)
        return ()

    def _adjective_problems(self, positions: range, noun: int) -> tuple[str, ...]:
        adjectives = [self.words[i] for i in positions]
        if len(adjectives) > MAX_ADJECTIVES:
            return (f"too many adjectives ({' '.join(adjectives)}); use at most {MAX_ADJECTIVES}",)
        for adjective in positions:
            if problems := self._feeling_problems(adjective, noun):
                return problems
        for first, second in pairwise(positions):
            first_group, second_group = self.entries[first].group, self.entries[second].group
            if first_group == second_group:
                kind = ADJECTIVE_GROUPS[first_group][0]
                return (
                    f"'{self.words[first]}' and '{self.words[second]}' are both {kind} "
                    "adjectives; use only one",
                )
            if first_group > second_group:
                return (
                    f"adjective '{self.words[second]}' should come before '{self.words[first]}'",
                )
        return ()


def _unknown_word_message(word: str) -> str:
    for known in (word.lower(), word.capitalize()):
        if known in VOCABULARY:
            return f"'{word}' should be written '{known}'"
    return f"unknown word '{word}'"


def _join_expected(expected: list[str]) -> str:
    return expected[0] if len(expected) == 1 else ", ".join(expected[:-1]) + " or " + expected[-1]


def _syntax_message(parser: _Parser, parses: list[_Parse], words: list[str]) -> str:
    longest = max((parse.end for parse in parses), default=-1)
    if longest >= parser.failure_at:
        return f"extra words after a complete sentence: '{' '.join(words[longest:])}'"
    if not any(entry.category in ("verb", "copula") for entry in parser.entries):
        return "the sentence has no verb"
    expected = _join_expected(parser.expected)
    if parser.failure_at >= len(words):
        return f"the sentence ends too early after '{words[-1]}': expected {expected}"
    return f"expected {expected} but found '{words[parser.failure_at]}'"


def explain(sentence: str) -> str:
    """Return "ok" for a grammatical sentence, otherwise a short reason it is not."""
    if not isinstance(sentence, str):
        raise TypeError(f"expected a sentence as a string, got {type(sentence).__name__}")
    words = sentence.split()
    if words and words[-1] == ".":
        words = words[:-1]
    if not words:
        return "the sentence is empty"
    if len(words) > MAX_SENTENCE_WORDS:
        return f"the sentence is too long ({len(words)} words; at most {MAX_SENTENCE_WORDS})"
    if "." in words:
        return "'.' can only end a sentence; check one sentence at a time"
    unknown = [word for word in words if word not in VOCABULARY]
    if unknown:
        return _unknown_word_message(unknown[0])
    parser = _Parser(words)
    parses = parser.sentence()
    complete = [parse for parse in parses if parse.end == len(words)]
    if not complete:
        return _syntax_message(parser, parses, words)
    best = min(complete, key=lambda parse: len(parse.problems))
    return best.problems[0] if best.problems else "ok"


def is_grammatical(sentence: str) -> bool:
    """True if ``sentence`` (with or without its final " .") is one the grammar can generate."""
    return explain(sentence) == "ok"
