"""RGB video path: temporal shift, TSM-ResNet, clip-consistent augmentations, video lists, training, fusion."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ssmar.cli.main import main as ssmar_main
from ssmar.config import load_config
from ssmar.data.skeleton_format import save_skeleton_pickle
from ssmar.data.synth import generate_synthetic
from ssmar.engine.fusion import ScoredClips, late_fusion, parse_weights
from ssmar.engine.inputs import build_augmentations
from ssmar.engine.runs import run_training
from ssmar.errors import SsmarError
from ssmar.models import build_model
from ssmar.models.tsm import TSMResNet, temporal_shift
from ssmar.video.augment import (
    COLOUR_FUNCTIONS, GEOMETRIC_OPS, RAND_OPS, VideoAugment, _geometric, _warp, video_strong_augment,
    video_weak_augment,
)
from ssmar.video.dataset import FrameCache, VideoClips, decode_video, segment_indices

DEMO_CLIPS = ["A1_shaking_body__0030_01_0002.mp4", "A2_turning_around__0078_01_0005.mp4",
              "A3_sitting_straightly__0020_01_0008.mp4", "B1_nodding__0019_02_0078.mp4",
              "B2_shaking_head__0035_02_0007.mp4", "B3_turning_head__0010_02_0101.mp4"]
THREE_CLASSES = [0, 0, 1, 1, 2, 2]  # six clips under three classes, so that an SSL split leaves unlabelled clips


# ------------------------------------------------------------------ temporal shift and backbone
def test_temporal_shift_moves_two_folds_one_step_each_way() -> None:
    n, t, c = 2, 4, 16
    x = torch.randn(n * t, c, 3, 3)
    out = temporal_shift(x, t, shift_div=8).view(n, t, c, 3, 3)
    x = x.view(n, t, c, 3, 3)
    fold = c // 8
    assert torch.equal(out[:, :-1, :fold], x[:, 1:, :fold])  # first fold: frame t takes t + 1
    assert torch.equal(out[:, -1, :fold], torch.zeros_like(out[:, -1, :fold]))  # zero-padded end
    assert torch.equal(out[:, 1:, fold:2 * fold], x[:, :-1, fold:2 * fold])  # second fold: t takes t - 1
    assert torch.equal(out[:, 0, fold:2 * fold], torch.zeros_like(out[:, 0, fold:2 * fold]))
    assert torch.equal(out[:, :, 2 * fold:], x[:, :, 2 * fold:])  # the rest untouched


@pytest.mark.parametrize("depth, dim, keys", [(18, 512, 122), (50, 2048, 320)])
def test_tsm_resnet_shapes_and_torchvision_key_names(depth: int, dim: int, keys: int) -> None:
    model = build_model({"name": "tsm_resnet", "depth": depth}, 5, None, 3).eval()
    out = model(torch.rand(2, 3, 3, 32, 32))
    assert out["feat"].shape == (2, dim) and out["logits"].shape == (2, 5) and model.embed_dim == dim
    state = model.state_dict()
    assert len(state) == keys  # torchvision resnet18: 122 entries, resnet50: 320 (their fc <-> our head)
    assert {"conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
            "layer4.1.bn2.num_batches_tracked", "head.weight"} <= set(state)


def test_model_keys_of_another_backbone_are_rejected_unless_left_at_their_default() -> None:
    section = load_config(None, ["model.name=tsm_resnet", "model.depth=18"])["model"]  # ST-GCN keys at defaults
    assert build_model(section, 5, None, 3).embed_dim == 512
    with pytest.raises(SsmarError, match=r"model.channels=\[8\]: not a setting of model.name=tsm_resnet, which takes "
                                         r"model.depth, model.dropout, model.pretrained, model.shift_div;"):
        build_model({**section, "channels": [8]}, 5, None, 3)
    stgcn = load_config(None, ["model.depth=18"])["model"]
    with pytest.raises(SsmarError, match=r"model.depth=18: not a setting of model.name=stgcn"):
        build_model(stgcn, 5, None, 3)


def test_clips_of_a_batch_do_not_mix() -> None:
    """Shift and consensus stay within a clip: changing one clip leaves the other's output alone."""
    model = TSMResNet(3, depth=18).eval()
    x = torch.rand(2, 3, 4, 32, 32)
    changed = x.clone()
    changed[1] = torch.rand(3, 4, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x)["logits"][0], model(changed)["logits"][0], atol=1e-5)


def test_channels_last_gives_the_same_output() -> None:
    torch.manual_seed(0)
    model = TSMResNet(4, depth=18).eval()
    x = torch.rand(2, 3, 2, 32, 32)
    with torch.no_grad():
        expected = model(x)["logits"]
        model.to(memory_format=torch.channels_last)
        assert torch.allclose(model(x)["logits"], expected, atol=1e-4)


def test_pretrained_loads_a_torchvision_format_file(tmp_path: Path) -> None:
    source = TSMResNet(10, depth=18)
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("head.")}
    state.update({"fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)})
    path = tmp_path / "resnet18.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, path)  # DataParallel-style prefixes are stripped
    model = build_model({"name": "tsm_resnet", "depth": 18, "pretrained": str(path)}, 3, None, 3)
    assert torch.equal(model.layer3[1].conv2.weight, source.layer3[1].conv2.weight)
    with pytest.raises(SsmarError, match="ResNet-50"):
        TSMResNet(3, depth=50, pretrained=str(path))
    with pytest.raises(SsmarError, match="not found"):
        TSMResNet(3, depth=18, pretrained=str(tmp_path / "missing.pth"))


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None,
                    reason="torchvision is installed; the error path needs it absent")
def test_imagenet_without_torchvision_is_a_clear_error() -> None:
    with pytest.raises(SsmarError, match="needs torchvision"):
        TSMResNet(3, depth=18, pretrained="imagenet")


def test_stgcn_without_a_skeleton_layout_is_a_clear_error() -> None:
    with pytest.raises(SsmarError, match="tsm_resnet"):
        build_model({"name": "stgcn"}, 3, None, 3)


# ------------------------------------------------------------------ augmentations
def still_clips(n: int = 4, t: int = 3, size: int = 40, seed: int = 0) -> torch.Tensor:
    """Clips whose T frames are identical (a different random image per clip)."""
    image = torch.rand(n, 3, 1, size, size, generator=torch.Generator().manual_seed(seed))
    return image.expand(n, 3, t, size, size).contiguous()


def assert_frames_identical(x: torch.Tensor) -> None:
    assert torch.equal(x, x[:, :, :1].expand_as(x))


AUGMENTS = {
    "weak": lambda: video_weak_augment({}, 24),
    "strong": lambda: video_strong_augment({}, 24),
    "every_op": lambda: VideoAugment(24, (0.3, 1.0), (0.75, 1.33), 0.5, num_ops=len(RAND_OPS), magnitude=7,
                                     erase_p=1.0),
}


@pytest.mark.parametrize("name", list(AUGMENTS))
def test_augmentation_is_consistent_across_frames_and_seeded(name: str) -> None:
    augment = AUGMENTS[name]()
    x = still_clips()
    out = augment(x, torch.Generator().manual_seed(1))
    assert out.shape == (4, 3, 3, 24, 24) and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1
    assert_frames_identical(out)
    assert torch.equal(out, augment(x, torch.Generator().manual_seed(1)))
    assert not torch.equal(out, augment(x, torch.Generator().manual_seed(2)))
    twins = still_clips(n=1).expand(2, -1, -1, -1, -1)  # the same clip twice gets different parameters
    views = augment(twins, torch.Generator().manual_seed(3))
    assert not torch.equal(views[0], views[1])


@pytest.mark.parametrize("op", list(COLOUR_FUNCTIONS))
def test_each_colour_op_keeps_frames_identical(op: str) -> None:
    out = COLOUR_FUNCTIONS[op](still_clips(), torch.tensor([0.9, -0.9, 0.5, -0.2]))
    assert_frames_identical(out)
    assert not torch.equal(out, still_clips())


@pytest.mark.parametrize("op", GEOMETRIC_OPS)
def test_each_geometric_op_keeps_frames_identical(op: str) -> None:
    out = _warp(still_clips(), _geometric(op, torch.tensor([0.9, -0.9, 0.5, -0.2]))[:, :2], 40)
    assert_frames_identical(out)
    assert not torch.allclose(out, still_clips())


def test_identity_warp_reproduces_the_clip() -> None:
    x = torch.rand(2, 3, 2, 16, 16)
    assert torch.allclose(_warp(x, torch.eye(3)[:2].repeat(2, 1, 1), 16), x, atol=1e-5)


def test_augmentation_input_checks_and_options() -> None:
    augment = video_weak_augment({}, 16)
    with pytest.raises(SsmarError, match=r"\[N, 3, T, H, W\]"):
        augment(torch.rand(2, 3, 16, 16), torch.Generator())
    with pytest.raises(SsmarError, match="unknown weak video augmentation option"):
        video_weak_augment({"rotate_degrees": 10}, 16)
    with pytest.raises(SsmarError, match="magnitude"):
        video_strong_augment({"magnitude": 11}, 16)


def test_trainer_picks_augmentations_by_data_type() -> None:
    weak, strong = build_augmentations(load_config(None, ["data.type=video", "data.resolution=48"]))
    assert isinstance(weak, VideoAugment) and weak.size == 48 and strong.num_ops == 2
    weak, _ = build_augmentations(load_config(None))
    assert not isinstance(weak, VideoAugment)


# ------------------------------------------------------------------ clips and lists
def test_segment_sampling_tsn_style() -> None:
    assert segment_indices(80, 8, None).tolist() == [5, 15, 25, 35, 45, 55, 65, 75]  # centres
    assert segment_indices(80, 8, np.zeros(8)).tolist() == list(range(0, 80, 10))
    assert segment_indices(80, 8, np.full(8, 0.999)).tolist() == list(range(9, 80, 10))
    assert segment_indices(3, 8, None).max() == 2  # shorter than the segment count: frames repeat


def test_video_clips_index_like_a_tensor_and_draw_frames_from_the_torch_rng(tmp_path: Path) -> None:
    cache = FrameCache(short_side=12, mode="memory")
    paths = [tmp_path / f"v{i}.mp4" for i in range(3)]
    for i, path in enumerate(paths):  # frame f of video i is filled with value 10 * i + f
        cache.memory[path] = (10 * i + np.arange(20, dtype=np.uint8))[:, None, None, None].repeat(12, 1) \
            .repeat(12, 2).repeat(3, 3)
    train = VideoClips(paths, segments=4, size=12, cache=cache, random_offsets=True, threads=2)
    test = VideoClips(paths, segments=4, size=8, cache=cache, random_offsets=False)
    assert train.shape == (3, 3, 4, 12, 12) and len(train) == 3 and test.shape[1] == 3
    batch = test[torch.tensor([2, 0])]
    assert batch.shape == (2, 3, 4, 8, 8) and batch.dtype == torch.float32
    assert (batch[:, 0, :, 0, 0] * 255).round().tolist() == [[22, 27, 32, 37], [2, 7, 12, 17]]
    assert torch.equal(test[1:3], test[[1, 2]])
    torch.manual_seed(5)
    first = train[[0, 1, 2]]
    torch.manual_seed(5)
    assert torch.equal(first, train[np.array([0, 1, 2])])
    frames = (first[:, 0, :, 0, 0] * 255).round() - torch.tensor([0, 10, 20])[:, None]
    assert ((frames >= torch.tensor([0, 5, 10, 15])) & (frames < torch.tensor([5, 10, 15, 20]))).all()
    with pytest.raises(IndexError):
        train[[3]]


def test_frame_cache_folder_decodes_once_and_survives_a_corrupt_entry(shared_data: Path, tmp_path: Path) -> None:
    video = shared_data / "ma52_demo" / DEMO_CLIPS[5]
    frames = decode_video(video, 24)
    assert frames.shape[1:] == (24, 24, 3) and frames.dtype == np.uint8 and len(frames) >= 45
    cache = FrameCache(24, str(tmp_path / "cache"))
    assert np.array_equal(cache.frames(video), frames)
    (entry,) = (tmp_path / "cache").glob("*.npz")
    assert np.array_equal(FrameCache(24, str(tmp_path / "cache")).frames(video), frames)
    entry.write_bytes(b"truncated")
    assert np.array_equal(FrameCache(24, str(tmp_path / "cache")).frames(video), frames)


def write_list(path: Path, labels: list[int]) -> Path:
    path.write_text("".join(f"{clip} {label}\n" for clip, label in zip(DEMO_CLIPS, labels)))
    return path


def video_overrides(list_file: Path, demo: Path, cache: Path) -> list[str]:
    return [f"data.train_list={list_file}", f"data.test_list={list_file}", f"data.video_root={demo}",
            f"data.frame_cache={cache}", "data.type=video", "data.segments=3", "data.resolution=32",
            "data.decode_threads=2", "model.name=tsm_resnet", "model.depth=18", "train.epochs=2",
            "train.steps_per_epoch=2", "train.batch_size=2", "train.uratio=1", "train.warmup_epochs=0",
            "train.eval_every=1", "train.lr=0.01", "threads=2", "train.progress=false"]


def test_video_list_errors_name_the_fix(shared_data: Path, tmp_path: Path) -> None:
    demo = shared_data / "ma52_demo"
    with pytest.raises(SsmarError, match="data.train_list"):
        run_training(load_config(None, ["data.type=video", f"work_dir={tmp_path / 'a'}"]))
    cfg = load_config(None, video_overrides(demo / "demo_list.txt", demo, tmp_path / "cache")
                      + [f"data.label_names={demo / 'label_name.txt'}", f"work_dir={tmp_path / 'b'}"])
    with pytest.raises(SsmarError, match="allow_missing_classes"):
        run_training(cfg)
    bad = tmp_path / "bad.txt"
    bad.write_text("missing.mp4 0\n")
    with pytest.raises(SsmarError, match="video_root"):
        run_training(load_config(None, video_overrides(bad, demo, tmp_path / "cache") + [f"work_dir={tmp_path / 'c'}"]))


# ------------------------------------------------------------------ training and fusion on the demo clips
@pytest.fixture(scope="module")
def video_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A supervised TSM-R18 run on the six demo clips (3 classes); returns its work dir and overrides."""
    root = tmp_path_factory.mktemp("video")
    overrides = video_overrides(write_list(root / "three.txt", THREE_CLASSES), shared_data / "ma52_demo",
                                root / "frames")
    run_training(load_config(None, overrides + ["data.labelled_ratio=1.0", f"work_dir={root / 'supervised'}"]))
    return root, overrides


def test_supervised_video_run_writes_metrics(video_run: tuple[Path, list[str]]) -> None:
    metrics = json.loads((video_run[0] / "supervised" / "metrics.json").read_text())
    assert [record["epoch"] for record in metrics["history"]] == [1, 2]
    assert metrics["data"]["type"] == "video" and metrics["data"]["train_clips"] == 6
    assert metrics["final"]["num_samples"] == 6 and 0 <= metrics["final"]["top1"] <= 100
    assert len(list((video_run[0] / "frames").glob("*.npz"))) == 6  # each video decoded once, then cached


def test_fixmatch_video_run_with_unlabelled_clips(video_run: tuple[Path, list[str]]) -> None:
    root, overrides = video_run
    work_dir = root / "fixmatch"
    final = run_training(load_config(None, overrides + [
        "algorithm.name=fixmatch", "algorithm.params.p_cutoff=0.0", "data.labelled_ratio=0.5",
        "train.amp=true", "train.channels_last=true",  # CUDA-only options must not break a CPU run
        f"work_dir={work_dir}"]))
    metrics = json.loads((work_dir / "metrics.json").read_text())
    assert metrics["data"]["labelled"] == 3 and metrics["data"]["unlabelled"] == 3
    assert metrics["history"][-1]["loss_unsup"] > 0 and final["num_samples"] == 6


def test_eval_command_scores_a_video_checkpoint(video_run: tuple[Path, list[str]], tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    checkpoint = video_run[0] / "supervised" / "latest.pt"
    assert ssmar_main(["eval", "--checkpoint", str(checkpoint), "--out", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[0])
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["num_samples"] == 6 and summary["top1"] == round(saved["top1"], 2)


def pose_checkpoint(root: Path) -> Path:
    """A tiny ST-GCN trained one step on synthetic skeletons named like the demo videos (3 classes)."""
    data = generate_synthetic(num_subjects=2, clips_per_class=1, test_subjects=1)
    picked = [next(a for a in data["annotations"] if a["label"] == cls and a["subject"] == s)
              for cls in range(3) for s in range(2)]
    for annotation, clip, label in zip(picked, DEMO_CLIPS, THREE_CLASSES):
        annotation.update(frame_dir=Path(clip).stem, label=label)
    names = [a["frame_dir"] for a in picked]
    save_skeleton_pickle({"annotations": picked, "split": {"train": names, "test": names},
                          "class_names": ["a", "b", "c"], "layout": data["layout"]}, root / "pose.pkl")
    run_training(load_config(None, [f"data.file={root / 'pose.pkl'}", "data.labelled_ratio=1.0", "data.frames=16",
                                    "model.channels=[8,16]", "model.strides=[1,2]", "train.epochs=1",
                                    "train.steps_per_epoch=1", "train.batch_size=2", "train.eval_every=1",
                                    "threads=2", "train.progress=false", f"work_dir={root / 'pose'}"]))
    return root / "pose" / "latest.pt"


def test_fuse_command_matches_pose_and_video_clips_by_name(video_run: tuple[Path, list[str]], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    pose, video = pose_checkpoint(tmp_path), video_run[0] / "supervised" / "latest.pt"
    out = tmp_path / "fusion"
    assert ssmar_main(["eval", "--fuse", str(pose), str(video), "--weights", "1,2", "--out", str(out)]) == 0
    result = json.loads((out / "metrics.json").read_text())
    assert result["matched"] == 6 and result["unmatched"] == [0, 0] and result["weights"] == [1.0, 2.0]
    assert len(result["models"]) == 2 and result["fused"]["num_samples"] == 6
    assert (out / "confusion.png").is_file() and '"fused"' in capsys.readouterr().out


# ------------------------------------------------------------------ late fusion on toy scores
def scored(names: list[str], labels: list[int], probs: list[list[float]], source: str) -> ScoredClips:
    return ScoredClips(np.array(probs), np.array(labels), names, ["a", "b"], source=source)


def test_late_fusion_matches_by_name_and_weights_probabilities() -> None:
    pose = scored(["x/c1", "x/c2", "x/c3"], [0, 1, 1], [[0.9, 0.1], [0.6, 0.4], [0.5, 0.5]], "pose")
    rgb = scored(["x/c2.mp4", "x/c1.mp4", "x/c9.mp4"], [1, 0, 0], [[0.0, 1.0], [0.3, 0.7], [1, 0]], "rgb")
    fused, report = late_fusion([pose, rgb], [1.0, 3.0])
    assert fused.names == ["x/c1", "x/c2"] and fused.labels.tolist() == [0, 1]
    assert np.allclose(fused.probs, [[(0.9 + 3 * 0.3) / 4, (0.1 + 3 * 0.7) / 4], [0.15, 0.85]])
    assert report == {"matched": 2, "unmatched": [1, 1]}
    only_pose, _ = late_fusion([pose, rgb], [1.0, 0.0])
    assert np.allclose(only_pose.probs, pose.probs[:2])


def test_late_fusion_refuses_inconsistent_inputs() -> None:
    pose = scored(["c1"], [0], [[1.0, 0.0]], "pose")
    with pytest.raises(SsmarError, match="disagree"):
        late_fusion([pose, scored(["c1.mp4"], [1], [[1.0, 0.0]], "rgb")], [1, 1])
    with pytest.raises(SsmarError, match="no clip names in common"):
        late_fusion([pose, scored(["c2.mp4"], [0], [[1.0, 0.0]], "rgb")], [1, 1])
    with pytest.raises(SsmarError, match="different numbers of classes"):
        late_fusion([pose, ScoredClips(np.ones((1, 3)) / 3, np.array([0]), ["c1"], ["a", "b", "c"])], [1, 1])
    with pytest.raises(SsmarError, match="need 2 weights"):
        parse_weights("1,2,3", 2)
    with pytest.raises(SsmarError, match="comma-separated"):
        parse_weights("1;2", 2)
