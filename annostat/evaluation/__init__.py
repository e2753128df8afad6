"""Judging fits: the benchmark harness against simulated truth (``harness.py``), its pipeline registry
(``pipelines.py``), model checks on the votes alone (``checks.py``), figures of a fit (``plots.py``) and the demo
(``demo.py``)."""
