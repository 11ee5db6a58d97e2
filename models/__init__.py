"""Recommenders, offline evaluation, the MLflow registry and the FAISS item index.

``create_recommender(name, **params)`` builds any model by name; every model follows the
interface in :mod:`models.base` (after implicit's ``RecommenderBase``).
"""

from __future__ import annotations

from typing import Any

from models.base import ModelError, Recommender, UnknownItemError, UnknownUserError

BASELINES = ("pop", "itemknn", "ease")


def recommender_classes() -> dict[str, type[Recommender]]:
    """Every registered model class by name."""
    from models.als import ALSRecommender
    from models.bpr import BPRRecommender
    from models.ease import EASERecommender, TagEASERecommender
    from models.ensemble import EnsembleRecommender
    from models.item2vec import Item2VecRecommender
    from models.knn import ItemKNNRecommender, RP3BetaRecommender, TagKNNRecommender
    from models.lightfm_hybrid import LightFMRecommender
    from models.popularity import PopularityRecommender

    classes: list[type[Recommender]] = [
        PopularityRecommender,
        ItemKNNRecommender,
        EASERecommender,
        ALSRecommender,
        BPRRecommender,
        LightFMRecommender,
        Item2VecRecommender,
        RP3BetaRecommender,
        TagKNNRecommender,
        TagEASERecommender,
        EnsembleRecommender,
    ]
    return {cls.name: cls for cls in classes}


def create_recommender(name: str, **params: Any) -> Recommender:
    """Build a recommender by name (``pop``, ``als``, ``bpr``, ``lightfm``, ``ease``...).

    Raises:
        ModelError: the name is unknown or a parameter is not the model's.
    """
    classes = recommender_classes()
    if name not in classes:
        raise ModelError(f"unknown recommender {name!r}; known: {', '.join(classes)}")
    try:
        return classes[name](**params)
    except TypeError as error:
        raise ModelError(f"recommender {name}: {error}") from error


__all__ = [
    "BASELINES",
    "ModelError",
    "Recommender",
    "UnknownItemError",
    "UnknownUserError",
    "create_recommender",
]
