"""TSM-ResNet (Lin, Gan, Han, ICCV 2019): a 2-D ResNet whose blocks exchange features across time.

Every residual block shifts 1/``shift_div`` of its input channels one frame back in time
and another 1/``shift_div`` one frame forward (zero-padded at the clip ends) before its
first convolution. Only the residual branch sees the shift ("residual shift"), so each
frame keeps its own spatial features on the identity path and gains temporal context
at no extra FLOPs. The clip embedding is the mean over segments (TSN consensus).

Parameter names match torchvision's ``resnet{18,34,50,101}``, so ImageNet weights load
as they are; torchvision itself is needed only for ``pretrained="imagenet"``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from ssmar.errors import SsmarError

# ImageNet statistics: clips arrive as [0, 1] pixels so that augmentations work in pixel space.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def temporal_shift(x: torch.Tensor, segments: int, shift_div: int = 8) -> torch.Tensor:
    """Shift channels of ``[N*T, C, H, W]`` frames along T: the first C/shift_div take frame t+1, the next t-1.

    Ends are zero-padded; the remaining channels are unchanged. Works on channels-last input.
    """
    nt, c, h, w = x.shape
    x = x.view(nt // segments, segments, c, h, w)
    fold = c // shift_div
    out = torch.zeros_like(x)
    out[:, :-1, :fold] = x[:, 1:, :fold]  # frame t sees frame t + 1
    out[:, 1:, fold:2 * fold] = x[:, :-1, fold:2 * fold]  # frame t sees frame t - 1
    out[:, :, 2 * fold:] = x[:, :, 2 * fold:]
    return out.view(nt, c, h, w)


class _ShiftBlock(nn.Module):
    """A residual block whose residual branch gets temporally shifted input."""

    expansion = 1

    def __init__(self, shift_div: int, downsample: nn.Module | None):
        super().__init__()
        self.shift_div = shift_div
        self.downsample = downsample
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, segments: int) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.residual(temporal_shift(x, segments, self.shift_div)) + identity)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class BasicBlock(_ShiftBlock):
    def __init__(self, inplanes: int, planes: int, stride: int, shift_div: int, downsample: nn.Module | None):
        super().__init__(shift_div, downsample)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))


class Bottleneck(_ShiftBlock):
    """torchvision's ResNet v1.5 bottleneck: the stride sits on the 3x3 convolution."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int, shift_div: int, downsample: nn.Module | None):
        super().__init__(shift_div, downsample)
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        return self.bn3(self.conv3(x))


ARCHITECTURES: dict[int, tuple[type[_ShiftBlock], tuple[int, ...]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
}


class TSMResNet(nn.Module):
    """Input ``[N, 3, T, H, W]`` RGB in [0, 1]; output ``{"feat": [N, D], "logits": [N, classes]}``.

    T is read from the input, so ``data.segments`` alone sets it. When the weights are in
    channels-last format (the trainer's ``train.channels_last`` on CUDA), the frames are
    converted too, so every 2-D convolution runs channels-last.
    """

    def __init__(self, num_classes: int, depth: int = 50, in_channels: int = 3, shift_div: int = 8,
                 dropout: float = 0.0, pretrained: str | None = None):
        super().__init__()
        if depth not in ARCHITECTURES:
            raise SsmarError(f"model.depth={depth} is not available for tsm_resnet; use one of {sorted(ARCHITECTURES)}")
        if in_channels != 3:
            raise SsmarError(f"tsm_resnet takes RGB clips (3 channels), got {in_channels}; use data.type=video")
        if shift_div < 2:
            raise SsmarError(f"model.shift_div must be >= 2 (two folds of C/shift_div channels shift), got {shift_div}")
        block, counts = ARCHITECTURES[depth]
        self.depth = depth
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for index, (planes, count) in enumerate(zip((64, 128, 256, 512), counts)):
            blocks = []
            for position in range(count):
                stride = 2 if index > 0 and position == 0 else 1
                downsample = None
                if position == 0 and (stride != 1 or inplanes != planes * block.expansion):
                    downsample = nn.Sequential(nn.Conv2d(inplanes, planes * block.expansion, 1, stride, bias=False),
                                               nn.BatchNorm2d(planes * block.expansion))
                blocks.append(block(inplanes, planes, stride, shift_div, downsample))
                inplanes = planes * block.expansion
            # nn.Sequential for torchvision's key names (layer1.0.conv1...); forward passes T to each block.
            self.add_module(f"layer{index + 1}", nn.Sequential(*blocks))
        self.embed_dim = inplanes
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(inplanes, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if pretrained:
            self.load_backbone(pretrained)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Clip embedding ``[N, D]``: per-frame ResNet features averaged over the T segments."""
        n, c, t, h, w = x.shape
        x = x.transpose(1, 2).reshape(n * t, c, h, w)
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        if self.conv1.weight.is_contiguous(memory_format=torch.channels_last) and not self.conv1.weight.is_contiguous():
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in layer:
                x = block(x, t)
        return x.mean(dim=(2, 3)).view(n, t, -1).mean(dim=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feat = self.embed(x)
        return {"feat": feat, "logits": self.head(self.dropout(feat))}

    def load_backbone(self, source: str) -> None:
        """Load ImageNet ResNet weights: ``"imagenet"`` (via torchvision) or a torchvision-format file.

        The classifier (``fc``) is dropped; every other backbone tensor must be present.
        """
        state = {k: v for k, v in _pretrained_state(source, self.depth).items() if not k.startswith("fc.")}
        try:
            missing, unexpected = self.load_state_dict(state, strict=False)
        except RuntimeError as exc:
            raise SsmarError(f"model.pretrained={source}: weights do not fit TSM-ResNet-{self.depth} "
                             f"({str(exc).splitlines()[-1].strip()}); give a ResNet-{self.depth} checkpoint") from exc
        missing = [k for k in missing if not k.startswith("head.")]
        if missing or unexpected:
            raise SsmarError(f"model.pretrained={source}: not a torchvision ResNet-{self.depth} state_dict "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]}); "
                             "give a file saved from torchvision.models.resnet*().state_dict()")


def _pretrained_state(source: str, depth: int) -> dict[str, torch.Tensor]:
    if source == "imagenet":
        try:
            import torchvision
        except ImportError:
            raise SsmarError("model.pretrained=imagenet needs torchvision, which is not installed; install the "
                             "torchvision build matching your torch, or set model.pretrained to a local "
                             f"torchvision ResNet-{depth} state_dict file") from None
        return getattr(torchvision.models, f"resnet{depth}")(weights="IMAGENET1K_V1").state_dict()
    path = Path(source)
    if not path.is_file():
        raise SsmarError(f"model.pretrained: file not found: {path}; give a torchvision ResNet-{depth} "
                         "state_dict file, 'imagenet' (needs torchvision) or null")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or corrupt files
        raise SsmarError(f"{path}: unreadable as a PyTorch state_dict ({type(exc).__name__}); "
                         "give a file saved with torch.save(model.state_dict())") from exc
    for key in ("state_dict", "model"):  # common wrappers of training checkpoints
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise SsmarError(f"{path}: holds a {type(state).__name__}, not a state_dict")
    return {k.removeprefix("module."): v for k, v in state.items()}
