"""Models of volunteers: one module per model, each registered under a short name (``mv``, ``ds``, ``hds``,
``learning``, ``mace``, ``mn``, ``item``, ``lre``) with what it can do (:mod:`annostat.models.registry`).

The model classes are imported when first used (``from annostat.models import DawidSkene`` or
:func:`get_model`), so that looking up a model's capabilities imports none of them.
"""

from typing import TYPE_CHECKING

from annostat.models.registry import (
    CAPABILITIES,
    REGISTRY,
    ModelSpec,
    get_model,
    model_spec,
    models_that,
    register_model,
)

_CLASSES = {
    "DawidSkene": "ds",
    "MajorityVote": "mv",
    "HierarchicalDawidSkene": "hds",
    "LearningCurve": "learning",
    "Mace": "mace",
    "PooledMultinomial": "mn",
    "ItemDifficulty": "item",
    "RandomEffects": "lre",
}


def __getattr__(name: str):
    if name in _CLASSES:
        return model_spec(_CLASSES[name]).load()
    if name == "Model":
        from annostat.models.base import Model

        return Model
    raise AttributeError(f"module 'annostat.models' has no attribute {name!r}")


if TYPE_CHECKING:  # the classes load on first use (numpyro only for the Bayesian ones); type checkers see them here
    from annostat.models.base import Model
    from annostat.models.dawid_skene import DawidSkene
    from annostat.models.hierarchical import HierarchicalDawidSkene
    from annostat.models.item_difficulty import ItemDifficulty, RandomEffects
    from annostat.models.learning import LearningCurve
    from annostat.models.mace import Mace
    from annostat.models.majority_vote import MajorityVote
    from annostat.models.pooled import PooledMultinomial

__all__ = [
    "CAPABILITIES",
    "REGISTRY",
    "DawidSkene",
    "HierarchicalDawidSkene",
    "ItemDifficulty",
    "LearningCurve",
    "Mace",
    "MajorityVote",
    "Model",
    "ModelSpec",
    "PooledMultinomial",
    "RandomEffects",
    "get_model",
    "model_spec",
    "models_that",
    "register_model",
]
