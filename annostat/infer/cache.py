"""XLA's compilation cache on disk, so that a second run of a command on data of similar size skips compilation."""

from __future__ import annotations

import os
from pathlib import Path


def use_compilation_cache() -> None:
    """Keep XLA's compiled EM kernels on disk between runs of the command (each run is a fresh process).

    ``ANNOSTAT_CACHE_DIR`` chooses the folder (default ``~/.cache/annostat/xla``); set it empty to switch off.
    """
    folder = os.environ.get("ANNOSTAT_CACHE_DIR", str(Path.home() / ".cache" / "annostat" / "xla"))
    if not folder:
        return
    import jax

    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # NumPyro set-up: hundreds of small ops
    except (OSError, AttributeError, ValueError):  # an unwritable home or an older JAX: compile as usual
        pass
