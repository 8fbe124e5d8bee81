"""Token and position vectors: what the positional-encoding lesson's page starts with."""

from __future__ import annotations

# What the lesson's page starts with (the lesson plans time the same computation).
DEFAULT_MODEL = "gpt-stories"
DEFAULT_SENTENCE = "Zoe sees the big dog . the dog sees Zoe ."
D_MODEL = 64  # width of each vector of the sinusoidal table
LENGTH = 64  # positions of the sinusoidal table
