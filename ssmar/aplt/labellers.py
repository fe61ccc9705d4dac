"""Pluggable offline pseudo-labellers of APLT: bank rows in, a class and a certainty per row out.

The offline phase runs on a frozen backbone without step-time pressure, so it can afford a
stronger labeller than the online classifier [ours]. Every labeller here sees the same
inputs — the L2-normalised feature bank (labelled originals, their augmented views,
unlabelled clips), labels (-1 on unlabelled rows) and optionally the frozen classifier's
logits — and returns a :class:`Labelling`: one class per row (labelled rows keep theirs), a
score (higher = more certain, what screens rank by), a soft posterior where there is one,
and per-class centres as a fallback for prototypes.

- ``kmeans``: the paper's semi-supervised k-means (:mod:`ssmar.aplt.ss_kmeans`), scored by
  the negative distance to the own centre [paper] or the centre margin.
- ``multiproto``: several sub-centres per class, so a class made of distinct modes (one
  action performed two ways) is not forced onto one mean.
- ``labelprop``: transductive label propagation on a kNN graph of the bank (Iscen, Tolias,
  Avrithis, Chum, "Label Propagation for Deep Semi-supervised Learning", CVPR 2019).
- ``posterior``: the frozen classifier's posterior smoothed over the bank's neighbours.

Every labeller takes ``balance`` (``none|uniform|labelled``): the unlabelled rows' posterior
is made class-balanced by Sinkhorn-Knopp before the argmax (as in SwAV, Caron et al.,
NeurIPS 2020), against a uniform prior or the labelled set's class frequencies, so that a
dominant class cannot swallow the unlabelled set. Memory: no N x N matrix is built; kNN
search runs in chunk x chunk blocks and the graph is sparse, so the largest temporaries
are [N, K] tables and [N, k] neighbour lists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from ssmar.aplt.registry import construct
from ssmar.aplt.ss_kmeans import check_unit_rows, class_feature_sums, normalised_class_means, semi_supervised_kmeans
from ssmar.errors import SsmarError

BALANCES = ("none", "uniform", "labelled")


@dataclass
class Labelling:
    """What a labeller says about every bank row (tensors on the features' device)."""

    assign: Tensor  # [N] long: class of every row; rows with labels >= 0 keep their label
    score: Tensor  # [N] float32: certainty of the assignment, higher = more certain
    probs: Tensor | None  # [N, K] soft posterior (rows sum to 1) when the labeller has one
    centres: Tensor  # [K, D] unit-norm per-class centres (mean of labelled + assigned rows)


class Labeller:
    """Base class: validates inputs, runs :meth:`_label`, balances, scores and computes centres.

    A subclass returns from :meth:`_label` a per-class table [N, K] that its score is read
    from (cosines to class centres or class probabilities), its posterior (or None) and,
    where it assigns rows itself, the assignment; everything else is shared.
    """

    name: ClassVar[str] = ""
    scores: ClassVar[tuple[str, ...]] = ()

    def __init__(self, score: str, balance: str = "none", balance_iters: int = 3, chunk_size: int = 4096):
        _check_choice(self.name, "score", score, self.scores)
        _check_choice(self.name, "balance", balance, BALANCES)
        _check_positive(self.name, balance_iters=balance_iters, chunk_size=chunk_size)
        self.score, self.balance, self.balance_iters, self.chunk_size = score, balance, balance_iters, chunk_size

    def __call__(self, features: Tensor, labels: Tensor, num_classes: int, logits: Tensor | None = None,
                 init_centres: Tensor | None = None) -> Labelling:
        """Label every row of ``features`` [N, D]; ``labels`` [N] is -1 on unlabelled rows."""
        _check_inputs(self.name, features, labels, num_classes, logits, init_centres, self.chunk_size)
        with torch.no_grad():
            features = features.float()  # no copy for the bank's float32; one dtype for every matmul below
            labels = labels.to(features.device, torch.long)
            logits = None if logits is None else logits.to(features.device, torch.float32)
            init_centres = None if init_centres is None else init_centres.to(features.device, torch.float32)
            table, probs, assign = self._label(features, labels, num_classes, logits, init_centres)
            if assign is None:
                assign = torch.where(labels >= 0, labels, table.argmax(dim=1))
            if self.balance != "none":
                table, probs, assign = self._balanced(labels, num_classes, table, probs, assign)
            sums, counts = class_feature_sums(features, assign, num_classes, self.chunk_size)
            centres = normalised_class_means(sums, counts, sums.float() if init_centres is None else init_centres)
            return Labelling(assign, read_score(table, assign, self.score), probs, centres)

    def _label(self, features: Tensor, labels: Tensor, num_classes: int, logits: Tensor | None,
               init_centres: Tensor | None) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """(score table [N, K], posterior [N, K] or None, assignment [N] or None for argmax of the table)."""
        raise NotImplementedError

    def _posterior(self, table: Tensor) -> Tensor:
        """Posterior for balancing when the labeller has none (only cosine-table labellers need it)."""
        raise NotImplementedError

    def _balanced(self, labels: Tensor, num_classes: int, table: Tensor, probs: Tensor | None,
                  assign: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Sinkhorn-balance the unlabelled rows' posterior and reassign them by its argmax.

        The score is then read from the balanced posterior when the table is the posterior,
        else (k-means' cosines) from the same table at the new assignment.
        """
        unlabelled = labels < 0
        posterior = self._posterior(table) if probs is None else probs
        if self.balance == "uniform":
            prior = torch.ones(num_classes, device=labels.device)
        else:
            prior = torch.bincount(labels[~unlabelled], minlength=num_classes).float()
        balanced = posterior.clone()
        balanced[unlabelled] = sinkhorn_balance(posterior[unlabelled], prior, self.balance_iters)
        assign = torch.where(unlabelled, balanced.argmax(dim=1), assign)
        return (table if probs is None else balanced), balanced, assign


def read_score(table: Tensor, assign: Tensor, kind: str) -> Tensor:
    """Certainty [N] of each row's assignment, read from its per-class table [N, K].

    ``distance``: cos(own centre) - 1, the negative cosine distance the paper thresholds;
    ``maxprob``: the own class's value; ``margin``: own value minus the best other class's
    (+inf when K == 1); ``entropy``: 1 - H(p)/log K, Iscen et al.'s certainty weight.
    """
    own = table.gather(1, assign.unsqueeze(1)).squeeze(1)
    if kind == "distance":
        return own - 1
    if kind == "maxprob":
        return own
    if kind == "margin":
        return own - table.scatter(1, assign.unsqueeze(1), -math.inf).max(dim=1).values
    if kind == "entropy":
        if table.shape[1] == 1:
            return torch.ones_like(own)
        entropy = -torch.special.xlogy(table, table).sum(dim=1)
        return 1 - entropy / math.log(table.shape[1])
    raise SsmarError(f"unknown score kind {kind!r}; choose one of ['distance', 'entropy', 'margin', 'maxprob']")


class KMeansLabeller(Labeller):
    """The paper's semi-supervised k-means, one centre per class [paper].

    ``score="distance"`` is the paper's notion (how typical a clip is for its class);
    ``"margin"`` (second distance - own distance) measures how ambiguous it is instead.
    ``temperature`` only shapes the softmax of cosines used as posterior when balancing.
    """

    name = "kmeans"
    scores = ("distance", "margin")

    def __init__(self, iters: int = 50, tol: float = 0.0, score: str = "distance", temperature: float = 0.05,
                 **common: Any):
        super().__init__(score, **common)
        _check_positive(self.name, iters=iters, temperature=temperature)
        if not 0 <= tol < 1:
            raise SsmarError(f"labeller {self.name!r}: tol={tol} must lie in [0, 1)")
        self.iters, self.tol, self.temperature = iters, tol, temperature
        self.iterations, self.converged = 0, False  # of the last call's k-means, for benchmarks/offline_phase.py

    def _label(self, features, labels, num_classes, logits, init_centres):
        result = semi_supervised_kmeans(features, labels, num_classes, max_iter=self.iters, tol=self.tol,
                                        chunk_size=self.chunk_size, init_centres=init_centres)
        self.iterations, self.converged = result.iterations, result.converged
        return cosine_table(features, result.centres, self.chunk_size), None, result.assign

    def _posterior(self, table):
        return torch.softmax(table / self.temperature, dim=1)


class MultiPrototypeLabeller(Labeller):
    """Semi-supervised spherical k-means over ``per_class`` sub-centres per class [ours].

    A class's sub-centres start at farthest-point samples of its labelled rows (originals and
    views; fewer when they coincide) so each labelled mode gets a centre; labelled rows are
    pinned to their class's nearest sub-centre, unlabelled rows go to the nearest sub-centre
    overall. A sub-centre that no labelled row chooses is dropped: left to unlabelled rows it
    drifts onto outliers, and an outlier sitting on its own sub-centre looks certain. The
    class posterior is a softmax over classes of the best sub-centre cosine.
    """

    name = "multiproto"
    scores = ("margin", "maxprob")

    def __init__(self, per_class: int = 3, iters: int = 30, temperature: float = 0.05, score: str = "margin",
                 **common: Any):
        super().__init__(score, **common)
        _check_positive(self.name, per_class=per_class, iters=iters, temperature=temperature)
        self.per_class, self.iters, self.temperature = per_class, iters, temperature

    def _label(self, features, labels, num_classes, logits, init_centres):
        sub_centres, owner = self._initial_sub_centres(features, labels, num_classes, init_centres)
        unlabelled_class = torch.bincount(labels[labels >= 0], minlength=num_classes) == 0
        nearest = torch.full_like(labels, -1)
        for _ in range(self.iters):
            previous = nearest
            nearest = self._nearest_sub_centre(features, labels, sub_centres, owner)
            anchored = (torch.bincount(nearest[labels >= 0], minlength=len(owner)) > 0) | unlabelled_class[owner]
            if not anchored.all():  # no labelled row chose it: it would chase outliers and make them look certain
                sub_centres, owner = sub_centres[anchored], owner[anchored]
                nearest = self._nearest_sub_centre(features, labels, sub_centres, owner)
            sums, counts = class_feature_sums(features, nearest, len(owner), self.chunk_size)
            sub_centres = normalised_class_means(sums, counts, sub_centres)
            if torch.equal(nearest, previous):
                break
        best = torch.full((features.shape[0], num_classes), -math.inf, device=features.device)
        for start in range(0, features.shape[0], self.chunk_size):
            cos = features[start:start + self.chunk_size] @ sub_centres.T
            best[start:start + self.chunk_size].scatter_reduce_(1, owner.expand_as(cos), cos, "amax")
        probs = torch.softmax(best / self.temperature, dim=1)
        return probs, probs, None

    def _initial_sub_centres(self, features: Tensor, labels: Tensor, num_classes: int,
                             init_centres: Tensor | None) -> tuple[Tensor, Tensor]:
        """Sub-centres [M, D] and their class [M]; a class without labelled rows takes its init centre."""
        centres, owner = [], []
        for k in range(num_classes):
            members = features[labels == k]
            chosen = init_centres[k:k + 1] if members.numel() == 0 else farthest_points(members, self.per_class)
            centres.append(chosen)
            owner += [k] * len(chosen)
        return torch.cat(centres), torch.tensor(owner, device=features.device)

    def _nearest_sub_centre(self, features: Tensor, labels: Tensor, sub_centres: Tensor, owner: Tensor) -> Tensor:
        nearest = torch.empty_like(labels)
        for start in range(0, features.shape[0], self.chunk_size):
            cos = features[start:start + self.chunk_size] @ sub_centres.T
            chunk_labels = labels[start:start + self.chunk_size].unsqueeze(1)
            foreign = (chunk_labels >= 0) & (owner.unsqueeze(0) != chunk_labels)
            nearest[start:start + self.chunk_size] = cos.masked_fill(foreign, -math.inf).argmax(dim=1)
        return nearest


class LabelPropagationLabeller(Labeller):
    """Label propagation on a kNN graph of the bank (Iscen et al., CVPR 2019).

    Affinity a_ij = max(cos_ij, 0)^gamma for the ``k`` nearest neighbours, symmetrised
    (A + A^T); W = D^-1/2 A D^-1/2; Z solves (I - alpha W) Z = Y by conjugate gradient, where
    Y holds each labelled row as 1/|L_c| in its class column (class-balanced seeds). The
    posterior is Z clipped at 0 and row-normalised (uniform for rows no label reaches); the
    default score is Iscen's certainty 1 - H(p)/log K.
    """

    name = "labelprop"
    scores = ("entropy", "margin", "maxprob")

    def __init__(self, k: int = 15, gamma: float = 3.0, alpha: float = 0.99, iters: int = 20, tol: float = 1e-6,
                 score: str = "entropy", **common: Any):
        super().__init__(score, **common)
        _check_positive(self.name, k=k, gamma=gamma, iters=iters)
        if not 0 < alpha < 1:
            raise SsmarError(f"labeller {self.name!r}: alpha={alpha} must lie in (0, 1)")
        self.k, self.gamma, self.alpha, self.iters, self.tol = k, gamma, alpha, iters, tol

    def _label(self, features, labels, num_classes, logits, init_centres):
        graph = self._normalised_graph(features)
        seeds = torch.zeros(features.shape[0], num_classes, device=features.device)
        labelled = (labels >= 0).nonzero().squeeze(1)
        seeds[labelled, labels[labelled]] = 1.0
        seeds /= seeds.sum(dim=0, keepdim=True).clamp_min(1.0)
        z = conjugate_gradient(lambda x: x - self.alpha * torch.sparse.mm(graph, x), seeds, self.iters, self.tol)
        z = z.clamp_min(0)
        mass = z.sum(dim=1, keepdim=True)
        probs = torch.where(mass > 0, z / mass.clamp_min(torch.finfo(z.dtype).tiny), 1.0 / num_classes)
        return probs, probs, None

    def _normalised_graph(self, features: Tensor) -> Tensor:
        """Sparse symmetric W = D^-1/2 (A + A^T) D^-1/2 [N, N] of the kNN affinities."""
        n = features.shape[0]
        sims, neighbours = knn(features, self.k, self.chunk_size)
        rows = torch.arange(n, device=features.device).repeat_interleave(neighbours.shape[1])
        cols = neighbours.reshape(-1)
        weights = sims.reshape(-1).clamp_min(0) ** self.gamma
        graph = torch.sparse_coo_tensor(torch.stack([torch.cat([rows, cols]), torch.cat([cols, rows])]),
                                        torch.cat([weights, weights]), (n, n), check_invariants=False).coalesce()
        i, j = graph.indices()
        degree = torch.zeros(n, device=features.device).index_add_(0, i, graph.values())
        scale = degree.clamp_min(torch.finfo(degree.dtype).tiny).rsqrt()
        return torch.sparse_coo_tensor(graph.indices(), graph.values() * scale[i] * scale[j], (n, n),
                                       is_coalesced=True, check_invariants=False)


class PosteriorLabeller(Labeller):
    """The frozen classifier's posterior, smoothed over the bank's nearest neighbours [ours].

    p_i = softmax(logits_i / temperature) (the caller may average logits over several weak
    views); labelled rows are clamped to their one-hot label before smoothing so they vote
    for their neighbours; p'_i = (1 - beta) p_i + beta * mean of p_j over the ``k`` nearest
    rows by cosine. A neighbourhood vote corrects isolated classifier mistakes, much as the
    kNN smoothing of label propagation does.
    """

    name = "posterior"
    scores = ("maxprob", "margin", "entropy")

    def __init__(self, temperature: float = 1.0, beta: float = 0.5, k: int = 10, score: str = "maxprob",
                 **common: Any):
        super().__init__(score, **common)
        _check_positive(self.name, temperature=temperature, k=k)
        if not 0 <= beta <= 1:
            raise SsmarError(f"labeller {self.name!r}: beta={beta} must lie in [0, 1]")
        self.temperature, self.beta, self.k = temperature, beta, k

    def _label(self, features, labels, num_classes, logits, init_centres):
        if logits is None:
            raise SsmarError("labeller 'posterior' needs the frozen classifier's logits for every bank row; "
                             "pass logits or choose another labeller")
        probs = torch.softmax(logits / self.temperature, dim=1)
        labelled = labels >= 0
        probs[labelled] = F.one_hot(labels[labelled], num_classes).float()
        if self.beta > 0 and features.shape[0] > 1:
            _, neighbours = knn(features, self.k, self.chunk_size)
            votes = torch.cat([probs[neighbours[start:start + self.chunk_size]].mean(dim=1)
                               for start in range(0, features.shape[0], self.chunk_size)])
            probs = (1 - self.beta) * probs + self.beta * votes
        return probs, probs, None


LABELLERS: dict[str, type[Labeller]] = {labeller.name: labeller for labeller in (
    KMeansLabeller, MultiPrototypeLabeller, LabelPropagationLabeller, PosteriorLabeller)}


def make_labeller(name: str, **params: Any) -> Labeller:
    """Build a labeller by name; ``params`` are its keyword options (see each class)."""
    return construct(LABELLERS, "labeller", name, params)


def sinkhorn_balance(probs: Tensor, prior: Tensor, iters: int = 3, floor: float = 1e-12) -> Tensor:
    """Class-balanced assignment: alternately rescale columns to the prior's mass and rows to sum 1.

    Sinkhorn-Knopp (Cuturi, NeurIPS 2013; as SwAV, Caron et al., NeurIPS 2020, uses it for
    equipartition): the result stays a posterior per row while the classes' total mass
    approaches ``prior`` x N, so a few dominant classes cannot absorb the unlabelled set.
    ``probs`` [N, K] is floored at ``floor`` so every class can receive mass.
    """
    if probs.ndim != 2 or prior.shape != probs.shape[1:] or (prior < 0).any() or not prior.sum() > 0 or iters < 1:
        raise SsmarError(f"sinkhorn_balance: need probs [N, K], a non-negative prior [K] with positive sum and "
                         f"iters >= 1, got {tuple(probs.shape)}, {tuple(prior.shape)}, iters={iters}")
    q = probs.double().clamp_min(floor)
    target = prior.to(q) / prior.sum() * q.shape[0]
    for _ in range(iters):
        q *= target / q.sum(dim=0).clamp_min(torch.finfo(q.dtype).tiny)
        q /= q.sum(dim=1, keepdim=True).clamp_min(torch.finfo(q.dtype).tiny)
    return q.float()


def cosine_table(features: Tensor, centres: Tensor, chunk_size: int) -> Tensor:
    """Cosines [N, K] of every row to every centre, one chunk of rows at a time."""
    return torch.cat([features[start:start + chunk_size] @ centres.T
                      for start in range(0, features.shape[0], chunk_size)])


def farthest_points(rows: Tensor, count: int) -> Tensor:
    """Up to ``count`` unit rows far apart: farthest-point sampling from the row nearest the mean.

    Deterministic (no seed to carry across a resume); stops early when every remaining row
    coincides with a chosen one, so a class with one distinct point gets one sub-centre.
    """
    first = int((rows @ F.normalize(rows.sum(dim=0), dim=0)).argmax())
    chosen = [first]
    closeness = rows @ rows[first]  # cosine to the nearest chosen row
    while len(chosen) < count:
        far = int(closeness.argmin())
        if closeness[far] >= 1 - 1e-6:
            break
        chosen.append(far)
        closeness = torch.maximum(closeness, rows @ rows[far])
    return rows[chosen]


def knn(features: Tensor, k: int, chunk_size: int) -> tuple[Tensor, Tensor]:
    """Cosines and indices [N, min(k, N-1)] of each row's nearest other rows.

    Exact search in chunk x chunk blocks with a running top-k, so memory is
    O(chunk^2 + N k) whatever N is.
    """
    n = features.shape[0]
    k = min(k, n - 1)
    sims = torch.empty(n, k, device=features.device)
    indices = torch.empty(n, k, dtype=torch.long, device=features.device)
    for start in range(0, n, chunk_size):
        queries = features[start:start + chunk_size]
        query_index = torch.arange(start, start + queries.shape[0], device=features.device)
        best = torch.full((queries.shape[0], 0), -math.inf, device=features.device)
        best_index = torch.empty((queries.shape[0], 0), dtype=torch.long, device=features.device)
        for key_start in range(0, n, chunk_size):
            block = queries @ features[key_start:key_start + chunk_size].T
            key_index = torch.arange(key_start, key_start + block.shape[1], device=features.device)
            block.masked_fill_(query_index.unsqueeze(1) == key_index.unsqueeze(0), -math.inf)
            candidates = torch.cat([best, block], dim=1)
            candidate_index = torch.cat([best_index, key_index.expand_as(block)], dim=1)
            top = candidates.topk(min(k, candidates.shape[1]), dim=1)
            best, best_index = top.values, candidate_index.gather(1, top.indices)
        sims[start:start + chunk_size], indices[start:start + chunk_size] = best, best_index
    return sims, indices


def conjugate_gradient(matvec: Callable[[Tensor], Tensor], rhs: Tensor, iters: int, tol: float) -> Tensor:
    """Solve A X = rhs column by column (all columns at once) for a symmetric positive definite A.

    As Iscen et al. do for (I - alpha W): a few CG steps beat a dense inverse by far.
    """
    x = torch.zeros_like(rhs)
    residual = rhs.clone()
    direction = residual.clone()
    power = (residual * residual).sum(dim=0)
    stop = tol * tol * power.clamp_min(torch.finfo(rhs.dtype).tiny)
    tiny = torch.finfo(rhs.dtype).tiny
    for _ in range(iters):
        product = matvec(direction)
        step = power / (direction * product).sum(dim=0).clamp_min(tiny)
        x += step * direction
        residual -= step * product
        new_power = (residual * residual).sum(dim=0)
        if bool((new_power <= stop).all()):
            break
        direction = residual + (new_power / power.clamp_min(tiny)) * direction
        power = new_power
    return x


def _check_inputs(name: str, features: Tensor, labels: Tensor, num_classes: int, logits: Tensor | None,
                  init_centres: Tensor | None, chunk_size: int) -> None:
    check_unit_rows(features, f"labeller {name!r} features", chunk_size)
    n, dim = features.shape
    if num_classes < 1 or labels.shape != (n,):
        raise SsmarError(f"labeller {name!r}: need num_classes >= 1 and one label (or -1) per feature row, got "
                         f"num_classes={num_classes}, labels {tuple(labels.shape)} for {n} rows")
    if labels.numel() and not -1 <= int(labels.min()) <= int(labels.max()) < num_classes:
        raise SsmarError(f"labeller {name!r}: labels must lie in [-1, {num_classes}); check the dataset's class count")
    if logits is not None and logits.shape != (n, num_classes):
        raise SsmarError(f"labeller {name!r}: logits shape {tuple(logits.shape)} != ({n}, {num_classes}); "
                         "pass the frozen classifier's logits for the bank rows")
    if init_centres is not None and init_centres.shape != (num_classes, dim):
        raise SsmarError(f"labeller {name!r}: init_centres shape {tuple(init_centres.shape)} != "
                         f"({num_classes}, {dim}); pass one centre per class in feature space")
    if init_centres is None:
        missing = (torch.bincount(labels[labels >= 0].cpu(), minlength=num_classes) == 0).nonzero().squeeze(1)
        if missing.numel():
            raise SsmarError(f"labeller {name!r}: classes {missing[:20].tolist()} have no labelled row; "
                             "label at least one clip per class or pass init_centres")


def _check_choice(owner: str, option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SsmarError(f"labeller {owner!r}: unknown {option} {value!r}; choose one of {sorted(choices)}")


def _check_positive(owner: str, **values: float) -> None:
    bad = {key: value for key, value in values.items() if not value > 0}
    if bad:
        raise SsmarError(f"labeller {owner!r}: options {bad} must be > 0")
