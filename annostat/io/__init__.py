"""Readers: every input becomes one :class:`annostat.votes.Votes` table.

- :func:`annostat.io.load.load_votes` (also ``annostat.load_votes``): a long votes table (CSV/TSV/Parquet) or a
  Zooniverse Panoptes classification export;
- :func:`annostat.io.panoptes.read_panoptes`: an export with its row accounting and quarantine;
- :func:`annostat.io.workflows.read_workflows`: workflow definitions (project CSV or API JSON).
"""

from annostat.io.tables import read_table

__all__ = ["read_table"]
