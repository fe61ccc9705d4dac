"""Which unlabelled clips to label next: active-learning strategies over a trained run's embeddings.

Every strategy ranks the pool from a model's view of it: ``features`` (L2-normalised embeddings of
the pool and of the clips already labelled) and ``probabilities`` (the run's class posterior, for
APLT its fused prototype/linear scores). ``random`` is the baseline the others must beat;
``uncertainty`` asks for the clips whose top two classes are closest (the smallest margin), which
pays once the model is decent; ``diversity`` is greedy k-centre (Sener & Savarese, ICLR 2018): each
pick is the clip farthest from every labelled or picked clip, so the labels cover the feature
space; ``typiclust`` (Hacohen et al., ICML 2022) is for very small budgets, where uncertain or
outlying clips teach little: cluster the pool and the labelled clips into (labelled + budget)
clusters and take the most typical clip (densest neighbourhood) of the largest clusters that no
label covers yet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ssmar.aplt.labellers import knn
from ssmar.aplt.ss_kmeans import semi_supervised_kmeans
from ssmar.errors import SsmarError

STRATEGIES = ("random", "uncertainty", "diversity", "typiclust")
TYPICLUST_NEIGHBOURS = 20  # neighbours whose mean distance defines typicality (TypiClust's k)
TYPICLUST_MIN_CLUSTER = 5  # smaller clusters are outliers, not worth a label (TypiClust's rule)
TYPICLUST_MAX_CLUSTERS = 500  # caps the k-means cost on large pools, as TypiClust does


@dataclass
class Ranking:
    """``order``: pool positions, most worth labelling first (``budget`` of them); per pool clip the
    measures every strategy reads, so a suggestion can be judged whatever chose it."""

    order: np.ndarray
    margin: np.ndarray  # top-1 minus top-2 probability: small = uncertain
    distance: np.ndarray  # cosine distance to the nearest labelled clip: large = uncovered
    typicality: np.ndarray  # 1 / mean cosine distance to the nearest pool + labelled clips: large = typical
    cluster: np.ndarray  # k-means cluster of the pool clip (typiclust's clusters; -1 for other strategies)


def check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise SsmarError(f"unknown strategy '{strategy}'; choose one of: {', '.join(STRATEGIES)}")


def rank_pool(strategy: str, pool_features: Tensor, labelled_features: Tensor, probabilities: Tensor,
              budget: int, seed: int = 0) -> Ranking:
    """The ``budget`` pool clips ``strategy`` would have labelled next, in order."""
    check_strategy(strategy)
    pool_size = pool_features.shape[0]
    if not 1 <= budget <= pool_size:
        raise SsmarError(f"budget {budget} is {'larger than' if budget > pool_size else 'outside'} the pool of "
                         f"{pool_size} unlabelled clip(s); pass a --budget from 1 to {pool_size}")
    pool = F.normalize(pool_features.float(), dim=1)
    labelled = F.normalize(labelled_features.float(), dim=1)
    top2 = probabilities.float().topk(min(2, probabilities.shape[1]), dim=1).values
    margin = (top2[:, 0] - (top2[:, 1] if top2.shape[1] > 1 else 0.0)).numpy()
    distance = (1 - (pool @ labelled.T).max(dim=1).values).clamp(min=0).numpy() if len(labelled) else \
        np.ones(pool_size, np.float32)
    everything = torch.cat([pool, labelled])
    typicality = _typicality(everything, torch.zeros(len(everything), dtype=torch.long))[:pool_size]
    cluster = np.full(pool_size, -1)
    if strategy == "random":
        order = np.random.default_rng(seed).permutation(pool_size)[:budget]
    elif strategy == "uncertainty":
        order = np.argsort(margin, kind="stable")[:budget]
    elif strategy == "diversity":
        order = k_centre(pool, labelled, budget)
    else:
        order, cluster = typiclust(pool, labelled, budget, seed)
    return Ranking(order=np.asarray(order, dtype=np.int64), margin=margin, distance=distance,
                   typicality=typicality.numpy(), cluster=cluster)


def k_centre(pool: Tensor, labelled: Tensor, budget: int) -> list[int]:
    """Greedy k-centre: repeatedly the pool clip farthest (cosine) from every labelled and picked clip."""
    nearest = (pool @ labelled.T).max(dim=1).values if len(labelled) else torch.full((len(pool),), -2.0)
    picked: list[int] = []
    for _ in range(budget):
        candidate = nearest.clone()
        candidate[picked] = float("inf")
        far = int(candidate.argmin())
        picked.append(far)
        nearest = torch.maximum(nearest, pool @ pool[far])
    return picked


def typiclust(pool: Tensor, labelled: Tensor, budget: int, seed: int) -> tuple[list[int], np.ndarray]:
    """TypiClust: the most typical pool clip of each of the largest clusters without a label.

    Pool and labelled clips are clustered together into min(labelled + budget, 500) clusters
    (spherical k-means, k-means++ start); each pick takes, among the clusters with the fewest labels
    (uncovered ones first) and at least 5 clips, the largest, and in it the unpicked pool clip whose
    nearest neighbours in the cluster are closest. Returns the picks and each pool clip's cluster.
    """
    everything = torch.cat([pool, labelled])
    count = min(len(labelled) + budget, TYPICLUST_MAX_CLUSTERS, len(everything))
    assign = spherical_kmeans(everything, count, seed)
    typicality = _typicality(everything, assign)
    sizes = np.bincount(assign.numpy(), minlength=count)
    covered = np.bincount(assign[len(pool):].numpy(), minlength=count)
    available = np.zeros(len(everything), dtype=bool)
    available[:len(pool)] = True
    picked: list[int] = []
    for _ in range(budget):
        open_clusters = np.flatnonzero(np.bincount(assign.numpy()[available], minlength=count) > 0)
        big = open_clusters[sizes[open_clusters] >= TYPICLUST_MIN_CLUSTER]
        candidates = big if len(big) else open_clusters
        # fewest labels first, then the largest cluster (lexsort: last key is primary)
        best = candidates[np.lexsort((-sizes[candidates], covered[candidates]))[0]]
        members = np.flatnonzero(available & (assign.numpy() == best))
        choice = int(members[np.argmax(typicality.numpy()[members])])
        picked.append(choice)
        available[choice] = False
        covered[best] += 1
    return picked, assign[:len(pool)].numpy()


def spherical_kmeans(features: Tensor, count: int, seed: int, max_iter: int = 30) -> Tensor:
    """Cluster of each unit row: k-means on the cosine, started by seeded k-means++."""
    generator = np.random.default_rng(seed)
    centres = [int(generator.integers(len(features)))]
    nearest = 1 - features @ features[centres[0]]
    for _ in range(count - 1):
        weights = nearest.clamp(min=0).double().numpy() ** 2
        total = weights.sum()
        row = int(generator.choice(len(features), p=weights / total)) if total > 0 else \
            int(generator.integers(len(features)))
        centres.append(row)
        nearest = torch.minimum(nearest, 1 - features @ features[row])
    unlabelled = torch.full((len(features),), -1, dtype=torch.long)
    return semi_supervised_kmeans(features, unlabelled, count, max_iter=max_iter,
                                  init_centres=features[centres]).assign.cpu()


def _typicality(features: Tensor, assign: Tensor) -> Tensor:
    """Per row, 1 / mean cosine distance to its nearest rows of the same cluster (0 when alone)."""
    typicality = torch.zeros(len(features))
    for cluster in assign.unique():
        members = (assign == cluster).nonzero().squeeze(1)
        if len(members) < 2:
            continue
        sims, _ = knn(features[members], TYPICLUST_NEIGHBOURS, chunk_size=4096)
        typicality[members] = 1 / (1 - sims).clamp(min=1e-6).mean(dim=1)
    return typicality
