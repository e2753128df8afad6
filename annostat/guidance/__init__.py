"""Personalised advice for volunteers, read from any fit folder (``annostat advise FIT_DIR --out DIR``).

For every volunteer and question a fit holds, the advice table gives the votes, the estimated accuracy with a 90%
interval, the volunteer's rank among the volunteers with enough votes, their learning trend (learning-curve fits),
their most costly confusion when one stands out, a recommendation category and one or two plain sentences; worked
examples, the impact of fixing each confusion, and static HTML cards.

- ``evidence.py``: which confusion stands out, judged on posteriors (the rule);
- ``recommendations.py``: the categories, intervals, impact and the project table; ``wording.py``: the sentences;
- ``examples.py``: worked examples and thumbnails; ``privacy.py``: pseudonyms and the private name map;
- ``cards.py``: the HTML cards; ``advise.py``: all of it written for one fit folder.
"""

from annostat.guidance.advise import write_advice
from annostat.guidance.evidence import FitTables, question_evidence
from annostat.guidance.privacy import pseudonym
from annostat.guidance.recommendations import ADVICE_COLUMNS, RECOMMENDATIONS, advise

__all__ = ["ADVICE_COLUMNS", "RECOMMENDATIONS", "FitTables", "advise", "pseudonym", "question_evidence", "write_advice"]
