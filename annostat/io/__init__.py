"""Readers: every input becomes one :class:`annostat.votes.Votes` table."""

from annostat.io.tables import read_table

__all__ = ["read_table"]
