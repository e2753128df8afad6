"""The live project: which subjects are done (retirement) and which to show next (selection), and, later, updates
as votes arrive. Everything here reads a fit (:class:`annostat.fit.Fit`, or a fit folder)."""

from annostat.live.retire import RETIREMENT_REASONS, retire
from annostat.live.select import information_gain, select

__all__ = ["RETIREMENT_REASONS", "information_gain", "retire", "select"]
