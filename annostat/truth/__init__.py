"""Simulated ground truth: truth sets, the one place that turns galaxy parameters into true answers, the stand-in
renderer, the FIRE-2 adapter and the volunteer simulator whose votes go back through the readers as real exports do.

- ``truthset.py``: the truth-set format (manifest, truth table, images) and its checked loader;
- ``answers.py``: galaxy parameters to true Galaxy Zoo answers, and which questions a true path asks;
- ``standin.py``: analytic stand-in galaxies rendered in JAX;
- ``fire.py``: FIRE-2 star particles to mock images and truth quantities;
- ``simulate.py``: simulated volunteers walking the decision tree; ``export.py``: their Panoptes export.
"""
