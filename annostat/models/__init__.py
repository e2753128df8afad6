"""Models of volunteers: one module per model, each registered under a short name (``mv``, ``ds``, ``hds``,
``learning``, ``mace``, ``mn``, ``item``, ``lre``) with what it can do (:mod:`annostat.models.registry`).

The model classes are imported when first used (``from annostat.models import DawidSkene`` or
:func:`get_model`), so that looking up a model's capabilities imports none of them.
"""

from annostat.models.registry import CAPABILITIES, REGISTRY, ModelSpec, get_model, model_spec, models_that, \
    register_model

_CLASSES = {"DawidSkene": "ds", "MajorityVote": "mv", "HierarchicalDawidSkene": "hds", "LearningCurve": "learning",
            "Mace": "mace", "PooledMultinomial": "mn", "ItemDifficulty": "item", "RandomEffects": "lre"}


def __getattr__(name: str):
    if name in _CLASSES:
        return model_spec(_CLASSES[name]).load()
    if name == "Model":
        from annostat.models.base import Model

        return Model
    raise AttributeError(f"module 'annostat.models' has no attribute {name!r}")


__all__ = ["CAPABILITIES", "REGISTRY", "ModelSpec", "Model", "get_model", "model_spec", "models_that",
           "register_model", *_CLASSES]
