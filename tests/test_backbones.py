"""Graph backbones (ST-GCN, ST-GCN++, CTR-GCN): shapes, gradients, building from the config with every
stream combination, a few training steps with every algorithm, and each GPU recipe at a tiny budget."""

import itertools
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import generated, tiny_config
from ssmar.algorithms import ALGORITHMS
from ssmar.config import DEFAULTS, load_config
from ssmar.data.layouts import get_layout
from ssmar.data.skeleton_format import save_skeleton_pickle
from ssmar.data.streams import STREAMS, bone_parents
from ssmar.engine.trainer import Trainer
from ssmar.errors import SsmarError
from ssmar.models import BACKBONES, backbone_class, build_model
from ssmar.models.ctrgcn import CTRGCN
from ssmar.models.stgcnpp import STGCNPlusPlus

GRAPH_BACKBONES = ["stgcn", "stgcnpp", "ctrgcn"]
KINECT = get_layout("kinect_v1_20")
TINY_WIDTH = {"channels": [8, 16], "strides": [1, 2]}
GPU_RECIPES = sorted((Path(__file__).resolve().parents[1] / "configs" / "gpu").glob("*.yaml"))


def tiny_model(name: str, **overrides) -> torch.nn.Module:
    return build_model({**DEFAULTS["model"], "name": name, **TINY_WIDTH, **overrides}, 5, KINECT, 3)


@pytest.mark.parametrize("name", GRAPH_BACKBONES)
@pytest.mark.parametrize("persons", [1, 2])
def test_output_shapes_for_one_and_two_persons(name: str, persons: int) -> None:
    model = tiny_model(name).eval()
    out = model(torch.randn(3, 3, 12, KINECT.num_joints, persons))
    assert out["feat"].shape == (3, model.embed_dim) == (3, 16)
    assert out["logits"].shape == (3, 5)
    torch.testing.assert_close(out["logits"], model.head(out["feat"]))  # APLT scores the embedding with the head


def test_published_widths_match_the_papers_parameter_counts() -> None:
    """10 blocks, 64 -> 256 channels; PYSKL reports 1.39 M parameters for ST-GCN++ and the CTR-GCN paper 1.46 M
    (60 classes, 25 joints)."""
    ntu = get_layout("ntu_rgbd_25").adjacency("spatial")
    for cls, published in ((STGCNPlusPlus, 1.39e6), (CTRGCN, 1.46e6)):
        model = cls(60, ntu)
        assert len(model.blocks) == 10 and model.embed_dim == 256
        assert abs(sum(p.numel() for p in model.parameters()) - published) / published < 0.03


@pytest.mark.parametrize("name", GRAPH_BACKBONES)
def test_gradient_reaches_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = tiny_model(name, streams=list(STREAMS))
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(4, 3, 12, KINECT.num_joints, 2), torch.tensor([0, 1, 2, 3])
    for _ in range(2):  # after one step CTR-GCN's refinement weight alpha has left 0, so its branch is live
        optimiser.zero_grad()
        F.cross_entropy(model(x)["logits"], y).backward()
        optimiser.step()
    dead = [key for key, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead


@pytest.mark.parametrize("name", GRAPH_BACKBONES)
def test_built_from_the_config_with_every_stream_combination(name: str) -> None:
    assert name in BACKBONES
    combinations = [list(c) for k in range(1, 5) for c in itertools.combinations(STREAMS, k)]
    x = torch.randn(2, 3, 8, KINECT.num_joints, 1)
    for streams in combinations:
        cfg = load_config(None, [f"model.name={name}", "model.channels=[8,16]", "model.strides=[1,2]",
                                 f"model.streams=[{','.join(streams)}]"])["model"]
        model = build_model(cfg, 5, KINECT, 3).eval()
        assert isinstance(model, backbone_class(name))
        assert model.data_bn.num_features == 3 * len(streams) * KINECT.num_joints
        assert torch.equal(model.stream_input.parents, torch.as_tensor(bone_parents(KINECT)))
        assert torch.isfinite(model(x)["logits"]).all()


@pytest.mark.parametrize("name", ["stgcnpp", "ctrgcn"])
def test_a_key_the_new_backbones_do_not_take_is_an_error(name: str) -> None:
    cfg = load_config(None, [f"model.name={name}", "model.temporal_kernel=5"])["model"]
    with pytest.raises(SsmarError, match=f"model.temporal_kernel=5: not a setting of model.name={name}"):
        build_model(cfg, 5, KINECT, 3)


# a few steps of every algorithm; APLT's warm-up and period put its first offline round (feature bank, labeller,
# prototypes) at the start of epoch 2
ALGORITHM_RUN = ["train.epochs=2", "train.steps_per_epoch=2", "train.eval_every=2", "data.labelled_ratio=0.5",
                 "train.unsup_rampup=0", "algorithm.params.warmup_epochs=1", "algorithm.params.period=1",
                 "algorithm.params.num_aug=1", "algorithm.params.screen_params={threshold: 0.0}"]
APLT_ONLY = ("algorithm.params.warmup_epochs", "algorithm.params.period", "algorithm.params.num_aug",
             "algorithm.params.screen_params")


@pytest.mark.parametrize("name", ["stgcnpp", "ctrgcn"])
@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_every_algorithm_trains_a_few_steps(name: str, algorithm: str, synth_file: Path, tmp_path: Path) -> None:
    overrides = [o for o in ALGORITHM_RUN if algorithm == "aplt" or not o.startswith(APLT_ONLY)]
    torch.manual_seed(0)
    trainer = Trainer(tiny_config(synth_file, tmp_path, f"model.name={name}", f"algorithm.name={algorithm}",
                                  *overrides), tmp_path)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    final = trainer.fit()
    assert trainer.context.step == 4
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    assert 0 <= final["top1"] <= 100
    if algorithm == "aplt":
        rounds = json.loads((tmp_path / "aplt_rounds.json").read_text())["rounds"]
        assert len(rounds) >= 1 and rounds[0]["coverage"] > 0
        prototypes = trainer.algorithm.memory.prototypes
        assert prototypes.shape == (trainer.data.num_classes, trainer.model.embed_dim)
        torch.testing.assert_close(prototypes.norm(dim=1), torch.ones(len(prototypes)))  # every class has one


@pytest.fixture(scope="module")
def recipe_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Generated clips in each recipe's layout (UTD-MHAD: Kinect v1; NTU: 25 joints, 2 persons)."""
    folder = tmp_path_factory.mktemp("recipes")
    files = {}
    for layout, splits in (("kinect_v1_20", None), ("ntu_rgbd_25", ("xsub_train", "xsub_val"))):
        data = generated(layout, 3, clips_per_class=3)
        if splits:
            data["split"] = dict(zip(splits, data["split"].values()))
        files[layout] = folder / f"{layout}.pkl"
        save_skeleton_pickle(data, files[layout])
    return files


@pytest.mark.parametrize("recipe", GPU_RECIPES, ids=lambda path: path.stem)
def test_gpu_recipe_runs_here_at_a_tiny_budget(recipe: Path, recipe_data: dict[str, Path], tmp_path: Path) -> None:
    published = load_config(recipe)
    assert len(published["model"]["channels"]) == 10 and published["model"]["channels"][-1] == 256
    data_file = recipe_data["ntu_rgbd_25" if recipe.stem.startswith("ntu") else "kinect_v1_20"]
    cfg = load_config(recipe, [f"data.file={data_file}", f"work_dir={tmp_path}", "data.frames=16", "train.epochs=1",
                               "train.steps_per_epoch=1", "train.batch_size=2", "train.eval_every=1",
                               "train.warmup_epochs=0", "threads=1", "train.progress=false"])
    trainer = Trainer(cfg, tmp_path)
    assert [block.residual is not None for block in trainer.model.blocks].count(False) == 1
    assert trainer.model.embed_dim == 256
    final = trainer.fit()
    assert trainer.context.step == 1 and 0 <= final["top1"] <= 100
