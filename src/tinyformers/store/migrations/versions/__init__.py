"""One file per schema change, oldest first (``0001_initial.py`` creates the tables)."""
