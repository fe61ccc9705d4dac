"""APLT offline-phase building blocks: feature bank, ss-k-means, thresholds, prototypes, loss, diagnostics."""

import math

import pytest
import torch
import torch.nn.functional as F

from ssmar.aplt.diagnostics import accuracy_at_coverage, cluster_purity, pseudo_label_quality
from ssmar.aplt.feature_bank import build_feature_bank
from ssmar.aplt.losses import additive_margin_loss
from ssmar.aplt.prototypes import PrototypeMemory, prototype_drift, refine_prototypes
from ssmar.aplt.ss_kmeans import semi_supervised_kmeans
from ssmar.aplt.thresholds import make_threshold_policy, screen
from ssmar.errors import SsmarError

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
INF = math.inf


def planted_clusters(num_classes=5, per_class=200, dim=16, noise=0.25, labels_per_class=3, seed=0):
    """Well-separated clusters on the sphere; the first ``labels_per_class`` rows of each are labelled."""
    gen = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(num_classes, dim, generator=gen), dim=1)
    true = torch.arange(num_classes).repeat_interleave(per_class)
    features = F.normalize(centres[true] + noise * torch.randn(len(true), dim, generator=gen) / dim ** 0.5, dim=1)
    labels = torch.full_like(true, -1)
    for k in range(num_classes):
        labels[k * per_class:k * per_class + labels_per_class] = k
    return features, labels, true


# --- semi-supervised k-means -------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
def test_kmeans_recovers_planted_clusters_and_pins_labelled_points(device):
    features, labels, true = planted_clusters()
    labels[10] = 3  # a labelled point planted inside cluster 0 but labelled 3
    features, labels = features.to(device), labels.to(device)
    result = semi_supervised_kmeans(features, labels, num_classes=5)
    unlabelled = labels < 0
    assert result.converged and 1 < result.iterations < 50
    assert torch.equal(result.assign[~unlabelled], labels[~unlabelled])
    assert (result.assign[unlabelled].cpu() == true[unlabelled.cpu()]).float().mean() > 0.95
    assert cluster_purity(result.assign, true.to(device), 5) > 0.95
    assert torch.allclose(result.centres.norm(dim=1), torch.ones(5, device=device))
    cos = features @ result.centres.T
    assert torch.allclose(result.distance, 1 - cos.gather(1, result.assign[:, None]).squeeze(1), atol=1e-5)
    cos.scatter_(1, result.assign[:, None], -INF)
    assert torch.allclose(result.second_distance, 1 - cos.max(1).values, atol=1e-5)


def test_kmeans_chunked_equals_unchunked():
    features, labels, _ = planted_clusters(noise=0.8, seed=1)
    whole = semi_supervised_kmeans(features, labels, 5, chunk_size=1 << 20)
    chunked = semi_supervised_kmeans(features, labels, 5, chunk_size=37)
    assert torch.equal(whole.assign, chunked.assign)
    assert whole.iterations == chunked.iterations
    assert torch.allclose(whole.centres, chunked.centres, atol=1e-6)
    assert torch.allclose(whole.distance, chunked.distance, atol=1e-6)


def test_kmeans_converged_flag_and_iteration_cap():
    features, labels, _ = planted_clusters(noise=0.8, seed=2)
    capped = semi_supervised_kmeans(features, labels, 5, max_iter=1)
    assert capped.iterations == 1 and not capped.converged  # every unlabelled point moved from "none"
    all_labelled = semi_supervised_kmeans(features[labels >= 0], labels[labels >= 0], 5)
    assert all_labelled.converged and all_labelled.iterations == 1


def test_kmeans_class_without_labels_needs_init_centres():
    features, labels, _ = planted_clusters()
    labels[labels == 4] = -1
    with pytest.raises(SsmarError, match=r"classes \[4\] have no labelled sample"):
        semi_supervised_kmeans(features, labels, 5)
    init = F.normalize(features.view(5, 200, -1).mean(1), dim=1)
    result = semi_supervised_kmeans(features, labels, 5, init_centres=init)
    assert (result.assign[800:] == 4).float().mean() > 0.95
    with pytest.raises(SsmarError, match="L2-normalised"):
        semi_supervised_kmeans(features * 2, labels, 5, init_centres=init)


# --- thresholds ----------------------------------------------------------------------------------

DIST = torch.tensor([0.1, 0.2, 0.6, 0.4, 0.8, 0.05, 0.15, 0.3])
ASSIGN = torch.tensor([0, 0, 0, 1, 1, 0, 0, 1])
UNLAB = torch.tensor([True] * 5 + [False] * 3)


def thresholds(name, distance=DIST, assign=ASSIGN, unlabelled=UNLAB, policy=None, device="cpu", **params):
    policy = policy or make_threshold_policy(name, **params)
    return policy.compute(distance.to(device), assign.to(device), unlabelled.to(device), ~unlabelled.to(device),
                          3).tolist()


@pytest.mark.parametrize("device", DEVICES)
def test_threshold_variants_exact_values(device):
    assert thresholds("mean", device=device) == pytest.approx([0.3, 0.6, INF])
    assert thresholds("quantile", q=0.8, device=device) == thresholds("quantile")
    assert thresholds("labelled", device=device) == thresholds("labelled")
    assert thresholds("quantile", q=0.5) == pytest.approx([0.2, 0.6, INF])
    # q = 0.8 by linear interpolation: class 0 sorted [.1 .2 .6] at 1.6, class 1 [.4 .8] at 0.8
    assert thresholds("quantile") == pytest.approx([0.2 + 0.6 * 0.4, 0.4 + 0.8 * 0.4, INF])
    assert thresholds("quantile")[0] == pytest.approx(torch.quantile(DIST[:3], 0.8).item())
    # labelled members: class 0 [0.05, 0.15] (mean 0.1, std 0.05), class 1 [0.3]
    assert thresholds("labelled") == pytest.approx([0.15, 0.3, INF])
    assert thresholds("labelled", c=2.0) == pytest.approx([0.2, 0.3, INF])
    assert thresholds("fixed", value=0.25) == pytest.approx([0.25] * 3)
    assert thresholds("none") == [INF] * 3


def test_ema_threshold_over_rounds_and_resume():
    policy = make_threshold_policy("ema")
    assert thresholds("ema", policy=policy) == pytest.approx([0.3, 0.6, INF])  # first round: the mean
    round2 = dict(distance=torch.full((8,), 0.5), assign=torch.tensor([0, 0, 0, 0, 0, 0, 0, 1]))
    # class 0: 0.7 * 0.3 + 0.3 * 0.5; class 1 has no unlabelled member: unchanged
    assert thresholds("ema", policy=policy, **round2) == pytest.approx([0.36, 0.6, INF])
    resumed = make_threshold_policy("ema", momentum=0.7)
    resumed.load_state_dict(policy.state_dict())
    assert thresholds("ema", policy=resumed, **round2) == thresholds("ema", policy=policy, **round2)
    with pytest.raises(SsmarError, match="resume with the same"):
        make_threshold_policy("mean").load_state_dict(policy.state_dict())


def test_threshold_errors_and_screening():
    with pytest.raises(SsmarError, match="unknown threshold policy"):
        make_threshold_policy("median")
    with pytest.raises(SsmarError, match="bad options"):
        make_threshold_policy("fixed")
    with pytest.raises(SsmarError, match="outside"):
        make_threshold_policy("quantile", q=1.5)
    keep = screen(DIST, ASSIGN, torch.tensor([0.3, 0.6, INF]))
    assert keep.tolist() == [True, True, False, True, False, True, True, True]


# --- prototypes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
def test_refine_prototypes_uses_labelled_and_kept_members(device):
    features = F.normalize(torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), dim=1)
    labels = torch.tensor([0, 1, -1, -1, -1, -1])
    assign = torch.tensor([0, 1, 0, 0, 1, 1])
    keep = torch.tensor([False, False, True, False, False, True])  # labelled rows count regardless
    fallback = torch.eye(3, 4) * 5
    protos = refine_prototypes(*(t.to(device) for t in (features, assign, keep, labels)), 3, fallback).cpu()
    expected = torch.stack([F.normalize(features[[0, 2]].mean(0), dim=0),
                            F.normalize(features[[1, 5]].mean(0), dim=0), torch.eye(3, 4)[2]])
    assert torch.allclose(protos, expected, atol=1e-6)
    drift = prototype_drift(protos, torch.stack([protos[0], -protos[1], protos[2]]))
    assert drift.tolist() == pytest.approx([0.0, 2.0, 0.0], abs=1e-6)


def test_prototype_memory_is_frozen_under_training():
    torch.manual_seed(0)
    backbone = torch.nn.Linear(4, 3)
    memory = PrototypeMemory(num_classes=2, dim=3)
    memory.update(torch.tensor([[2.0, 0, 0], [0, 1, 1]]))
    before = memory.prototypes.clone()
    assert torch.allclose(before.norm(dim=1), torch.ones(2))
    model = torch.nn.Sequential(backbone, memory)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    for _ in range(2):
        loss = additive_margin_loss(model(torch.randn(5, 4)), torch.tensor([0, 1, 0, 1, 0]))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert not memory.prototypes.requires_grad and memory.prototypes.grad is None
    assert list(memory.parameters()) == [] and backbone.weight.grad is not None
    assert torch.equal(memory.prototypes, before)
    assert torch.equal(model.state_dict()["1.prototypes"], before)


# --- margin loss --------------------------------------------------------------------------------

COS = torch.tensor([[0.5, 0.1, -0.2], [0.0, 0.3, 0.9]])
TARGET = torch.tensor([0, 2])
# s = 10, m = 0.2: logits [3, 1, -2] and [0, 3, 7]
LOSS0 = -3 + math.log(math.exp(3) + math.exp(1) + math.exp(-2))
LOSS1 = -7 + math.log(1 + math.exp(3) + math.exp(7))


def test_margin_loss_matches_hand_computation():
    assert additive_margin_loss(COS, TARGET, margin=0.2, scale=10).item() == pytest.approx((LOSS0 + LOSS1) / 2)
    assert additive_margin_loss(COS, TARGET, margin=0.0, scale=10).item() == pytest.approx(
        F.cross_entropy(10 * COS, TARGET).item())


def test_margin_loss_weights_masks_and_empty_mask():
    kwargs = dict(margin=0.2, scale=10)
    assert additive_margin_loss(COS, TARGET, weight=torch.tensor([True, False]), **kwargs).item() == pytest.approx(LOSS0)
    assert additive_margin_loss(COS, TARGET, weight=torch.tensor([1.0, 3.0]), **kwargs).item() == pytest.approx(
        (LOSS0 + 3 * LOSS1) / 4)
    assert additive_margin_loss(COS, torch.tensor([-1, 2]), **kwargs).item() == pytest.approx(LOSS1)
    cos = COS.clone().requires_grad_()
    empty = additive_margin_loss(cos, torch.tensor([-1, -1]), **kwargs)
    empty.backward()
    assert empty.item() == 0.0 and torch.equal(cos.grad, torch.zeros_like(cos))


def test_margin_loss_per_batch_divides_by_the_batch_like_fixmatch():
    kept = additive_margin_loss(COS, TARGET, 0.2, 10, weight=torch.tensor([True, False]), per_batch=True)
    assert kept.item() == pytest.approx(LOSS0 / 2)  # one kept clip of two: half its loss, as FixMatch's mask


# --- diagnostics --------------------------------------------------------------------------------

PRED = torch.tensor([0, 0, 1, 1, 2, 2])
KEEP = torch.tensor([True, True, True, False, True, False])
TRUE = torch.tensor([0, 1, 1, 1, 2, 0])


@pytest.mark.parametrize("device", DEVICES)
def test_pseudo_label_quality_on_tiny_example(device):
    q = pseudo_label_quality(PRED.to(device), KEEP.to(device), TRUE.to(device), num_classes=4)
    assert (q["num_samples"], q["num_kept"]) == (6, 4)
    assert q["coverage"] == pytest.approx(4 / 6) and q["accuracy"] == pytest.approx(3 / 4)
    assert q["accuracy_unscreened"] == pytest.approx(4 / 6)
    per = q["per_class"]
    assert per["support"] == [2, 3, 1, 0] and per["kept"] == [2, 1, 1, 0]
    assert per["coverage"][:3] == pytest.approx([1 / 2, 2 / 3, 1.0]) and math.isnan(per["coverage"][3])
    assert per["recall"][:3] == pytest.approx([1 / 2, 1 / 3, 1.0])
    assert per["accuracy"][:3] == pytest.approx([1 / 2, 1.0, 1.0]) and math.isnan(per["accuracy"][3])


def test_purity_and_accuracy_at_coverage():
    assert cluster_purity(PRED, TRUE, 3) == pytest.approx(4 / 6)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    assert accuracy_at_coverage(scores, PRED, TRUE, 0.5) == pytest.approx(2 / 3)
    assert accuracy_at_coverage(scores, PRED, TRUE, 1.0) == pytest.approx(4 / 6)
    with pytest.raises(SsmarError, match="class ids"):
        cluster_purity(PRED, torch.tensor([0, 1, 1, 1, 2, -1]), 3)


# --- feature bank -------------------------------------------------------------------------------

def toy_bank(seed=0, **overrides):
    data = torch.randn(10, 3, 4, generator=torch.Generator().manual_seed(1))
    weight = torch.randn(12, 5, generator=torch.Generator().manual_seed(2))
    args = dict(embed_fn=lambda x: x.flatten(1) @ weight.to(x.device), clips_fn=lambda idx: data[idx],
                labelled_idx=[1, 4, 7], labelled_targets=[0, 2, 1], unlabelled_idx=[0, 2, 3, 5, 6, 8, 9],
                num_aug=2, augment=lambda x, g: x + 0.1 * torch.randn(x.shape, generator=g),
                generator=torch.Generator().manual_seed(seed), batch_size=2)
    return build_feature_bank(**{**args, **overrides}), data, weight


def test_feature_bank_shapes_order_and_normalisation():
    bank, data, weight = toy_bank()
    assert bank.features.shape == (3 * 3 + 7, 5) and bank.features.dtype == torch.float32
    assert torch.allclose(bank.features.norm(dim=1), torch.ones(16))
    assert bank.labels.tolist() == [0, 2, 1] * 3 + [-1] * 7 and bank.num_unlabelled == 7
    assert bank.dataset_index.tolist() == [1, 4, 7] * 3 + [0, 2, 3, 5, 6, 8, 9]
    assert bank.is_view.tolist() == [False] * 3 + [True] * 6 + [False] * 7
    originals = F.normalize(data[[1, 4, 7, 0, 2, 3, 5, 6, 8, 9]].flatten(1) @ weight, dim=1)
    assert torch.allclose(bank.features[[0, 1, 2, *range(9, 16)]], originals, atol=1e-6)
    views = bank.features[3:9]
    assert (views - bank.features[[0, 1, 2] * 2]).norm(dim=1).min() > 1e-4  # views are augmented
    assert torch.equal(toy_bank(seed=0)[0].features, bank.features)  # same generator seed, same views
    assert not torch.equal(toy_bank(seed=1)[0].features[3:9], views)


def test_feature_bank_averages_views_and_keeps_mean_logits():
    head = torch.randn(5, 4, generator=torch.Generator().manual_seed(3))
    _, data, weight = toy_bank()

    def encoder(x):
        feat = x.flatten(1) @ weight.to(x.device)
        return {"feat": feat, "logits": feat @ head}

    identity, _, _ = toy_bank(embed_fn=encoder, views=3, augment=lambda x, g: x)
    clean = F.normalize(data[[1, 4, 7, 0, 2, 3, 5, 6, 8, 9]].flatten(1) @ weight, dim=1)
    rows = [0, 1, 2, *range(9, 16)]
    assert torch.allclose(identity.features[rows], clean, atol=1e-6)  # identical views: the mean is the clip
    assert torch.allclose(identity.logits[rows], (data[[1, 4, 7, 0, 2, 3, 5, 6, 8, 9]].flatten(1) @ weight) @ head,
                          atol=1e-5)
    noisy, _, _ = toy_bank(embed_fn=encoder, views=3)
    assert noisy.logits.shape == (16, 4) and torch.allclose(noisy.features.norm(dim=1), torch.ones(16))
    assert (noisy.features[rows] - clean).norm(dim=1).min() > 1e-4  # unlabelled rows average augmented views
    assert toy_bank()[0].logits is None  # a plain embedding function gives no logits
    with pytest.raises(SsmarError, match="views"):
        toy_bank(views=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_feature_bank_on_cuda_matches_cpu():
    bank = toy_bank(device="cuda")[0]
    assert bank.features.is_cuda and bank.labels.is_cuda and bank.is_view.is_cuda
    assert torch.allclose(bank.features.cpu(), toy_bank()[0].features, atol=1e-5)


def test_feature_bank_input_errors():
    with pytest.raises(SsmarError, match="augment function"):
        toy_bank(augment=None)
    with pytest.raises(SsmarError, match="one non-negative target"):
        toy_bank(labelled_targets=[0, 1])
    with pytest.raises(SsmarError, match="non-finite"):
        toy_bank(embed_fn=lambda x: torch.full((x.shape[0], 5), float("nan")))
