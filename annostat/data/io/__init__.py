"""Readers: every input becomes one :class:`annostat.data.votes.Votes` table.

- :func:`annostat.data.io.load.load_votes` (also ``annostat.load_votes``): a long votes table (CSV/TSV/Parquet) or a
  Zooniverse Panoptes classification export;
- :func:`annostat.data.io.panoptes.read_panoptes`: an export with its row accounting and quarantine;
- :func:`annostat.data.io.workflows.read_workflows`: workflow definitions (project CSV or API JSON).
"""

from annostat.data.io.tables import read_table

__all__ = ["read_table"]
