"""Data in: every input becomes one integer-coded votes table (:class:`~annostat.data.votes.Votes`) and a subjects
table (:class:`~annostat.data.subjects.Subjects`).

- ``votes.py``: the votes table (codes, label maps, experience, row accounting);
- ``subjects.py``: subjects with their metadata and images, with or without votes;
- ``priors.py``: per-subject answer priors from a classifier's predictions (Zoobot's, any table);
- ``trees.py``: Galaxy Zoo decision trees;
- ``io/``: readers (long tables, Panoptes exports, workflow definitions) and ``inspect``.
"""
