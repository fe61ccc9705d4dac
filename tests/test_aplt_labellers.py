"""APLT offline labellers and screens on small generated banks (seeded, CPU, fast)."""

import math

import pytest
import torch
import torch.nn.functional as F

from ssmar.aplt.labellers import LABELLERS, knn, make_labeller, sinkhorn_balance
from ssmar.aplt.screens import make_screen, pooled_precision_curve, step_lookup
from ssmar.aplt.ss_kmeans import semi_supervised_kmeans
from ssmar.aplt.thresholds import make_threshold_policy, screen
from ssmar.errors import SsmarError


def bank(num_classes=4, modes=1, per_mode=30, labelled_per_mode=2, views=2, dim=32, noise=0.03, seed=0,
         centres=None):
    """A feature bank in FeatureBank's row order: labelled originals, their views, unlabelled clips.

    Each class is ``modes`` tight clusters around unit ``centres`` [K * modes, dim] (random by
    default; mode m of class k is row k * modes + m). Returns features, labels (-1 on
    unlabelled rows), the true class and the clip id (group) of every row.
    """
    gen = torch.Generator().manual_seed(seed)
    if centres is None:
        centres = F.normalize(torch.randn(num_classes * modes, dim, generator=gen), dim=1)
    mode = torch.arange(num_classes * modes).repeat_interleave(per_mode)
    true = mode // modes
    clips = F.normalize(centres[mode] + noise * torch.randn(len(mode), dim, generator=gen), dim=1)
    labelled = (torch.arange(len(mode)) % per_mode < labelled_per_mode).nonzero().squeeze(1)
    unlabelled = (torch.arange(len(mode)) % per_mode >= labelled_per_mode).nonzero().squeeze(1)
    view_rows = [F.normalize(clips[labelled] + noise * torch.randn(len(labelled), dim, generator=gen), dim=1)
                 for _ in range(views)]
    features = torch.cat([clips[labelled], *view_rows, clips[unlabelled]])
    true_rows = torch.cat([true[labelled].repeat(1 + views), true[unlabelled]])
    labels = torch.cat([true[labelled].repeat(1 + views), torch.full((len(unlabelled),), -1)])
    groups = torch.cat([labelled.repeat(1 + views), unlabelled])
    return features, labels, true_rows, groups


def oracle_logits(true, num_classes, seed=0):
    """A confident classifier that is right on every row, with some noise on the logits."""
    gen = torch.Generator().manual_seed(seed)
    return 4 * F.one_hot(true, num_classes).float() + torch.randn(len(true), num_classes, generator=gen)


def check_labelling(out, features, labels, true, num_classes):
    unlabelled = labels < 0
    assert torch.equal(out.assign[~unlabelled], labels[~unlabelled])
    assert torch.equal(out.assign[unlabelled], true[unlabelled])
    assert out.score.shape == labels.shape and out.score.dtype == torch.float32
    assert torch.isfinite(out.score).all()
    assert out.centres.shape == (num_classes, features.shape[1])
    assert torch.allclose(out.centres.norm(dim=1), torch.ones(num_classes), atol=1e-5)
    if out.probs is not None:
        assert torch.allclose(out.probs.sum(dim=1), torch.ones(len(labels)), atol=1e-4)


# --- labellers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(LABELLERS))
@pytest.mark.parametrize("balance", ["none", "uniform"])
def test_labeller_labels_separable_features_right(name, balance):
    features, labels, true, _ = bank()
    out = make_labeller(name, balance=balance)(features, labels, 4, logits=oracle_logits(true, 4))
    check_labelling(out, features, labels, true, 4)


def test_multiproto_follows_multimodal_classes_that_one_centre_cannot():
    axes = torch.eye(16)[:3]
    antipodal = torch.stack([axes, -axes], dim=1).reshape(6, 16)  # class k: modes +e_k and -e_k, mean ~ 0
    features, labels, true, _ = bank(num_classes=3, modes=2, per_mode=20, dim=16, centres=antipodal)
    out = make_labeller("multiproto", per_class=3)(features, labels, 3)
    check_labelling(out, features, labels, true, 3)
    single = make_labeller("kmeans")(features, labels, 3)
    assert (single.assign != true).float().mean() > 0.2  # one mean per class cannot hold opposite modes


def test_scores_rank_ambiguous_rows_last():
    features, labels, true, _ = bank(noise=0.03)
    halfway = F.normalize(features[labels == 0][0] + features[labels == 1][0], dim=0)
    features = torch.cat([features, halfway[None]])
    labels, true = torch.cat([labels, torch.tensor([-1])]), torch.cat([true, torch.tensor([0])])
    for name, params in [("kmeans", {"score": "margin"}), ("multiproto", {}), ("labelprop", {}),
                         ("posterior", {"score": "margin"})]:
        logits = oracle_logits(true, 4)
        logits[-1] = torch.tensor([2.0, 2.0, 0.0, 0.0])
        out = make_labeller(name, **params)(features, labels, 4, logits=logits)
        assert out.score[-1] < out.score[labels < 0][:-1].min(), name


def test_kmeans_score_is_the_papers_negative_distance():
    features, labels, _, _ = bank()
    out = make_labeller("kmeans")(features, labels, 4)
    cos = (features * out.centres[out.assign]).sum(dim=1)
    assert torch.allclose(out.score, cos - 1, atol=1e-5)
    assert out.probs is None


def test_posterior_smoothing_overrules_isolated_classifier_mistakes_and_needs_logits():
    features, labels, true, _ = bank()
    logits = oracle_logits(true, 4)
    wrong = (labels < 0).nonzero().squeeze(1)[::7]
    logits[wrong] = logits[wrong].roll(1, dims=1)
    raw = make_labeller("posterior", beta=0.0)(features, labels, 4, logits=logits)
    assert (raw.assign[wrong] != true[wrong]).all()
    smoothed = make_labeller("posterior", beta=0.8, k=10)(features, labels, 4, logits=logits)
    assert torch.equal(smoothed.assign, true)
    with pytest.raises(SsmarError, match="needs the frozen classifier's logits"):
        make_labeller("posterior")(features, labels, 4)


def test_labelprop_and_knn_chunked_equal_unchunked():
    features, labels, true, _ = bank(per_mode=25)
    whole = make_labeller("labelprop", chunk_size=4096)(features, labels, 4)
    chunked = make_labeller("labelprop", chunk_size=17)(features, labels, 4)
    assert features.shape[0] > 5 * 17
    check_labelling(chunked, features, labels, true, 4)
    assert torch.equal(whole.assign, chunked.assign)
    assert torch.allclose(whole.probs, chunked.probs, atol=1e-5)
    sims, neighbours = knn(features, 5, chunk_size=7)
    dense = features @ features.T
    dense.fill_diagonal_(-2)
    assert torch.allclose(sims, dense.topk(5, dim=1).values, atol=1e-6)
    assert (neighbours != torch.arange(len(features))[:, None]).all()


def test_class_without_labels_needs_init_centres():
    features, labels, true, _ = bank()
    labels[labels == 3] = -1
    with pytest.raises(SsmarError, match=r"classes \[3\] have no labelled row"):
        make_labeller("labelprop")(features, labels, 4)
    init = F.normalize(torch.stack([features[true == k].mean(dim=0) for k in range(4)]), dim=1)
    out = make_labeller("multiproto")(features, labels, 4, init_centres=init)
    assert torch.equal(out.assign[labels < 0], true[labels < 0])


# --- sinkhorn ------------------------------------------------------------------------------------

def test_sinkhorn_balance_matches_the_prior_on_skewed_input():
    gen = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(300, 4, generator=gen) + torch.tensor([3.0, 0.0, -1.0, -2.0]), dim=1)
    assert probs.sum(dim=0)[0] > 0.7 * 300  # skewed to class 0
    for prior in (torch.ones(4), torch.tensor([1.0, 2.0, 3.0, 4.0])):
        balanced = sinkhorn_balance(probs, prior, iters=50)
        assert torch.allclose(balanced.sum(dim=1), torch.ones(300), atol=1e-5)
        assert torch.allclose(balanced.sum(dim=0), prior / prior.sum() * 300, rtol=1e-3)
    assert sinkhorn_balance(probs, torch.ones(4)).sum(dim=0).std() < probs.sum(dim=0).std() / 5
    with pytest.raises(SsmarError, match="non-negative prior"):
        sinkhorn_balance(probs, torch.ones(3))


# --- errors --------------------------------------------------------------------------------------

def test_bad_labeller_names_and_options_are_one_line_errors_naming_the_choices():
    with pytest.raises(SsmarError, match=r"unknown labeller 'kmedoids'; choose one of \['kmeans', 'labelprop', "
                                         r"'multiproto', 'posterior'\]"):
        make_labeller("kmedoids")
    with pytest.raises(SsmarError, match=r"bad options \['per_clas'\] .*; valid options are \[.*'per_class'"):
        make_labeller("multiproto", per_clas=2)
    with pytest.raises(SsmarError, match=r"unknown balance 'equal'; choose one of \['labelled', 'none', 'uniform'\]"):
        make_labeller("labelprop", balance="equal")
    with pytest.raises(SsmarError, match=r"unknown score 'entropy'; choose one of \['distance', 'margin'\]"):
        make_labeller("kmeans", score="entropy")
    with pytest.raises(SsmarError, match="must lie in"):
        make_labeller("labelprop", alpha=1.0)
    with pytest.raises(SsmarError, match="must be > 0"):
        make_labeller("multiproto", per_class=0)


# --- screens -------------------------------------------------------------------------------------

def run_screen(screen, labeller, features, labels, groups, true, num_classes=4):
    logits = oracle_logits(true, num_classes)
    labelling = labeller(features, labels, num_classes, logits=logits)
    return labelling, screen(labeller, labelling, features, labels, groups, num_classes, logits=logits)


def check_screen(result, labelling, labels, num_classes=4):
    unlabelled = labels < 0
    assert result.keep.dtype == torch.bool and not result.keep[~unlabelled].any()
    assert result.thresholds.shape == (num_classes,) and result.thresholds.dtype == torch.float32
    assert torch.equal(result.keep, unlabelled & (labelling.score >= result.thresholds[labelling.assign]))
    assert ((result.weight >= 0) & (result.weight <= 1)).all()


@pytest.mark.parametrize("name", sorted(LABELLERS))
def test_precision_screen_keeps_nothing_on_noise_and_most_on_separable_features(name):
    labeller = make_labeller(name)
    screen = make_screen("precision", target=0.9)
    features, labels, true, groups = bank(noise=50.0, per_mode=50, labelled_per_mode=3, seed=1)  # no structure
    labelling, noise = run_screen(screen, labeller, features, labels, groups, torch.randint(0, 4, true.shape))
    check_screen(noise, labelling, labels)
    assert noise.keep.float().sum() <= 0.05 * (labels < 0).sum()
    features, labels, true, groups = bank(per_mode=50, labelled_per_mode=3)
    labelling, separable = run_screen(screen, labeller, features, labels, groups, true)
    check_screen(separable, labelling, labels)
    assert separable.keep.float().sum() >= 0.9 * (labels < 0).sum()
    assert torch.equal(labelling.assign[separable.keep], true[separable.keep])
    assert (separable.estimated_precision >= 0.9).all()
    assert torch.equal(separable.weight, separable.keep.float())


def test_precision_screen_cuts_the_uncertain_tail_softly_and_spares_single_clip_classes():
    features, labels, true, groups = bank(noise=0.35, per_mode=60, labelled_per_mode=5, seed=2)
    labels[(labels == 2) & (groups != groups[labels == 2][0])] = -1  # class 2: one labelled clip (and its views)
    labeller = make_labeller("kmeans", score="margin")
    labelling, hard = run_screen(make_screen("precision"), labeller, features, labels, groups, true)
    check_screen(hard, labelling, labels)
    unlabelled = labels < 0
    correct = labelling.assign == true
    assert correct[unlabelled].float().mean() < 0.93  # about 92 % right before screening
    assert 0.4 * unlabelled.sum() < hard.keep.sum() < 0.8 * unlabelled.sum()
    assert correct[hard.keep].float().mean() > 0.95
    _, soft = run_screen(make_screen("precision", soft=True), labeller, features, labels, groups, true)
    assert torch.equal(soft.keep, hard.keep)
    assert (soft.weight[~unlabelled] == 0).all() and (soft.weight[soft.keep] >= 0.9).all()
    assert (soft.weight[unlabelled & ~soft.keep] < 0.9).all()


def test_pooled_precision_curve_is_monotone_shrunk_and_conservative():
    position = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    correct = torch.tensor([0, 1, 0, 0, 1, 1, 0, 1]).bool()
    starts, values = pooled_precision_curve(position, correct, prior=0.0)
    # pool-adjacent-violators: [0] [1 0 0] [1 1 0] [1] -> 0, 1/3, 2/3, 1
    assert starts.tolist() == pytest.approx([0.1, 0.2, 0.5, 0.8])
    assert values.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert step_lookup(starts, values, torch.tensor([0.0, 0.25, 0.55, 0.9])).tolist() == pytest.approx(
        [0, 1 / 3, 2 / 3, 1])
    _, shrunk = pooled_precision_curve(position, correct, prior=4.0)
    assert (shrunk.diff() >= 0).all() and shrunk[-1] == pytest.approx((1 + 4 * 0.5) / 5)


def test_paper_screen_is_todays_screening_and_keeps_policy_state():
    features, labels, true, groups = bank(noise=0.5, seed=4)
    labeller = make_labeller("kmeans")
    labelling, result = run_screen(make_screen("paper"), labeller, features, labels, groups, true)
    today = semi_supervised_kmeans(features, labels, 4)  # the steps of today's offline round
    tau = make_threshold_policy("mean").compute(today.distance, today.assign, labels < 0, labels >= 0, 4)
    check_screen(result, labelling, labels)
    assert torch.equal(result.keep, screen(today.distance, today.assign, tau) & (labels < 0))
    assert torch.allclose(result.thresholds, -tau, atol=1e-6)
    ema = make_screen("paper", policy="ema", momentum=0.5)
    run_screen(ema, labeller, features, labels, groups, true)
    resumed = make_screen("paper", policy="ema", momentum=0.5)
    resumed.load_state_dict(ema.state_dict())
    assert torch.equal(run_screen(ema, labeller, features, labels, groups, true)[1].thresholds,
                       run_screen(resumed, labeller, features, labels, groups, true)[1].thresholds)
    with pytest.raises(SsmarError, match="resume with the same aplt screen"):
        make_screen("none").load_state_dict(ema.state_dict())
    _, everything = run_screen(make_screen("none"), labeller, features, labels, groups, true)
    assert torch.equal(everything.keep, labels < 0) and (everything.thresholds == -math.inf).all()


def test_bad_screen_names_and_options_are_one_line_errors_naming_the_choices():
    with pytest.raises(SsmarError, match=r"unknown screen 'quality'; choose one of \['confidence', 'none', 'paper', 'precision'\]"):
        make_screen("quality")
    with pytest.raises(SsmarError, match=r"bad options \['tagret'\] .*valid options are \[.*'target'"):
        make_screen("precision", tagret=0.9)
    with pytest.raises(SsmarError, match="need 0 < target <= 1"):
        make_screen("precision", target=1.5)
    with pytest.raises(SsmarError, match="unknown threshold policy 'median'; choose one of"):
        make_screen("paper", policy="median")


def test_precision_screen_falls_back_to_the_paper_threshold_with_one_labelled_clip_per_class():
    features, labels, true, groups = bank(noise=0.5, seed=4)
    for k in range(4):  # keep one labelled clip (and its views) per class
        labels[(labels == k) & (groups != groups[labels == k][0])] = -1
    labeller = make_labeller("kmeans")
    labelling, fallback = run_screen(make_screen("precision"), labeller, features, labels, groups, true)
    _, paper = run_screen(make_screen("paper"), labeller, features, labels, groups, true)
    assert fallback.keep.any() and torch.equal(fallback.keep, paper.keep)
    assert fallback.estimated_precision is None  # nothing could be estimated


def test_confidence_screen_keeps_what_the_posterior_is_sure_of():
    features, labels, true, groups = bank(per_mode=50, labelled_per_mode=3)
    labeller = make_labeller("posterior", balance="labelled")
    confident = 3 * oracle_logits(true, 4)  # right everywhere and sure of it
    labelling = labeller(features, labels, 4, logits=confident)
    sure = make_screen("confidence", threshold=0.9)(labeller, labelling, features, labels, groups, 4, logits=confident)
    check_screen(sure, labelling, labels)
    assert sure.keep.sum() >= 0.9 * (labels < 0).sum() and torch.equal(labelling.assign[sure.keep], true[sure.keep])
    noise_logits = torch.randn(len(labels), 4, generator=torch.Generator().manual_seed(5))
    noise, _, _, _ = bank(noise=50.0, per_mode=50, labelled_per_mode=3, seed=1)
    unsure = labeller(noise, labels, 4, logits=noise_logits)
    screened = make_screen("confidence", threshold=0.9)(labeller, unsure, noise, labels, groups, 4, logits=noise_logits)
    assert screened.keep.float().sum() <= 0.05 * (labels < 0).sum()
    with pytest.raises(SsmarError, match="needs a labeller with a posterior"):
        run_screen(make_screen("confidence"), make_labeller("kmeans"), features, labels, groups, true)
