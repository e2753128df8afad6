"""The model registry: every volunteer model's name, where its code lives and what it can do.

The command line, the benchmark pipelines, the plots, the model checks and the advice ask a model's
:class:`ModelSpec` what it can do instead of comparing names. A model is imported only when it is built
(:func:`get_model`), so an optional model (one that needs a package the user may not have, such as the coming Flax
model) registers here without being imported, and says which package it needs.

Capabilities (:data:`CAPABILITIES`):

``likelihood``
    the model has a volunteer likelihood, p(answer | true answer, volunteer): its confusions predict held-out votes
    and a vote can be taken out of its subject's posterior (every model but majority vote);
``bayesian``
    fitted by NumPyro (``svi``, ``map`` or ``nuts``): credible intervals, an ArviZ trace, LOO/WAIC;
``map``
    a Bayesian model whose posterior mode is well posed (``--inference map``);
``learning``
    volunteers' skill changes with experience: learning curves, and accuracy reported at the latest vote;
``subject_prior``
    takes a per-subject prior over the answers (``annostat fit --prior``);
``needs_images``
    fitted on the subjects' images as well as the votes.

Registering a model::

    from annostat.models.registry import ModelSpec, register_model

    register_model(ModelSpec("my-model", "My model", "mypackage.models:MyModel", {"likelihood"}))
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from annostat.models.base import Model

#: what a model can say it does (``ModelSpec.can``)
CAPABILITIES = ("likelihood", "bayesian", "map", "learning", "subject_prior", "needs_images")
#: the constructor options of the Bayesian models that the command line offers
BAYESIAN_OPTIONS = ("inference", "seed", "steps", "draws", "batch_size")


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows of a model without importing it.

    Args:
        name: the short name (``--model NAME``).
        title: the model's name in words.
        target: ``module:Class`` of the model.
        capabilities: what it can do (:data:`CAPABILITIES`).
        options: the constructor options the command line may pass to it.
        cost: ``fast`` (refitted many times for the label-efficiency curve by default) or ``slow``.
        needs: an optional package the model imports (its absence is a clear error when the model is built).
    """

    name: str
    title: str
    target: str
    capabilities: frozenset[str] = field(default_factory=frozenset)
    options: tuple[str, ...] = ()
    cost: str = "slow"
    needs: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.capabilities) - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"model {self.name}: unknown capabilities {', '.join(sorted(unknown))}")
        object.__setattr__(self, "capabilities", frozenset(self.capabilities))

    def can(self, capability: str) -> bool:
        """Whether the model has ``capability`` (one of :data:`CAPABILITIES`)."""
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}; the capabilities are {', '.join(CAPABILITIES)}")
        return capability in self.capabilities

    @property
    def available(self) -> bool:
        return self.needs is None or importlib.util.find_spec(self.needs) is not None

    def load(self) -> type:
        """The model's class (a :class:`~annostat.models.base.Model`, imported now)."""
        if not self.available:
            raise ImportError(f"model {self.name!r} needs the package {self.needs!r}, which is not installed")
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)


REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Make a model known to the command line (``--model NAME``), the benchmark pipelines and the fit readers."""
    REGISTRY[spec.name] = spec
    return spec


def model_spec(name: str) -> ModelSpec:
    """The registered model ``name``; a :class:`KeyError` naming the models otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no model {name!r}; the models are {', '.join(REGISTRY)}") from None


def models_that(capability: str) -> list[str]:
    """The names of the registered models that have ``capability``."""
    return [name for name, spec in REGISTRY.items() if spec.can(capability)]


def get_model(name: str, **options: Any) -> Model:
    """The model registered as ``name``, built with ``options``."""
    return model_spec(name).load()(**options)


def _builtin(
    name: str, title: str, target: str, capabilities: Iterable[str], options: tuple[str, ...] = (), cost: str = "slow"
) -> None:
    register_model(ModelSpec(name, title, f"annostat.models.{target}", frozenset(capabilities), options, cost))


_BAYESIAN = ("likelihood", "bayesian", "subject_prior")
_builtin("mv", "majority vote", "majority_vote:MajorityVote", (), cost="fast")
_builtin(
    "ds",
    "Dawid-Skene",
    "dawid_skene:DawidSkene",
    ("likelihood", "subject_prior"),
    ("max_iter", "tol", "pseudo_diagonal", "pseudo_off_diagonal", "devices"),
    cost="fast",
)
_PARALLEL = (*BAYESIAN_OPTIONS, "devices")  # SVI/MAP over devices: models without per-subject latent variables
_builtin("hds", "Hierarchical Dawid-Skene", "hierarchical:HierarchicalDawidSkene", (*_BAYESIAN, "map"), _PARALLEL)
_builtin("learning", "Learning curves", "learning:LearningCurve", (*_BAYESIAN, "map", "learning"), _PARALLEL)
_builtin("mace", "MACE spammer model", "mace:Mace", (*_BAYESIAN, "map"), _PARALLEL)
_builtin("mn", "Pooled multinomial", "pooled:PooledMultinomial", (*_BAYESIAN, "map"), _PARALLEL)
_builtin("item", "Item difficulty", "item_difficulty:ItemDifficulty", _BAYESIAN, BAYESIAN_OPTIONS)
_builtin("lre", "Logistic random effects", "item_difficulty:RandomEffects", _BAYESIAN, BAYESIAN_OPTIONS)
