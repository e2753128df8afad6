import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annostat import InputError, Votes


def frame(**cols):
    return pd.DataFrame(cols)


def test_codes_and_label_maps_both_ways():
    df = frame(
        subject=["g2", "g1", "g1", "g3"],
        volunteer=["b", "a", "b", "a"],
        question=["bar", "bar", "smooth", "smooth"],
        answer=["no", "weak", "featured", "smooth"],
    )
    votes = Votes.from_frame(df)
    assert votes.subjects.to_list() == ["g1", "g2", "g3"]
    assert votes.volunteers.to_list() == ["a", "b"]
    assert votes.questions.to_list() == ["bar", "smooth"]
    assert [a.to_list() for a in votes.answers] == [["no", "weak"], ["featured", "smooth"]]
    assert votes.question_code("smooth") == 1
    assert votes.codes_of("subject", ["g3", "g1", "nope"]).tolist() == [2, 0, -1]
    assert votes.labels_of("volunteer", [1, 0]).to_list() == ["b", "a"]
    assert votes.codes_of("answer", ["smooth", "featured"], question=1).tolist() == [1, 0]
    assert votes.labels_of("answer", [1], question=0).to_list() == ["weak"]
    back = votes.to_frame().sort("row")
    assert back["subject"].to_list() == df["subject"].tolist()
    assert back["answer"].to_list() == df["answer"].tolist()
    assert back["question"].to_list() == df["question"].tolist()
    # table sorted by question then subject, so each question's votes are one contiguous, subject-sorted block
    for q in range(votes.n_questions):
        s, _, _ = votes.arrays(q)
        assert np.all(np.diff(s) >= 0)


def test_pandas_polars_csv_parquet_agree(tmp_path, small_sim):
    df = small_sim.votes
    a = Votes.from_frame(df)
    b = Votes.from_frame(pl.from_pandas(df))
    df.to_csv(tmp_path / "v.csv", index=False)
    df.to_parquet(tmp_path / "v.parquet")
    c = Votes.read(tmp_path / "v.csv")
    d = Votes.read(tmp_path / "v.parquet")
    for other in (b, c, d):
        cols = ["subject", "volunteer", "question", "answer", "row", "experience", "experience_question"]
        assert other.table.select(cols).equals(a.table.select(cols))
        assert other.subjects.to_list() == a.subjects.to_list()


def test_csv_ids_keep_their_original_values(tmp_path):
    (tmp_path / "v.csv").write_text("subject,volunteer,answer\n0012,7,1\n12,7,2\n0012,8,1\n")
    votes = Votes.read(tmp_path / "v.csv")
    assert votes.subjects.to_list() == ["0012", "12"]  # text: 0012 and 12 are different subjects
    assert votes.volunteers.dtype == pl.Int64 and votes.volunteers.to_list() == [7, 8]
    assert votes.answers[0].to_list() == [1, 2]


def test_one_question_when_no_question_column_and_subject_named_question():
    df = frame(question=[1, 1, 2], worker=["a", "b", "a"], answer=[0, 1, 1])
    votes = Votes.from_frame(df, subject="question", volunteer="worker")
    assert votes.n_questions == 1 and votes.questions.to_list() == ["answer"]
    assert votes.n_subjects == 2


def test_experience_in_time_order_overall_and_per_question():
    df = frame(
        subject=[1, 2, 3, 4, 5, 6],
        volunteer=["a", "a", "a", "b", "a", "a"],
        question=["q1", "q2", "q1", "q1", "q1", "q2"],
        answer=[0, 1, 0, 1, 1, 0],
        created_at=[
            "2018-02-20 10:00:03 UTC",
            "2018-02-20 10:00:01 UTC",
            "2018-02-20 10:00:02 UTC",
            "2018-02-20 10:00:00 UTC",
            "2018-02-20 10:00:02 UTC",
            "2018-02-21 09:00:00 UTC",
        ],
    )
    t = Votes.from_frame(df).table.sort("row")
    # volunteer a in time order: row1 (q2), row2 (q1), row4 (q1, same time as row2: file order), row0 (q1), row5 (q2)
    assert t["experience"].to_list() == [3, 0, 1, 0, 2, 4]
    assert t["experience_question"].to_list() == [2, 0, 0, 0, 1, 1]


def test_experience_follows_file_order_without_time():
    df = frame(subject=[3, 1, 2], volunteer=["a", "a", "a"], answer=[0, 1, 0])
    t = Votes.from_frame(df).table.sort("row")
    assert t["experience"].to_list() == [0, 1, 2]


def test_missing_values_are_counted_not_silently_dropped():
    df = frame(subject=[1, None, 3, 4, 5], volunteer=["a", "b", None, "d", "e"], answer=["x", "y", "x", None, ""])
    votes = Votes.from_frame(df)
    r = votes.report
    assert r.rows_read == 5 and r.rows_kept == 1
    assert r.dropped == {"missing subject": 1, "missing volunteer": 1, "missing answer": 2}
    assert r.rows_read == r.rows_kept + r.rows_dropped
    assert "missing answer" in r.summary()


@pytest.mark.parametrize("policy,kept_answer,dropped", [("first", "x", 1), ("last", "y", 1), ("all", None, 0)])
def test_duplicate_policy(policy, kept_answer, dropped):
    df = frame(subject=[1, 1, 2], volunteer=["a", "a", "a"], answer=["x", "y", "x"], created_at=[1.0, 2.0, 3.0])
    votes = Votes.from_frame(df, duplicates=policy)
    assert votes.report.duplicates == 1
    assert votes.report.rows_dropped == dropped
    assert votes.n_votes == 3 - dropped
    if kept_answer:
        out = votes.to_frame().filter(pl.col("subject") == 1)
        assert out["answer"].to_list() == [kept_answer]


def test_given_answer_sets_code_in_order_and_drop_outsiders():
    df = frame(subject=[1, 2, 3], volunteer=["a", "b", "c"], answer=["smooth", "featured", "star"])
    votes = Votes.from_frame(df, answers=["smooth", "featured", "artifact"])
    assert votes.answers[0].to_list() == ["smooth", "featured", "artifact"]
    assert votes.n_answers == [3]
    assert votes.report.dropped == {"answer not in its question's answer set": 1}


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"answer": "label"}, "no answer column 'label'; the columns are"),
        ({"question": "task"}, "no question column 'task'"),
        ({"time": "when"}, "no time column 'when'"),
        ({"subject": "volunteer"}, "given both as the subject and as the volunteer column"),
        ({"duplicates": "some"}, "duplicate policy 'some'"),
    ],
)
def test_bad_columns_and_options_name_the_problem(kwargs, message):
    df = frame(subject=[1], volunteer=["a"], answer=[0])
    with pytest.raises(InputError, match=message):
        Votes.from_frame(df, source="votes.csv", **kwargs)


def test_unreadable_time_names_row_and_column():
    df = frame(subject=[1, 2], volunteer=["a", "b"], answer=[0, 1], created_at=["2018-02-20 10:00:00 UTC", "soon"])
    with pytest.raises(InputError, match=r"votes.csv, row 2, column 'created_at': cannot read 'soon' as a time"):
        Votes.from_frame(df, source="votes.csv")


def test_empty_and_all_missing_tables():
    with pytest.raises(InputError, match="empty"):
        Votes.from_frame(pd.DataFrame({"subject": [], "volunteer": [], "answer": []}))
    with pytest.raises(InputError, match="no usable votes"):
        Votes.from_frame(frame(subject=[1], volunteer=["a"], answer=[None]))


def test_file_errors(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        Votes.read(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty.csv"):
        Votes.read(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("subject,volunteer,answer\n")
    with pytest.raises(InputError, match="header but no rows"):
        Votes.read(tmp_path / "header.csv")
    (tmp_path / "bad.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(InputError, match="bad.parquet: cannot be read as Parquet"):
        Votes.read(tmp_path / "bad.parquet")


votes_rows = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(0, 6)),
        st.one_of(st.none(), st.sampled_from("abcd")),
        st.sampled_from(["q1", "q2"]),
        st.one_of(st.none(), st.sampled_from(["x", "y", "z"])),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(votes_rows, st.sampled_from(["first", "last", "all"]))
def test_every_row_is_accounted_for(rows, policy):
    df = pd.DataFrame(rows, columns=["subject", "volunteer", "question", "answer"])
    complete = df.dropna()
    if complete.empty:
        with pytest.raises(InputError):
            Votes.from_frame(df, duplicates=policy)
        return
    votes = Votes.from_frame(df, duplicates=policy)
    r = votes.report
    assert r.rows_read == len(df) == r.rows_kept + r.rows_dropped
    n_repeats = int(complete.duplicated(["subject", "volunteer", "question"]).sum())
    assert r.duplicates == n_repeats
    assert r.rows_kept == len(complete) - (0 if policy == "all" else n_repeats)
    back = votes.to_frame().to_pandas()
    original = df.loc[back["row"].to_numpy()]
    assert (back["answer"].to_numpy() == original["answer"].to_numpy()).all()
    assert (back["subject"].to_numpy() == original["subject"].to_numpy()).all()
    # experience: the volunteer's earlier valid responses in file order (repeats included, whatever the policy)
    earlier = complete.groupby("volunteer").cumcount()
    assert (back["experience"].to_numpy() == earlier.loc[back["row"].to_numpy()].to_numpy()).all()


def test_categorical_columns_are_read_as_their_labels():
    plain = pd.DataFrame(
        {
            "subject": [3, 1, 1, 2],
            "volunteer": ["b", "a", "b", "a"],
            "question": ["q", "q", "r", "q"],
            "answer": ["yes", "no", "x", "yes"],
        }
    )
    categorical = plain.astype({"volunteer": "category", "question": "category", "answer": "category"})
    a, b = Votes.from_frame(plain), Votes.from_frame(categorical)
    assert a.table.equals(b.table) and a.to_frame().equals(b.to_frame())
    assert b.to_frame()["question"].dtype == a.to_frame()["question"].dtype


vote_rows = st.lists(
    st.tuples(
        st.integers(0, 5), st.sampled_from("abc"), st.sampled_from(["q1", "q2"]), st.sampled_from(["x", "y", "z"])
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(vote_rows, vote_rows, st.sampled_from(["first", "last", "all"]), st.booleans())
def test_extended_is_the_table_of_both(first_rows, second_rows, policy, timed):
    """Votes.extended (the last fit's codes kept, the new votes merged in, repeats by the policy) holds the votes that
    coding both tables together holds, in (question, subject, row) order."""

    def votes_of(rows, offset):
        df = frame(
            subject=[r[0] for r in rows],
            volunteer=[r[1] for r in rows],
            question=[r[2] for r in rows],
            answer=[r[3] for r in rows],
        )
        if timed:
            df["created_at"] = np.arange(len(rows), dtype=float) + offset
        return df

    a, b = votes_of(first_rows, 0), votes_of(second_rows, len(first_rows))
    last, new = Votes.from_frame(a, duplicates=policy), Votes.from_frame(b, duplicates=policy)
    combined, _offset = last.extended(new)
    whole = Votes.from_frame(pd.concat([a, b], ignore_index=True), duplicates=policy)
    columns = ["subject", "volunteer", "question", "answer"]
    assert sorted(combined.to_frame().select(columns).rows()) == sorted(whole.to_frame().select(columns).rows())
    assert combined.report.rows_kept == whole.n_votes == combined.n_votes
    assert combined.report.rows_read == last.n_votes + new.n_votes  # the two tables' votes: kept or dropped
    assert combined.report.rows_kept + combined.report.rows_dropped == combined.report.rows_read
    codes = {c: combined.codes(c) for c in ("question", "subject", "row")}
    order = np.lexsort((codes["row"], codes["subject"], codes["question"]))
    assert np.array_equal(order, np.arange(combined.n_votes))  # in (question, subject, row) order
    assert np.all(codes["row"][combined.codes("volunteer") >= 0] >= 0)
