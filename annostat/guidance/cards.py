"""Volunteer cards: a static HTML report of the advice that opens from disk in any browser.

``index.html`` lists every volunteer (search box; click a column to sort) with their votes, mean accuracy and
recommendations, and links to one page per volunteer (``volunteers/<pseudonym>.html``, for the ``max_pages`` most
active volunteers): per question, their confusion beside the population's as heatmaps, their accuracy with its
interval, their learning curve (approximated from start, plateau and rate, for learning-curve fits), the advice and
the worked examples with thumbnails. Everything shown is escaped; names are the pseudonyms unless names were kept.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from annostat.figures import pyplot, save
from annostat.files import safe_file_name

if TYPE_CHECKING:
    from annostat.guidance.evidence import FitTables

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
table{border-collapse:collapse}th,td{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left}
th{cursor:pointer;background:#f4f4f4}td.num{text-align:right}
.rec{font-weight:600}.examples img{width:96px;height:96px;margin:.2em;image-rendering:pixelated}
.card{border:1px solid #ccc;border-radius:6px;padding:1em;margin:1em 0}
"""
_SCRIPT = """
function filterRows(){const q=document.getElementById('search').value.toLowerCase();
 for(const r of document.querySelectorAll('#volunteers tbody tr')){r.style.display=r.textContent.toLowerCase().includes(q)?'':'none';}}
function sortBy(i){const t=document.querySelector('#volunteers tbody');const rows=[...t.rows];
 const dir=t.dataset.col==i&&t.dataset.dir=='asc'?'desc':'asc';t.dataset.col=i;t.dataset.dir=dir;
 rows.sort((a,b)=>{const x=a.cells[i].dataset.v??a.cells[i].textContent,y=b.cells[i].dataset.v??b.cells[i].textContent;
  const nx=parseFloat(x),ny=parseFloat(y);const c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return dir=='asc'?c:-c;});
 rows.forEach(r=>t.appendChild(r));}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value))


def _heatmap(path: Path, mine: np.ndarray, population: np.ndarray, answers: list[str], title: str) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.0), sharey=True)
    for ax, matrix, name in ((axes[0], mine, "you"), (axes[1], population, "most volunteers")):
        ax.imshow(matrix, vmin=0, vmax=1, cmap="Blues")
        for (k, j), value in np.ndenumerate(matrix):
            ax.text(
                j, k, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value > 0.5 else "black"
            )
        ax.set_xticks(range(len(answers)), answers, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(answers)), answers, fontsize=7)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("answer given", fontsize=7)
    axes[0].set_ylabel("true answer", fontsize=7)
    fig.suptitle(title, fontsize=9)
    save(fig, path, dpi=80)


def _learning_plot(path: Path, row: pd.Series, n: int, title: str) -> None:
    """The volunteer's learning curve, approximated from the fit's start, plateau and rate (logit-linear in
    1 - exp(-rate e)), with their experience marked."""
    plt = pyplot()
    logit = lambda p: np.log(np.clip(p, 1e-4, 1 - 1e-4) / (1 - np.clip(p, 1e-4, 1 - 1e-4)))
    e = np.linspace(0, max(2 * n, 50), 200)
    curve = 1 / (
        1
        + np.exp(
            -(logit(row["start"]) + (logit(row["plateau"]) - logit(row["start"])) * (1 - np.exp(-row["rate"] * e)))
        )
    )
    fig, ax = plt.subplots(figsize=(4.2, 2.6))
    ax.plot(e, curve)
    ax.axvline(n, color="grey", ls=":", lw=1)
    ax.text(n, ax.get_ylim()[0], " now", fontsize=7, color="grey", va="bottom")
    ax.set_xlabel("answers given to this question", fontsize=7)
    ax.set_ylabel("accuracy", fontsize=7)
    ax.set_title(f"{title}: learning curve (approximate)", fontsize=8)
    save(fig, path, dpi=80)


def write_cards(
    out: Path,
    fit: FitTables,
    advice: pd.DataFrame,
    examples: pd.DataFrame,
    project: pd.DataFrame,
    evidence: dict,
    shown: dict[str, str],
    files: dict[str, str],
    max_pages: int = 500,
) -> int:
    """Write ``index.html`` and the volunteer pages; returns the number of pages written."""
    pages = out / "volunteers"
    pages.mkdir(parents=True, exist_ok=True)
    figures = out / "figures"
    figures.mkdir(exist_ok=True)
    by_shown = {v: k for k, v in shown.items()}
    totals = advice.groupby("volunteer").agg(
        n=("n", "sum"),
        accuracy=("accuracy", "mean"),
        recommendations=("recommendation", lambda r: "; ".join(sorted(set(r)))),
    )
    totals = totals.sort_values("n", ascending=False)
    with_page = set(totals.index[:max_pages])
    rows = []
    for volunteer, t in totals.iterrows():
        name = _e(volunteer)
        link = (
            f'<a href="volunteers/{_e(files[by_shown[volunteer]])}.html">{name}</a>' if volunteer in with_page else name
        )
        rows.append(
            f'<tr><td>{link}</td><td class="num" data-v="{int(t["n"])}">{int(t["n"]):,}</td>'
            f'<td class="num" data-v="{t["accuracy"]:.4f}">{t["accuracy"]:.2f}</td>'
            f"<td>{_e(t['recommendations'])}</td></tr>"
        )
    top = project.head(10)
    project_rows = "".join(
        f"<tr><td>{_e(r.question)}</td><td>{_e(r.true_answer)}</td><td>{_e(r.answer)}</td>"
        f'<td class="num">{r.expected_wrong_votes:,.0f}</td><td class="num">{r.share_of_errors:.0%}</td>'
        f'<td class="num">{r.volunteers_named}</td><td class="num">{r.information_gain_bits_per_vote:.4f}</td></tr>'
        for r in top.itertuples()
    )
    index = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Volunteer cards</title>
<style>{_STYLE}</style><script>{_SCRIPT}</script></head><body>
<h1>Volunteer cards</h1>
<p>Model: {_e(fit.model)}. {len(totals):,} volunteers; pages for the {len(with_page):,} most active.</p>
<h2>Confusions that cost the catalogue most</h2>
<table id="project"><thead><tr><th>question</th><th>true answer</th><th>answered</th><th>expected wrong votes</th>
<th>share of errors</th><th>volunteers named</th><th>bits per vote if fixed</th></tr></thead><tbody>{project_rows}</tbody>
</table>
<h2>Volunteers</h2>
<input id="search" placeholder="search" oninput="filterRows()">
<table id="volunteers"><thead><tr><th onclick="sortBy(0)">volunteer</th><th onclick="sortBy(1)">votes</th>
<th onclick="sortBy(2)">mean accuracy</th><th onclick="sortBy(3)">recommendations</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table></body></html>"""
    (out / "index.html").write_text(index, encoding="utf-8")

    written = 0
    for volunteer in totals.index[:max_pages]:
        original = by_shown[volunteer]
        stem = files[original]
        sections = []
        for r in advice[advice["volunteer"] == volunteer].itertuples():
            ev = evidence[r.question]
            figure = ""
            if original in ev.volunteers:
                v = ev.volunteers.index(original)
                fig_name = f"{stem}--{safe_file_name(r.question)}.png"
                _heatmap(figures / fig_name, ev.mean_confusion[v], ev.population, ev.answers, r.question)
                figure = f'<img src="../figures/{_e(fig_name)}" alt="confusion on {_e(r.question)}">'
            learning = fit.volunteers[
                (fit.volunteers["volunteer"] == original) & (fit.volunteers["question"] == r.question)
            ]
            if {"start", "plateau", "rate"} <= set(learning.columns) and len(learning):
                curve_name = f"{stem}--{safe_file_name(r.question)}-learning.png"
                _learning_plot(figures / curve_name, learning.iloc[0], int(r.n), r.question)
                figure += f'<img src="../figures/{_e(curve_name)}" alt="learning curve on {_e(r.question)}">'
            mine = (
                examples[(examples["volunteer"] == volunteer) & (examples["question"] == r.question)]
                if len(examples)
                else examples
            )
            pictures = "".join(
                (
                    f'<figure><img src="../{_e(e.thumbnail)}" alt="subject {_e(e.subject)}">'
                    if isinstance(e.thumbnail, str)
                    else "<figure>"
                )
                + f"<figcaption>{_e(e.subject)} (consensus {e.consensus_p:.2f})</figcaption></figure>"
                for e in mine.itertuples()
            )
            trend = f" Trend: {_e(r.trend)}." if r.trend else ""
            sections.append(f"""<div class="card"><h2>{_e(r.question)}</h2>
<p>{r.n:,} votes; accuracy {r.accuracy:.2f} (90% interval {r.accuracy_lo:.2f}-{r.accuracy_hi:.2f}, {_e(r.interval)});
percentile {_e("" if pd.isna(r.percentile) else f"{r.percentile:.0f}")}.{trend}</p>
<p class="rec">{_e(r.recommendation)}</p><p>{_e(r.advice)}</p>{figure}
<div class="examples">{pictures}</div></div>""")
        page = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(volunteer)}</title>
<style>{_STYLE}</style></head><body><p><a href="../index.html">all volunteers</a></p>
<h1>{_e(volunteer)}</h1>{"".join(sections)}</body></html>"""
        (pages / f"{stem}.html").write_text(page, encoding="utf-8")
        written += 1
    return written
