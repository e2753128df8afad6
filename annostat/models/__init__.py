"""Models of volunteers: one module per model, each registered under a short name (``mv``, ``ds``, ``hds``, ``learning``)."""

from annostat.models.base import REGISTRY, Model
from annostat.models.dawid_skene import DawidSkene
from annostat.models.hierarchical import HierarchicalDawidSkene
from annostat.models.item_difficulty import ItemDifficulty, RandomEffects
from annostat.models.learning import LearningCurve
from annostat.models.mace import Mace
from annostat.models.majority_vote import MajorityVote
from annostat.models.pooled import PooledMultinomial


def get_model(name: str, **options) -> Model:
    """The model registered as ``name`` (``mv``, ``ds``, ``hds``, ``learning``), built with ``options``."""
    try:
        cls = REGISTRY[name]
    except KeyError:
        raise KeyError(f"no model {name!r}; the models are {', '.join(sorted(REGISTRY))}") from None
    return cls(**options)


__all__ = ["REGISTRY", "Model", "DawidSkene", "HierarchicalDawidSkene", "ItemDifficulty", "LearningCurve", "Mace",
           "MajorityVote", "PooledMultinomial", "RandomEffects", "get_model"]
