"""The advice in words: one or two plain sentences per recommendation, in the decision tree's own terms."""

from __future__ import annotations

from typing import Any


def _words(label: str) -> str:
    return str(label).replace("-", " ").replace("_", " ")


def sentence(rec: str, question: str, answers: list[str], row: dict[str, Any]) -> str:
    q = _words(question)
    acc = row["accuracy"]
    if rec == "too few votes to tell":
        return f"You have answered '{q}' {row['n']} times; a few more answers will tell us how you are doing there."
    if rec == "possible low-effort pattern":
        return (
            f"On '{q}' you chose '{_words(row['top_answer'])}' for almost every galaxy. Take a moment over each "
            f"image; the field guide shows what each answer looks like."
        )
    if rec == "review a confusion":
        k, j = _words(row["confusion_true"]), _words(row["confusion_answer"])
        return (
            f"On '{q}', when a galaxy's answer is '{k}' you answered '{j}' about {row['confusion_rate']:.0%} of "
            f"the time (most volunteers: {row['population_rate']:.0%}). The examples below show '{k}' galaxies; "
            f"comparing them with the field guide should help."
        )
    if rec == "keep practising":
        return (
            f"Your estimated accuracy on '{q}' is about {acc:.0%}, a little below most volunteers, with no single "
            "mix-up standing out: the field guide's examples for every answer are worth a look."
        )
    if rec == "ready for harder subjects":
        return (
            f"Your answers to '{q}' are among the most reliable ({acc:.0%}, top quarter of volunteers). You are "
            "ready for the harder galaxies."
        )
    return f"Your answers to '{q}' are reliable (estimated accuracy about {acc:.0%}). Thank you, keep going!"
