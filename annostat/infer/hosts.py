"""Many hosts: one process per machine, each with its share of the subjects, reduced through JAX's collectives.

A fit over ``N`` processes (``annostat fit ... --coordinator HOST:PORT --num-processes N --process-id I``, or under
SLURM with no flags) goes like this:

1. :func:`start` joins the processes (``jax.distributed.initialize``); afterwards ``jax.devices()`` lists every
   process's devices and one device mesh (``annostat.infer.sharding``) spans them all.
2. Each process reads only the votes on its subjects (``Votes.read(path, share=(I, N))``: a seeded hash of the
   subject deals every subject, with all its votes, to one process).
3. :func:`agree` gives the shares one vocabulary: volunteers, questions and answers are coded as the whole table
   would code them (sorted labels: the union of the shares' labels), subjects stay each process's own.
4. The model fits as on one machine: EM's expected counts (Dawid-Skene) are summed over every device of every
   process by ``psum`` inside ``shard_map``, so every process holds the same confusions and priors; per-question
   volunteer lists and padded sizes are agreed with :func:`union_codes` and :func:`agree_max`.
5. :func:`gather` brings the shares' votes and posteriors to process 0, which builds the fit the whole table
   would have given (subjects in the whole table's code order, votes per volunteer summed, rows accounted for
   across the shares) and writes the fit folder.

Everything processes exchange goes through JAX's own collectives (``multihost_utils.process_allgather`` of bytes;
on CPU, gloo over TCP), so the same code runs on one machine's processes (the tests) and on a cluster. With one
process every function here is the identity (or its single-process equivalent).

Example (one process: nothing to agree):
    >>> import numpy as np
    >>> union_codes(np.array([4, 1, 4]))
    array([1, 4], dtype=int32)
    >>> agree_max(3, 7)
    (3, 7)
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import jax
import numpy as np
import polars as pl

if TYPE_CHECKING:
    from annostat.data.votes import Votes
    from annostat.fit import Fit

#: the largest message of one all-gather (bytes a process); longer payloads go in parts
PART_BYTES = 1 << 28


def requested(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None) -> int:
    """How many processes these flags (or SLURM's environment, with none) ask for, without joining them; raises
    ``ValueError`` for flags that do not go together."""
    given = [coordinator is not None, num_processes is not None, process_id is not None]
    if any(given) and not all(given):
        raise ValueError(
            "--coordinator, --num-processes and --process-id go together: give all three (or none under SLURM)"
        )
    if coordinator is not None and num_processes is not None and process_id is not None:
        host, _, port = coordinator.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"--coordinator {coordinator}: expected HOST:PORT (e.g. node001:12345)")
        if num_processes < 1 or not 0 <= process_id < num_processes:
            raise ValueError(
                f"--process-id {process_id} of --num-processes {num_processes}: the id runs from 0 to "
                f"{num_processes - 1}"
            )
        return int(num_processes)
    # under srun, the tasks of this job step (a batch script itself is one task: SLURM_NTASKS alone is not enough)
    return max(int(os.environ.get("SLURM_STEP_NUM_TASKS", "1") or 1), 1) if "SLURM_JOB_ID" in os.environ else 1


def start(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None) -> int:
    """Join the processes of a multi-host fit; returns how many there are (1: nothing to join).

    With ``coordinator`` (``HOST:PORT`` of process 0), ``num_processes`` and ``process_id``, exactly those; with none
    of them under SLURM, ``jax.distributed.initialize()`` reads them from SLURM's
    environment (a job step of several tasks, ``srun``); otherwise one process. Must come before anything else uses
    JAX."""
    n = requested(coordinator, num_processes, process_id)
    if n == 1:
        return 1
    if coordinator is not None:
        if process_id == 0:  # process 0 listens there: say why it cannot in one line, not in XLA's abort
            _can_listen(coordinator)
        jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id)
    else:  # SLURM: its environment says who is who
        jax.distributed.initialize()
    return jax.process_count()


def _can_listen(coordinator: str) -> None:
    import socket

    host, _, port = coordinator.rpartition(":")
    try:
        with socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host.strip("[]"), int(port)))
    except OSError as exc:
        raise RuntimeError(f"process 0 cannot listen there: {exc.strerror or exc}") from exc


def count() -> int:
    """The processes of this fit (1 without :func:`start`)."""
    return jax.process_count()


def index() -> int:
    """This process's place among them (0 writes the fit folder)."""
    return jax.process_index()


def allgather_bytes(payload: bytes) -> list[bytes]:
    """Every process's ``payload``, in process order (the same list in every process)."""
    if count() == 1:
        return [payload]
    from jax.experimental import multihost_utils

    lengths = multihost_utils.process_allgather(np.frombuffer(len(payload).to_bytes(8, "little"), np.uint8))
    lengths = [int.from_bytes(np.asarray(row, np.uint8).tobytes(), "little") for row in lengths]
    parts: list[list[bytes]] = [[] for _ in lengths]
    for start_at in range(0, max(max(lengths), 1), PART_BYTES):
        size = min(PART_BYTES, max(max(lengths) - start_at, 0))
        chunk = np.zeros(size, np.uint8)
        mine = payload[start_at : start_at + size]
        chunk[: len(mine)] = np.frombuffer(mine, np.uint8)
        gathered = np.asarray(multihost_utils.process_allgather(chunk))
        for p, n in enumerate(lengths):
            parts[p].append(gathered[p, : max(min(size, n - start_at), 0)].tobytes())
    return [b"".join(p) for p in parts]


def allgather_frames(frame: pl.DataFrame) -> list[pl.DataFrame]:
    """Every process's table (Arrow IPC over :func:`allgather_bytes`), in process order."""
    if count() == 1:
        return [frame]
    buffer = io.BytesIO()
    frame.write_ipc(buffer)
    return [pl.read_ipc(io.BytesIO(b)) for b in allgather_bytes(buffer.getvalue())]


def agree_max(*values: int) -> tuple[int, ...]:
    """The largest of each value over the processes (padded sizes every shard must share)."""
    if count() == 1:
        return tuple(int(v) for v in values)
    frames = allgather_frames(pl.DataFrame({"v": np.asarray(values, np.int64)}))
    return tuple(int(v) for v in np.max(np.stack([f["v"].to_numpy() for f in frames]), axis=0))


def union_codes(codes: np.ndarray) -> np.ndarray:
    """The sorted union over the processes of integer ``codes`` (int32): e.g. the volunteers who answered a question
    anywhere, so that every process numbers them alike."""
    mine = np.unique(np.asarray(codes)).astype(np.int32)
    if count() == 1:
        return mine
    return np.unique(np.concatenate([f["c"].to_numpy() for f in allgather_frames(pl.DataFrame({"c": mine}))])).astype(
        np.int32
    )


def sum_over_processes(values: np.ndarray) -> np.ndarray:
    """Element-wise sum over the processes of an integer array of one shape everywhere (votes per volunteer)."""
    if count() == 1:
        return values
    frames = allgather_frames(pl.DataFrame({"v": np.asarray(values, np.int64).ravel()}))
    return np.sum([f["v"].to_numpy() for f in frames], axis=0).reshape(np.shape(values))


def _positions(labels: pl.Series, vocabulary: pl.Series) -> np.ndarray:
    """Each of ``labels``'s position in ``vocabulary`` (every label is in it: the union of the shares'), int32."""
    from annostat.data.votes import positions_in

    return positions_in(labels, vocabulary).astype(np.int32)


def _sorted_union(series: Sequence[pl.Series], name: str) -> pl.Series:
    non_empty = [s for s in series if len(s)]
    if not non_empty:
        return series[0].rename(name)
    dtype = non_empty[0].dtype
    return pl.concat([s.cast(dtype) for s in non_empty]).unique().sort().rename(name)


def agree(votes: Votes) -> Votes:
    """``votes`` (this process's share) coded with the vocabularies of the whole table: volunteers and questions
    the sorted union of every share's labels; each question's answers the union too (sorted), or the answer set
    every share holding the question gives alike (an answer set given in that order). Subjects stay this share's;
    the codes' order is kept (the maps are increasing), so the table stays sorted by question, subject, row."""
    from annostat.data.votes import Votes

    if count() == 1:
        return votes
    mine = pl.DataFrame(
        {
            "kind": ["volunteer"] * votes.n_volunteers + ["question"] * votes.n_questions,
            "label": pl.concat([votes.volunteers.cast(pl.String), votes.questions.cast(pl.String)])
            if votes.n_volunteers + votes.n_questions
            else pl.Series([], dtype=pl.String),
        }
    )
    shares = allgather_frames(mine)
    # labels are exchanged as text; the vocabularies keep this share's types, cast back (every share read the
    # same file, so the same types) and sorted as the whole table's would be
    volunteer_dtype, question_dtype = votes.volunteers.dtype, votes.questions.dtype
    volunteers = _sorted_union(
        [s.filter(pl.col("kind") == "volunteer")["label"].cast(volunteer_dtype) for s in shares], "volunteer"
    )
    questions = _sorted_union(
        [s.filter(pl.col("kind") == "question")["label"].cast(question_dtype) for s in shares], "question"
    )
    answer_dtype = votes.answers[0].dtype if votes.answers else pl.String
    my_sets = pl.DataFrame(
        {
            "question": pl.concat(
                [
                    pl.Series([str(q)] * len(a), dtype=pl.String)
                    for q, a in zip(votes.questions.to_list(), votes.answers)
                ]
            )
            if votes.answers
            else pl.Series([], dtype=pl.String),
            "answer": pl.concat([a.cast(pl.String) for a in votes.answers])
            if votes.answers
            else pl.Series([], dtype=pl.String),
        }
    )
    sets_by_share = allgather_frames(my_sets)
    answers = []
    for q in questions.cast(pl.String).to_list():
        held = [s.filter(pl.col("question") == q)["answer"] for s in sets_by_share]
        held = [h for h in held if len(h)]
        if all(h.to_list() == held[0].to_list() for h in held):
            answers.append(held[0].cast(answer_dtype).rename("answer"))
        else:
            answers.append(_sorted_union([h.cast(answer_dtype) for h in held], "answer"))

    volunteer_map = _positions(votes.volunteers, volunteers)
    question_map = _positions(votes.questions, questions)
    codes = {c: votes.codes(c) for c in ("subject", "volunteer", "question", "answer", "row")}
    answer = codes["answer"].copy()
    for q in range(votes.n_questions):
        part = votes.question_slice(q)
        answer[part] = _positions(votes.answers[q], answers[question_map[q]])[answer[part]]
    codes.update(
        volunteer=volunteer_map[codes["volunteer"]] if len(codes["volunteer"]) else codes["volunteer"],
        question=question_map[codes["question"]] if len(codes["question"]) else codes["question"],
        answer=answer,
    )
    return Votes(
        codes,
        votes.subjects,
        volunteers,
        questions,
        answers,
        votes.report,
        votes.columns,
        time=votes._time,
        provenance=votes.provenance,
        subject_table=votes.subject_table,
    )


def gather(fit: Fit) -> Fit | None:
    """On process 0, the fit the whole table gives, from every process's fit of its share (``fit``, coded by
    :func:`agree`); ``None`` on the other processes. Votes and posteriors travel once, to everyone (an
    all-gather); only process 0 keeps them."""
    from annostat.data.votes import RowReport, Votes
    from annostat.fit import Fit

    if count() == 1:
        return fit
    votes = fit.votes
    frame = pl.DataFrame({c: votes.codes(c) for c in ("subject", "volunteer", "question", "answer", "row")})
    if votes._time is not None:
        frame = frame.with_columns(votes._time.alias("time"))
    shares = allgather_frames(frame)
    labels = allgather_frames(pl.DataFrame({"subject": votes.subjects}))
    posteriors = [
        allgather_frames(
            pl.DataFrame({"subject": qf.subjects.astype(np.int32)}).hstack(
                pl.DataFrame(qf.posteriors.astype(np.float32), schema=[f"p{k}" for k in range(qf.posteriors.shape[1])])
            )
        )
        for qf in fit.questions
    ]
    reports = [RowReport(**r) for r in _allgather_json(dataclasses.asdict(votes.report))]
    n_votes = [sum_over_processes(qf.n_votes) for qf in fit.questions]
    if index() != 0:
        return None

    # subjects: the shares' labels (disjoint) in sorted order, as the whole table codes them
    all_labels = (
        pl.concat([f["subject"] for f in labels if len(f)]) if any(len(f) for f in labels) else labels[0]["subject"]
    )
    order = all_labels.arg_sort().to_numpy()
    code_of = np.empty(len(all_labels), np.int32)
    code_of[order] = np.arange(len(all_labels), dtype=np.int32)
    offsets = np.cumsum([0] + [len(f) for f in labels])
    subject_labels = all_labels.gather(order)

    coded = {c: np.concatenate([s[c].to_numpy() for s in shares]) for c in ("volunteer", "question", "answer", "row")}
    coded["subject"] = np.concatenate([code_of[offsets[p] + s["subject"].to_numpy()] for p, s in enumerate(shares)])
    time = pl.concat([s["time"] for s in shares]) if "time" in shares[0].columns else None
    merged = Votes.from_codes(
        subject=coded["subject"],
        volunteer=coded["volunteer"],
        question=coded["question"],
        answer=coded["answer"],
        row=coded["row"],
        time=time,
        subjects=subject_labels,
        volunteers=votes.volunteers,
        questions=votes.questions,
        answers=votes.answers,
        duplicates="all",
        columns=votes.columns,
        source=votes.report.source,
        provenance={**votes.provenance, "processes": count()},
        subject_table=votes.subject_table,
    )
    merged.report = _combined(reports)

    for qf, n, frames in zip(fit.questions, n_votes, posteriors):
        subjects = np.concatenate([code_of[offsets[p] + f["subject"].to_numpy()] for p, f in enumerate(frames)])
        p = np.concatenate([f.drop("subject").to_numpy() for f in frames])
        ranked = np.argsort(subjects, kind="stable")
        qf.subjects, qf.posteriors, qf.n_votes = subjects[ranked], p[ranked].astype(qf.posteriors.dtype), n
    return Fit(merged, fit.model, fit.settings, fit.questions, fit.seconds)


def _allgather_json(value: dict) -> list[dict]:
    return [json.loads(b) for b in allgather_bytes(json.dumps(value).encode())]


def _combined(reports):
    """The row report of the whole table from its shares' (every row is in exactly one share)."""
    from annostat.data.votes import RowReport

    dropped: dict[str, int] = {}
    for r in reports:
        for reason, n in r.dropped.items():
            dropped[reason] = dropped.get(reason, 0) + n
    return RowReport(
        source=reports[0].source,
        rows_read=sum(r.rows_read for r in reports),
        rows_kept=sum(r.rows_kept for r in reports),
        dropped=dropped,
        duplicate_policy=reports[0].duplicate_policy,
        duplicates=sum(r.duplicates for r in reports),
        missing_time=sum(r.missing_time for r in reports),
    )
