"""Volunteer cards: a static HTML report of the advice that opens from disk in any browser.

``index.html`` lists every volunteer (search box; click a column to sort) with their votes, mean accuracy and
recommendations, and links to one page per volunteer (``volunteers/<pseudonym>.html``, for the ``max_pages`` most
active volunteers): per question, their confusion beside the population's as heatmaps, their accuracy with its
interval, their learning curve (approximated from start, plateau and rate, for learning-curve fits), the advice and
the worked examples with thumbnails. The heatmaps and curves are inline SVG written as text (hover a cell for its
meaning): a project's thousands of pages cost no plotting. Everything shown is escaped; names are the pseudonyms
unless names were kept.
"""

from __future__ import annotations

import functools
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from annostat.guidance.evidence import FitTables

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
table{border-collapse:collapse}th,td{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left}
th{cursor:pointer;background:#f4f4f4}td.num{text-align:right}
.rec{font-weight:600}.examples img{width:96px;height:96px;margin:.2em;image-rendering:pixelated}
.card{border:1px solid #ccc;border-radius:6px;padding:1em;margin:1em 0}.caption{font-size:.8em;color:#555;margin:0}
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


@functools.cache
def _blues() -> list[str]:
    """matplotlib's ``Blues`` scale as its 256 ``#rrggbb`` colours (looked up once)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    scale = colormaps["Blues"]
    return [to_hex(scale(i)) for i in range(scale.N)]


def _blue(value: float) -> str:
    """The colour of a probability on matplotlib's ``Blues`` scale (as the cards' heatmaps always were)."""
    table = _blues()
    return table[int(np.clip(value, 0.0, 1.0) * (len(table) - 1) + 0.5)]


def _heatmap_svg(mine: np.ndarray, population: np.ndarray, answers: list[str], title: str) -> str:
    """The volunteer's confusion matrix beside the population's, as inline SVG (rows: true answer, columns: answer
    given, each cell its probability). Written as text: a page of many questions costs no plotting."""
    k = len(answers)
    cell, label = 34, max(7 * max(len(a) for a in answers), 40)
    width = label + k * cell
    panels = []
    for offset, matrix, name in ((0, mine, "you"), (width + 24, population, "most volunteers")):
        cells = []
        for (i, j), value in np.ndenumerate(np.asarray(matrix, dtype=float)):
            x, y = offset + label + j * cell, 18 + i * cell
            ink = "#fff" if value > 0.5 else "#000"
            cells.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{_blue(value)}"><title>true '
                f"{_e(answers[i])}, answered {_e(answers[j])}: {value:.2f}</title></rect>"
                f'<text x="{x + cell / 2}" y="{y + cell / 2 + 3}" fill="{ink}" text-anchor="middle">{value:.2f}</text>'
            )
        rows = "".join(
            f'<text x="{offset + label - 4}" y="{18 + i * cell + cell / 2 + 3}" text-anchor="end">{_e(a)}</text>'
            for i, a in enumerate(answers)
        )
        columns = "".join(
            f'<text x="{offset + label + j * cell + cell / 2}" y="{18 + k * cell + 10}" text-anchor="end" '
            f'transform="rotate(-45 {offset + label + j * cell + cell / 2} {18 + k * cell + 10})">{_e(a)}</text>'
            for j, a in enumerate(answers)
        )
        head = f'<text x="{offset + label + k * cell / 2}" y="12" text-anchor="middle">{name}</text>'
        panels.append(head + "".join(cells) + rows + columns)
    height = 18 + k * cell + label + 8
    return (
        f'<svg class="heatmap" xmlns="http://www.w3.org/2000/svg" width="{2 * width + 24}" height="{height}" '
        f'font-size="9" font-family="sans-serif" role="img" aria-label="confusion on {_e(title)}: rows the true '
        f'answer, columns the answer given">{"".join(panels)}</svg>'
        '<p class="caption">Rows: the true answer; columns: the answer given.</p>'
    )


def _learning_svg(row: pd.Series, n: int, title: str) -> str:
    """The volunteer's learning curve, approximated from the fit's start, plateau and rate (logit-linear in
    1 - exp(-rate e)), with their experience marked, as inline SVG."""

    def logit(p: float) -> float:
        p = float(np.clip(p, 1e-4, 1 - 1e-4))
        return float(np.log(p / (1 - p)))

    e = np.linspace(0, max(2 * n, 50), 60)
    z = logit(row["start"]) + (logit(row["plateau"]) - logit(row["start"])) * (1 - np.exp(-row["rate"] * e))
    curve = 1 / (1 + np.exp(-z))
    w, h, left, bottom = 300, 150, 34, 24
    x = left + (w - left - 6) * e / e[-1]
    y = 6 + (h - bottom - 6) * (1 - curve)
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(x, y, strict=True))
    now = left + (w - left - 6) * min(n / e[-1], 1.0)
    return (
        f'<svg class="learning" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-size="9" '
        f'font-family="sans-serif" role="img" aria-label="learning curve on {_e(title)} (approximate)">'
        f'<line x1="{left}" y1="{h - bottom}" x2="{w - 6}" y2="{h - bottom}" stroke="#888"/>'
        f'<line x1="{left}" y1="6" x2="{left}" y2="{h - bottom}" stroke="#888"/>'
        f'<text x="{left - 3}" y="10" text-anchor="end">1</text>'
        f'<text x="{left - 3}" y="{h - bottom}" text-anchor="end">0</text>'
        f'<polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>'
        f'<line x1="{now:.1f}" y1="6" x2="{now:.1f}" y2="{h - bottom}" stroke="#888" stroke-dasharray="2,2"/>'
        f'<text x="{now:.1f}" y="16" fill="#666"> now ({n})</text>'
        f'<text x="{(left + w) / 2}" y="{h - 6}" text-anchor="middle">answers given to this question</text>'
        f'<text x="10" y="{(h - bottom) / 2}" transform="rotate(-90 10 {(h - bottom) / 2})" '
        f'text-anchor="middle">accuracy</text></svg>'
    )


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
                figure = _heatmap_svg(ev.mean_confusion[v], ev.population, ev.answers, r.question)
            learning = fit.volunteers[
                (fit.volunteers["volunteer"] == original) & (fit.volunteers["question"] == r.question)
            ]
            if {"start", "plateau", "rate"} <= set(learning.columns) and len(learning):
                figure += _learning_svg(learning.iloc[0], int(r.n), r.question)
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
