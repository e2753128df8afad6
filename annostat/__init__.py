"""annostat: probabilistic models of citizen-science volunteers.

    >>> import annostat
    >>> votes = annostat.Votes.read("votes.csv")                     # doctest: +SKIP
    >>> fit = annostat.DawidSkene().fit(votes)                       # doctest: +SKIP
    >>> fit.answers, fit.volunteers, fit.confusion                   # doctest: +SKIP
"""

__version__ = "0.2.0"  # what changed in each version: CHANGELOG.md

from annostat.data.subjects import Subjects
from annostat.errors import InputError
from annostat.fit import Fit
from annostat.models import DawidSkene, MajorityVote, get_model
from annostat.data.votes import Votes
from annostat.data.io.load import load_votes  # noqa: E402 - after Votes, which the loader builds

__all__ = ["__version__", "InputError", "Fit", "DawidSkene", "MajorityVote", "Subjects", "Votes", "get_model",
           "load_votes"]
