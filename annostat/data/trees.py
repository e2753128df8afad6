"""Decision trees: questions, their answers, and which answer leads to which question.

Galaxy Zoo asks each volunteer a path of questions that follows *their own* answers. A :class:`Tree` records the
questions (in asking order), each question's answers and the answers that lead to it, with Zoobot's names
(``{question}_{answer}`` is a catalogue column). Presets (:data:`TREES`): ``gz2``, ``gz-decals-dr12`` (GZD-1/2),
``gz-decals-dr5`` (= ``gz-decals-dr8`` = ``gz-desi``), ``gz-cosmic-dawn``, ``gz-euclid`` and ``gz-jwst-ceers``.
Question and answer names follow Zoobot's ``label_metadata`` (galaxy-datasets); Euclid and JWST CEERS use the
Cosmic Dawn question set (clumps, problem and artifact sub-questions), as Zoobot does.

:data:`PANOPTES_TASKS` maps the tasks of the Galaxy Zoo DECaLS Panoptes workflow (6122, GZD-5) to these names: for
each task, candidate (question, {normalised label: answer}) pairs; a version's task takes the first candidate whose
answers are exactly the labels that version shows, so reworded labels ("Star or Artefact", "Star or Artifact") are
one answer, while a version that asked with a different answer set (the early bulge-size and merger answers) goes to
the matching older question (``bulge-size-dr12``, ``merging-dr12``) or, matching none, is skipped and counted.
:meth:`Tree.from_workflow` builds a tree from any workflow's ``next`` links.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from annostat.data.io.workflows import WorkflowVersion


@dataclass(frozen=True)
class Question:
    name: str
    answers: tuple[str, ...]
    asked_after: tuple[tuple[str, str | None], ...] = ()  # (question, answer) pairs that lead here; () = first/always


@dataclass
class Tree:
    name: str
    questions: dict[str, Question] = field(default_factory=dict)

    def answers(self, question: str) -> tuple[str, ...]:
        return self.questions[question].answers

    def columns(self) -> list[str]:
        """Zoobot-style ``{question}_{answer}`` names, in tree order."""
        return [f"{q}_{a}" for q, question in self.questions.items() for a in question.answers]

    def __len__(self) -> int:
        return len(self.questions)

    @classmethod
    def from_pairs(cls, name: str, pairs: dict[str, tuple[str, ...]], after: dict[str, str | None]) -> Tree:
        """Build from {question: answers} and {question: "question_answer" that leads to it, or None}."""
        questions = {}
        for q, answers in pairs.items():
            parent = after.get(q)
            link: tuple[tuple[str, str], ...] = ()
            if parent:
                pq, _, pa = parent.partition("_")
                link = ((pq, pa),)
            questions[q] = Question(q, tuple(answers), link)
        return cls(name, questions)

    @classmethod
    def from_workflow(cls, version: WorkflowVersion, name: str | None = None) -> Tree:
        """Questions are the workflow's single/multiple task ids, answers their normalised labels (multiple-answer
        tasks become one yes/no question per answer, ``T10/ring``), links from the ``next`` fields."""
        parents: dict[str, list[tuple[str, str | None]]] = {}
        questions: dict[str, Question] = {}
        for task in version.tasks.values():
            if task.type == "single":
                for label, nxt in zip(task.normalised, task.next):
                    if nxt:
                        parents.setdefault(nxt, []).append((task.id, label))
            elif task.task_next:
                parents.setdefault(task.task_next, []).append((task.id, None))
        for task in version.tasks.values():
            after = tuple(parents.get(task.id, ()))
            if task.type == "single":
                questions[task.id] = Question(task.id, tuple(task.normalised), after)
            elif task.type == "multiple":
                for label in task.normalised:
                    questions[f"{task.id}/{label}"] = Question(f"{task.id}/{label}", ("yes", "no"), after)
        return cls(name or f"workflow {version.workflow_id} v{version.version}", questions)


DECALS_DR5 = {
    "smooth-or-featured": ("smooth", "featured-or-disk", "artifact"),
    "disk-edge-on": ("yes", "no"),
    "has-spiral-arms": ("yes", "no"),
    "bar": ("strong", "weak", "no"),
    "bulge-size": ("dominant", "large", "moderate", "small", "none"),
    "how-rounded": ("round", "in-between", "cigar-shaped"),
    "edge-on-bulge": ("boxy", "none", "rounded"),
    "spiral-winding": ("tight", "medium", "loose"),
    "spiral-arm-count": ("1", "2", "3", "4", "more-than-4", "cant-tell"),
    "merging": ("none", "minor-disturbance", "major-disturbance", "merger"),
}
DECALS_AFTER = {
    "smooth-or-featured": None,
    "disk-edge-on": "smooth-or-featured_featured-or-disk",
    "has-spiral-arms": "disk-edge-on_no",
    "bar": "disk-edge-on_no",
    "bulge-size": "disk-edge-on_no",
    "how-rounded": "smooth-or-featured_smooth",
    "edge-on-bulge": "disk-edge-on_yes",
    "spiral-winding": "has-spiral-arms_yes",
    "spiral-arm-count": "has-spiral-arms_yes",
    "merging": None,
}
DECALS_DR12 = {
    **DECALS_DR5,
    "bar": ("yes", "no"),
    "bulge-size": ("dominant", "obvious", "none"),
    "how-rounded": ("completely", "in-between", "cigar-shaped"),
    "spiral-arm-count": ("1", "2", "3", "4", "more-than-4"),
    "merging": ("neither", "tidal-debris", "both", "merger"),
}
GZ2 = {
    "smooth-or-featured": ("smooth", "featured-or-disk", "artifact"),
    "disk-edge-on": ("yes", "no"),
    "has-spiral-arms": ("yes", "no"),
    "bar": ("yes", "no"),
    "bulge-size": ("dominant", "obvious", "just-noticeable", "no"),
    "something-odd": ("yes", "no"),
    "how-rounded": ("round", "in-between", "cigar"),
    "bulge-shape": ("round", "boxy", "no-bulge"),
    "spiral-winding": ("tight", "medium", "loose"),
    "spiral-arm-count": ("1", "2", "3", "4", "more-than-4", "cant-tell"),
}
GZ2_AFTER = {
    "smooth-or-featured": None,
    "disk-edge-on": "smooth-or-featured_featured-or-disk",
    "has-spiral-arms": "disk-edge-on_no",
    "bar": "disk-edge-on_no",
    "bulge-size": "disk-edge-on_no",
    "something-odd": None,
    "how-rounded": "smooth-or-featured_smooth",
    "bulge-shape": "disk-edge-on_yes",
    "spiral-winding": "has-spiral-arms_yes",
    "spiral-arm-count": "has-spiral-arms_yes",
}
COSMIC_DAWN = {  # DR5's questions with a "problem" first answer and its sub-questions, plus clumps
    **DECALS_DR5,
    "smooth-or-featured": ("smooth", "featured-or-disk", "problem"),
    "clumps": ("yes", "no"),
    "problem": ("star", "artifact", "zoom"),
    "artifact": ("satellite", "scattered", "diffraction", "ray", "saturation", "other"),
}
COSMIC_DAWN_AFTER = {
    **DECALS_AFTER,
    "clumps": "disk-edge-on_no",
    "problem": "smooth-or-featured_problem",
    "artifact": "problem_artifact",
}

#: the decision-tree presets by name (``tree(name)``)
TREES: dict[str, Tree] = {
    "gz2": Tree.from_pairs("gz2", GZ2, GZ2_AFTER),
    "gz-decals-dr12": Tree.from_pairs("gz-decals-dr12", DECALS_DR12, DECALS_AFTER),
    "gz-decals-dr5": Tree.from_pairs("gz-decals-dr5", DECALS_DR5, DECALS_AFTER),
    "gz-cosmic-dawn": Tree.from_pairs("gz-cosmic-dawn", COSMIC_DAWN, COSMIC_DAWN_AFTER),
    "gz-euclid": Tree.from_pairs("gz-euclid", COSMIC_DAWN, COSMIC_DAWN_AFTER),
    "gz-jwst-ceers": Tree.from_pairs("gz-jwst-ceers", COSMIC_DAWN, COSMIC_DAWN_AFTER),
}
TREES["gz-decals-dr8"] = TREES["gz-desi"] = TREES["gz-decals-dr5"]


def get_tree(name: str) -> Tree:
    try:
        return TREES[name]
    except KeyError:
        raise KeyError(f"no tree preset {name!r}; the presets are {', '.join(sorted(TREES))}") from None


_MERGING_DR12 = {
    "merging": "merger",
    "tidal debris": "tidal-debris",
    "both": "both",
    "both (merger & tidal debris)": "both",
    "neither": "neither",
    "neither (no merger & no tidal debris)": "neither",
}
#: per tree preset, a Panoptes workflow's task ids and their candidates (question and normalised answer labels),
#: e.g. Galaxy Zoo DECaLS workflow 6122 (GZD-5)
PANOPTES_TASKS: dict[str, dict[str, list[tuple[str, dict[str, str]]]]] = {
    "gz-decals-dr5": {
        "T0": [
            (
                "smooth-or-featured",
                {
                    "smooth": "smooth",
                    "features or disk": "featured-or-disk",
                    "star or artefact": "artifact",
                    "star or artifact": "artifact",
                },
            )
        ],
        "T1": [
            (
                "how-rounded",
                {
                    "completely round": "round",
                    "inbetween": "in-between",
                    "in between": "in-between",
                    "cigar-shaped": "cigar-shaped",
                },
            )
        ],
        "T2": [
            (
                "disk-edge-on",
                {
                    "yes": "yes",
                    "yes - edge on disk": "yes",
                    "(new image, edge and inclined) yes": "yes",
                    "no": "no",
                    "no - something else": "no",
                },
            )
        ],
        "T3": [("edge-on-bulge", {"rounded": "rounded", "boxy": "boxy", "no bulge": "none"})],
        "T4": [("bar", {"strong bar": "strong", "weak bar": "weak", "no bar": "no"})],
        "T5": [("has-spiral-arms", {"yes": "yes", "no": "no"})],
        "T6": [("spiral-winding", {"tight": "tight", "medium": "medium", "loose": "loose"})],
        "T7": [
            (
                "spiral-arm-count",
                {"1": "1", "2": "2", "3": "3", "4": "4", "more than 4": "more-than-4", "can't tell": "cant-tell"},
            )
        ],
        "T8": [
            (
                "bulge-size",
                {
                    "dominant": "dominant",
                    "large": "large",
                    "moderate": "moderate",
                    "small": "small",
                    "no bulge": "none",
                },
            ),
            ("bulge-size-dr12", {"dominant": "dominant", "obvious": "obvious", "no bulge": "none"}),
        ],
        "T11": [
            (
                "merging",
                {
                    "merging": "merger",
                    "major disturbance": "major-disturbance",
                    "minor disturbance": "minor-disturbance",
                    "none": "none",
                },
            ),
            ("merging-dr12", _MERGING_DR12),
        ],
    },
}
#: questions the DECaLS workflow mapping can produce beyond the DR5 tree (older answer sets, kept apart)
EXTRA_QUESTIONS = {
    "gz-decals-dr5": {"bulge-size-dr12": DECALS_DR12["bulge-size"], "merging-dr12": DECALS_DR12["merging"]},
}
