"""The live project: which subjects are done (retirement), which to show next (selection, BALD for a joint fit's
unvoted subjects), and updates as votes arrive (incremental EM, warm-started SVI, fine-tuned networks). Everything
here reads a fit (:class:`annostat.fit.Fit`, or a fit folder)."""

from annostat.live.retire import RETIREMENT_REASONS, retire
from annostat.live.select import bald, information_gain, select
from annostat.live.update import update

__all__ = ["RETIREMENT_REASONS", "bald", "information_gain", "retire", "select", "update"]
