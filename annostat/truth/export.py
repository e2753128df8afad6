"""Simulated votes written as real ones: a Zooniverse Panoptes classification export and its workflow definition
(the Galaxy Zoo DECaLS workflow 6122 as volunteers see it), so simulated votes go through the same ingest-and-fit path
as real exports, beside the true volunteer parameters (:func:`write_simulation`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from annostat.truth.simulate import SimulatedVotes


#: the Galaxy Zoo DECaLS (GZD-5) workflow as simulated volunteers see it: task -> (question, labels, next per answer).
#: Task ids and labels follow the real workflow 6122 (its odd-feature task T10 left out, so merging ends the walk,
#: and "Star or Artifact" goes on to merging as the annostat tree asks).
DECALS_WORKFLOW: dict[str, tuple[str, dict[str, str], dict[str, str | None]]] = {
    "T0": (
        "smooth-or-featured",
        {"smooth": "Smooth", "featured-or-disk": "Features or Disk", "artifact": "Star or Artifact"},
        {"smooth": "T1", "featured-or-disk": "T2", "artifact": "T11"},
    ),
    "T1": (
        "how-rounded",
        {"round": "Completely round", "in-between": "In between", "cigar-shaped": "Cigar-shaped"},
        {"round": "T11", "in-between": "T11", "cigar-shaped": "T11"},
    ),
    "T2": ("disk-edge-on", {"yes": "Yes - Edge On Disk", "no": "No - Something Else"}, {"yes": "T3", "no": "T4"}),
    "T3": (
        "edge-on-bulge",
        {"rounded": "Rounded", "boxy": "Boxy", "none": "No bulge"},
        {"rounded": "T11", "boxy": "T11", "none": "T11"},
    ),
    "T4": (
        "bar",
        {"no": "No Bar", "weak": "Weak Bar", "strong": "Strong Bar"},
        {"no": "T5", "weak": "T5", "strong": "T5"},
    ),
    "T5": ("has-spiral-arms", {"yes": "Yes", "no": "No"}, {"yes": "T6", "no": "T8"}),
    "T6": (
        "spiral-winding",
        {"tight": "Tight", "medium": "Medium", "loose": "Loose"},
        {"tight": "T7", "medium": "T7", "loose": "T7"},
    ),
    "T7": (
        "spiral-arm-count",
        {"1": "1", "2": "2", "3": "3", "4": "4", "more-than-4": "More than 4", "cant-tell": "Can't tell"},
        dict.fromkeys(["1", "2", "3", "4", "more-than-4", "cant-tell"], "T8"),
    ),
    "T8": (
        "bulge-size",
        {"none": "No Bulge", "small": "Small", "moderate": "Moderate", "large": "Large", "dominant": "Dominant"},
        dict.fromkeys(["none", "small", "moderate", "large", "dominant"], "T11"),
    ),
    "T11": (
        "merging",
        {
            "merger": "Merging",
            "major-disturbance": "Major Disturbance",
            "minor-disturbance": "Minor Disturbance",
            "none": "None",
        },
        dict.fromkeys(["merger", "major-disturbance", "minor-disturbance", "none"], None),
    ),
}
WORKFLOW_ID, WORKFLOW_VERSION = "6122", "1.1"
WORKFLOW_NAME = "DECaLS DR5 (simulated by annostat)"
_EXPORT_TREES = ("gz-decals-dr5", "gz-decals-dr8", "gz-desi")


def workflow_definition() -> dict[str, Any]:
    """The simulated DECaLS workflow as the Panoptes API's workflow-versions JSON."""
    tasks, strings = {}, {}
    for task_id, (question, labels, nxt) in DECALS_WORKFLOW.items():
        answers = []
        for i, (answer, label) in enumerate(labels.items()):
            key = f"{task_id}.answers.{i}.label"
            strings[key] = label
            answers.append({"label": key, **({"next": nxt[answer]} if nxt[answer] else {})})
        strings[f"{task_id}.question"] = question
        tasks[task_id] = {"type": "single", "answers": answers, "question": f"{task_id}.question", "required": True}
    major, minor = WORKFLOW_VERSION.split(".")
    return {
        "workflow_versions": [
            {
                "id": "1",
                "major_number": int(major),
                "minor_number": int(minor),
                "first_task": "T0",
                "tasks": tasks,
                "strings": strings,
                "links": {"workflow": WORKFLOW_ID},
            }
        ]
    }


def panoptes_export(sim: SimulatedVotes) -> pd.DataFrame:
    """The simulated classifications as a Panoptes classification export (the 14 columns of a real one)."""
    if sim.settings["tree"] not in _EXPORT_TREES:
        raise ValueError(
            f"a Panoptes export is written for the Galaxy Zoo DECaLS tree only, not {sim.settings['tree']}"
        )
    task_of = {question: (task_id, labels) for task_id, (question, labels, _) in DECALS_WORKFLOW.items()}
    task_rank = {task_id: i for i, task_id in enumerate(DECALS_WORKFLOW)}
    v = sim.votes
    task = v["question"].map(lambda q: task_of[q][0])
    item = [
        json.dumps({"task": tk, "task_label": q, "value": task_of[q][1][a]})
        for tk, q, a in zip(task, v["question"], v["answer"])
    ]
    items = pd.DataFrame(
        {"classification_id": v["classification_id"].to_numpy(), "rank": task.map(task_rank), "item": item}
    ).sort_values(["classification_id", "rank"], kind="stable")
    annotations = items.groupby("classification_id", sort=True)["item"].agg(lambda s: "[" + ",".join(s) + "]")
    c = sim.classifications.set_index("classification_id").loc[annotations.index]
    rng = np.random.default_rng(sim.settings["seed"] + 1)
    dwell = rng.lognormal(np.log(25.0), 0.6, len(c))
    finished = pd.to_datetime(c["created_at"].to_numpy())
    started = finished - pd.to_timedelta(dwell, unit="s")
    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
    metadata = [
        '{{"started_at":"{}","finished_at":"{}","source":"annostat.truth.simulate","user_language":"en"}}'.format(*pair)
        for pair in zip(iso(started), iso(finished))
    ]
    image_of = sim.subjects.set_index("subject")["image_id"]
    subject_data = [json.dumps({str(s): {"retired": None, "image_id": image_of[s]}}) for s in c["subject"]]
    user_number = c["volunteer"].str.rsplit("-", n=1).str[1].astype(int)
    return pd.DataFrame(
        {
            "classification_id": annotations.index.to_numpy(),
            "user_name": c["volunteer"].to_numpy(),
            "user_id": (1_000_000 + user_number).to_numpy(),
            "user_ip": [f"{u:020x}" for u in user_number],
            "workflow_id": WORKFLOW_ID,
            "workflow_name": WORKFLOW_NAME,
            "workflow_version": WORKFLOW_VERSION,
            "created_at": finished.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "gold_standard": "",
            "expert": "",
            "metadata": metadata,
            "annotations": annotations.to_numpy(),
            "subject_data": subject_data,
            "subject_ids": c["subject"].to_numpy(),
        }
    )


def write_simulation(sim: SimulatedVotes, out: str | Path, export: bool = True) -> Path:
    """Write a simulation to ``out``: ``votes.parquet`` (the long table), ``classifications.csv`` and
    ``workflows.json`` (the Panoptes export and its workflow, for the DECaLS tree), ``volunteers.parquet``,
    ``confusion.parquet`` and ``learning.parquet`` (the true volunteer parameters), ``subjects.parquet`` (Panoptes
    subject id, image id, difficulty, retired), ``truth.parquet`` (true answers, long) and ``simulation.json``
    (settings and counts)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sim.votes.to_parquet(out / "votes.parquet", index=False)
    sim.truth.to_parquet(out / "truth.parquet", index=False)
    sim.volunteers.to_parquet(out / "volunteers.parquet", index=False)
    sim.confusion.to_parquet(out / "confusion.parquet", index=False)
    sim.population.to_parquet(out / "learning.parquet", index=False)
    sim.subjects.to_parquet(out / "subjects.parquet", index=False)
    settings = dict(sim.settings)
    if export and sim.settings["tree"] in _EXPORT_TREES:
        panoptes_export(sim).to_csv(out / "classifications.csv", index=False)
        (out / "workflows.json").write_text(json.dumps(workflow_definition(), indent=1) + "\n", encoding="utf-8")
        settings["export"] = {
            "classifications": "classifications.csv",
            "workflows": "workflows.json",
            "workflow_id": WORKFLOW_ID,
        }
    (out / "simulation.json").write_text(json.dumps(settings, indent=2, default=str) + "\n", encoding="utf-8")
    return out
