"""Lesson plans for instructors: each lesson's steps, its live computation timed on this
machine, and a printable handout."""
