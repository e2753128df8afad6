"""``annostat truth standin|fire`` and ``annostat simulate``: simulated galaxies and volunteers."""

from __future__ import annotations

from pathlib import Path

import typer

from annostat.cli.common import OneLineErrors, console, fail, input_errors, positive, report_truth_set, split_list
from annostat.errors import InputError

truth_app = typer.Typer(
    help="Build truth sets: simulated galaxies whose true Galaxy Zoo answers are known.", no_args_is_help=True
)


@truth_app.command("standin", cls=OneLineErrors)
def truth_standin(
    out: Path = typer.Option(..., "--out", "-o", file_okay=False, help="Folder for the truth set."),
    n: int = typer.Option(500, "--n", min=1, help="Galaxies to render."),
    size: int = typer.Option(64, min=16, max=4096, help="Image size in pixels (0.262 arcsec each)."),
    seed: int = typer.Option(0, help="Random seed of the parameters and the noise."),
    sky_sigma: float = typer.Option(0.001, min=0.0, help="Sky noise per pixel (nanomaggies)."),
) -> None:
    """Render stand-in galaxies (bulge, disc, bar, spiral arms, clumps, tidal arcs; JAX) into a truth set."""
    from annostat.truth.standin import standin_truth_set

    with input_errors():
        truth_set = standin_truth_set(out, n, size=size, seed=seed, sky_sigma=sky_sigma)
    report_truth_set(truth_set, out, f"{n:,} galaxies rendered at {size}x{size} in {', '.join(truth_set.bands)}")


@truth_app.command("fire", cls=OneLineErrors)
def truth_fire(
    snapshots: list[Path] = typer.Argument(
        ..., help="FIRE-2 snapshots: <sim>/output/snapshot_NNN.hdf5 files or snapdir_NNN folders."
    ),
    out: Path = typer.Option(..., "--out", "-o", file_okay=False, help="Folder for the truth set."),
    name: str | None = typer.Option(None, help="Simulation name (default: from the <sim>/output/ layout)."),
    views: int = typer.Option(4, min=1, help="Random orientations per snapshot."),
    inclinations: str | None = typer.Option(
        None, help="Chosen inclinations in degrees, e.g. '0,45,85' (one view each, instead of --views random ones)."
    ),
    size: int = typer.Option(128, min=16, max=4096, help="Image size in pixels."),
    redshift: float = typer.Option(
        0.05, callback=positive, help="Redshift the galaxy is placed at (angular scale, flux)."
    ),
    sky_sigma: float = typer.Option(0.002, min=0.0, help="Sky noise per pixel (nanomaggies)."),
    weight: str = typer.Option("light", help="Project 'light' (age-dependent mass-to-light) or 'mass'."),
    seed: int = typer.Option(0, help="Random seed of the views and the noise."),
) -> None:
    """Mock images and truth (inclination, bar A2, disc fraction, spirals) of FIRE-2 star particles as a truth set."""
    from annostat.truth.fire import fire_truth_set

    if weight not in ("light", "mass"):
        fail(f"--weight: {weight!r} is not 'light' or 'mass'")
    angles = None
    if inclinations is not None:
        angles = split_list(inclinations, "--inclinations", float, "angles")
        views = len(angles)
    with input_errors():
        truth_set = fire_truth_set(
            snapshots,
            out,
            views=views,
            size=size,
            redshift=redshift,
            sky_sigma=sky_sigma,
            seed=seed,
            name=name,
            weight=weight,
            inclinations=angles,
        )
    report_truth_set(
        truth_set,
        out,
        f"{len(snapshots)} snapshot(s) x {views} views = {len(truth_set.truth):,} images at {size}x{size}",
    )


def simulate(
    truthset: Path = typer.Argument(..., help="A truth set folder (annostat truth standin / fire)."),
    out: Path | None = typer.Option(
        None, "--out", "-o", file_okay=False, help="Folder for the votes (default TRUTHSET/votes)."
    ),
    volunteers: int = typer.Option(300, min=1, help="Simulated volunteers."),
    retire_after: int = typer.Option(10, min=1, help="Classifications (distinct volunteers) per subject."),
    spammers: float = typer.Option(0.03, min=0.0, max=1.0, help="Share of volunteers who always answer 'artifact'."),
    learning_gap: float = typer.Option(
        0.6, min=0.0, help="Mean logit gap between a volunteer's first vote and plateau."
    ),
    difficulty: float = typer.Option(
        0.6, min=0.0, help="Weight of image difficulty (faint, small, edge-on) on the logit."
    ),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Simulated volunteers walk the Galaxy Zoo tree on a truth set's galaxies: votes, a Panoptes export and its
    workflow, and the true volunteer parameters."""
    from annostat.truth.simulate import VolunteerPopulation
    from annostat.truth.simulate import simulate as run
    from annostat.truth.truthset import load_truth_set

    with input_errors():
        truth_set = load_truth_set(truthset, check_images=False)
        target = out or truth_set.votes_dir
        if target.exists() and not target.is_dir():
            raise InputError(f"{target}: exists and is not a folder")
    population = VolunteerPopulation(
        n_volunteers=volunteers, spammer_fraction=spammers, learning_gap=learning_gap, difficulty_weight=difficulty
    )
    sim = run(truth_set, population, retire_after=retire_after, seed=seed)
    sim.write(target)
    s = sim.settings
    console.print(
        f"{s['classifications']:,} classifications ({s['votes']:,} votes) by {volunteers:,} volunteers on "
        f"{s['subjects']:,} subjects ({s['subjects_not_retired']:,} not retired); written to {target}",
        highlight=False,
    )
