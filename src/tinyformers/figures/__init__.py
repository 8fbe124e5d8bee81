"""Figures for the lessons: plots and attention views that render offline."""
