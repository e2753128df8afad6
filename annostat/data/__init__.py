"""Data in: every input becomes one integer-coded votes table (:class:`~annostat.data.votes.Votes`).

- ``votes.py``: the votes table (codes, label maps, experience, row accounting);
- ``trees.py``: Galaxy Zoo decision trees;
- ``io/``: readers (long tables, Panoptes exports, workflow definitions) and ``inspect``.
"""
