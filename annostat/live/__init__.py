"""The live project: which subjects are done (retirement), and, later, which to show next and updates as votes
arrive. Everything here reads a fit (:class:`annostat.fit.Fit`, or a fit folder)."""

from annostat.live.retire import RETIREMENT_REASONS, retire

__all__ = ["RETIREMENT_REASONS", "retire"]
