"""annostat: probabilistic models of citizen-science volunteers.

>>> import annostat
>>> votes = annostat.Votes.read("votes.csv")                     # doctest: +SKIP
>>> fit = annostat.DawidSkene().fit(votes)                       # doctest: +SKIP
>>> fit.answers, fit.volunteers, fit.confusion                   # doctest: +SKIP
"""

__version__ = "0.2.0"  # what changed in each version: CHANGELOG.md

from annostat.data.io.load import load_votes
from annostat.data.subjects import Subjects
from annostat.data.votes import Votes
from annostat.errors import InputError
from annostat.fit import Fit
from annostat.models import DawidSkene, MajorityVote, get_model

__all__ = [
    "DawidSkene",
    "Fit",
    "InputError",
    "MajorityVote",
    "Subjects",
    "Votes",
    "__version__",
    "get_model",
    "load_votes",
]
