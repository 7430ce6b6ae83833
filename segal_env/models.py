"""Segmentation networks built from torchvision parts, split into an encoder and a dropout head.

The split is what makes MC dropout cheap: ``SegmentationNet.mc_mutual_information`` runs the encoder once and only
the small head ``samples`` times (dropout sits right before the classifier, as in the paper's
BALD baseline). Pretrained ImageNet backbones are opt-in; nothing is downloaded by default.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any, Callable, Union

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet50
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.segmentation import (
    deeplabv3_mobilenet_v3_large,
    deeplabv3_resnet50,
    fcn_resnet50,
    lraspp_mobilenet_v3_large,
)
from torchvision.ops import Conv2dNormActivation, FeaturePyramidNetwork

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class MaskDropout(nn.Dropout):
    """Dropout with masks drawn by thresholding uniform noise.

    Same distribution as nn.Dropout; on CPU it is 2.5x faster (torch's bernoulli_ is slow there), which
    matters because BALD draws 20 masks over full-resolution head features at every env step.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return torch.zeros_like(x)
        return x * (torch.rand_like(x) >= self.p) * (1.0 / (1.0 - self.p))


class SegmentationNet(nn.Module):
    """encode(x) -> features (deterministic in eval mode); decode(features) -> logits (holds the dropout)."""

    dropout: MaskDropout

    def encode(self, x: torch.Tensor):
        raise NotImplementedError

    def decode(self, features) -> torch.Tensor:
        """Logits at the head's own (reduced) resolution."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.decode(self.encode(x))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)

    @torch.no_grad()
    def mc_mutual_information(self, x: torch.Tensor, samples: int) -> torch.Tensor:
        """BALD per pixel, H[E p] - E H[p], from ``samples`` dropout draws of the head: [B, h, w] at head resolution.

        The encoder runs once in eval mode; only the dropout layer samples. Running sums keep memory
        at one draw whatever the number of samples.
        """
        was_training = self.training
        self.eval()
        features = self.encode(x)
        self.dropout.train()
        try:
            mean_probs: Any = 0.0  # becomes a tensor on the first sample
            mean_entropy: Any = 0.0
            for _ in range(samples):
                probs = self.decode(features).float().softmax(1)
                mean_probs = mean_probs + probs / samples
                mean_entropy = mean_entropy - (probs * probs.clamp_min(1e-6).log()).sum(1) / samples
        finally:
            self.train(was_training)
        total_entropy = -(mean_probs * mean_probs.clamp_min(1e-6).log()).sum(1)
        return (total_entropy - mean_entropy).clamp_min(0.0)


def _backbone_weights(pretrained_backbone: bool) -> str | None:
    return "DEFAULT" if pretrained_backbone else None


class LRASPPNet(SegmentationNet):
    """LR-ASPP on MobileNetV3-Large: the fast CPU default (3.2M parameters)."""

    def __init__(self, num_classes: int, dropout: float = 0.5, pretrained_backbone: bool = False):
        super().__init__()
        base = lraspp_mobilenet_v3_large(
            weights=None, weights_backbone=_backbone_weights(pretrained_backbone), num_classes=num_classes
        )
        self.backbone = base.backbone
        self.cbr, self.scale = base.classifier.cbr, base.classifier.scale
        self.low_classifier, self.high_classifier = base.classifier.low_classifier, base.classifier.high_classifier
        self.dropout = MaskDropout(dropout)

    def encode(self, x):
        feats = self.backbone(x)
        high = feats["high"]
        context = self.cbr(high) * self.scale(high)
        low = feats["low"]
        return low, F.interpolate(context, size=low.shape[-2:], mode="bilinear", align_corners=False)

    def decode(self, features):
        low, context = features
        return self.low_classifier(self.dropout(low)) + self.high_classifier(self.dropout(context))


class SequentialHeadNet(SegmentationNet):
    """torchvision DeepLabV3 / FCN: everything but the last 1x1 classifier conv is the encoder."""

    def __init__(self, builder: Callable, num_classes: int, dropout: float = 0.5, pretrained_backbone: bool = False):
        super().__init__()
        base = builder(
            weights=None,
            weights_backbone=_backbone_weights(pretrained_backbone),
            num_classes=num_classes,
            aux_loss=False,
        )
        self.backbone = base.backbone
        layers = [m for m in base.classifier.children() if not isinstance(m, nn.Dropout)]
        self.neck = nn.Sequential(*layers[:-1])
        self.classifier = layers[-1]
        self.dropout = MaskDropout(dropout)

    def encode(self, x):
        return self.neck(self.backbone(x)["out"])

    def decode(self, features):
        return self.classifier(self.dropout(features))


class FPNResNet50(SegmentationNet):
    """FPN on ResNet-50 with a semantic head merging all levels at 1/4 resolution (the paper's network)."""

    def __init__(self, num_classes: int, dropout: float = 0.5, pretrained_backbone: bool = False, width: int = 128):
        super().__init__()
        body = resnet50(weights=_backbone_weights(pretrained_backbone) and "IMAGENET1K_V1")
        self.body = IntermediateLayerGetter(body, {f"layer{i}": str(i) for i in range(1, 5)})
        self.fpn = FeaturePyramidNetwork([256, 512, 1024, 2048], width)
        self.level_heads = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
            )
            for _ in range(4)
        )
        self.dropout = MaskDropout(dropout)
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def encode(self, x):
        levels = list(self.fpn(self.body(x)).values())
        size = levels[0].shape[-2:]
        merged = self.level_heads[0](levels[0])
        for head, level in zip(self.level_heads[1:], levels[1:]):
            merged = merged + F.interpolate(head(level), size=size, mode="bilinear", align_corners=False)
        return merged

    def decode(self, features):
        return self.classifier(self.dropout(features))


class UNetSmall(SegmentationNet):
    """A 0.5M-parameter U-Net from torchvision conv blocks, with its classifier at full resolution.

    The default for small images (the synthetic set): mobile backbones predict at 1/8 resolution,
    which cannot resolve one-pixel-wide poles on a 96x128 image. Trains from scratch in minutes on a CPU.
    """

    def __init__(
        self, num_classes: int, dropout: float = 0.5, pretrained_backbone: bool = False, widths=(16, 32, 64, 128)
    ):
        super().__init__()
        if pretrained_backbone:
            raise ValueError("unet_small has no pretrained backbone; pass pretrained_backbone=False")

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(Conv2dNormActivation(c_in, c_out, 3), Conv2dNormActivation(c_out, c_out, 3))

        self.down = nn.ModuleList(block(c_in, c_out) for c_in, c_out in zip((3, *widths[:-1]), widths))
        self.up = nn.ModuleList(block(wide + narrow, narrow) for wide, narrow in zip(widths[:0:-1], widths[-2::-1]))
        self.dropout = MaskDropout(dropout)
        self.classifier = nn.Conv2d(widths[0], num_classes, 1)
        self.depth = len(widths) - 1

    def encode(self, x):
        if x.shape[-2] % 2**self.depth or x.shape[-1] % 2**self.depth:
            raise ValueError(f"unet_small needs image sides divisible by {2**self.depth}, got {tuple(x.shape[-2:])}")
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = block(
                torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False), skip], 1)
            )
        return x

    def decode(self, features):
        return self.classifier(self.dropout(features))


MODELS: dict[str, Callable[..., nn.Module]] = {
    "lraspp_mobilenet_v3": LRASPPNet,
    "deeplabv3_mobilenet_v3": lambda **kw: SequentialHeadNet(deeplabv3_mobilenet_v3_large, **kw),
    "deeplabv3_resnet50": lambda **kw: SequentialHeadNet(deeplabv3_resnet50, **kw),
    "fcn_resnet50": lambda **kw: SequentialHeadNet(fcn_resnet50, **kw),
    "fpn_resnet50": FPNResNet50,
    "unet_small": UNetSmall,
    "unet_tiny": lambda **kw: UNetSmall(widths=(8, 16, 32, 64), **kw),
}
BUILT_IN_MODELS = tuple(MODELS)

ModelSpec = Union[str, Callable[..., nn.Module]]


class ForeignNet(SegmentationNet):
    """Adapter for a network segal did not build: ``net(x)`` maps normalised images [B, 3, H, W] to logits
    [B, C, h, w] (any h, w: ``forward`` upsamples to the input's size).

    MC dropout samples every dropout layer of ``net`` (``self.dropout`` holds them all) and, with no
    encoder/decoder split to exploit, runs the whole network once per sample. Subclass ``SegmentationNet``
    (``encode`` + ``decode`` with the dropout in the head) to run only the head per sample.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.dropout = nn.ModuleList(m for m in net.modules() if isinstance(m, nn.modules.dropout._DropoutNd))  # type: ignore[assignment]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        out = self.net(features)
        if isinstance(out, dict) and "out" in out:  # torchvision's segmentation models return {"out": logits, ...}
            out = out["out"]
        return out


def register_model(name: str, factory: Callable[..., nn.Module]) -> None:
    """Make ``model=name`` build ``factory(num_classes=C, ...)`` (see ``build_model`` for the contract)."""
    if name in BUILT_IN_MODELS:
        raise ValueError(f"'{name}' is a built-in model; register your network under another name")
    if not callable(factory):
        raise TypeError(f"register_model('{name}', ...) needs a callable returning a torch.nn.Module, got {factory!r}")
    MODELS[name] = factory


def model_factory(model: ModelSpec) -> Callable[..., nn.Module]:
    """The factory behind ``model=``: a registered name, an import path ``"package.module:function"`` or a callable."""
    if callable(model):
        return model
    if model in MODELS:
        return MODELS[model]
    if isinstance(model, str) and ":" in model:
        module_name, _, attribute = model.partition(":")
        try:
            factory = functools.reduce(getattr, attribute.split("."), importlib.import_module(module_name))
        except (ImportError, AttributeError) as err:
            raise ValueError(
                f"model '{model}': cannot import {attribute!r} from module {module_name!r} ({err})"
            ) from err
        if not callable(factory):
            raise ValueError(
                f"model '{model}' is not callable; it must be a function or class returning a torch.nn.Module"
            )
        return factory
    raise ValueError(
        f"unknown model {model!r}; choose from {sorted(MODELS)}, register yours with "
        "segal_env.models.register_model(name, factory), or pass a factory or its import path 'package.module:function'"
    )


def model_name(model: ModelSpec) -> str:
    """A JSON-able name for ``model=`` (the import path of a callable), for configs and the start-network cache."""
    if isinstance(model, str):
        return model
    return f"{getattr(model, '__module__', '?')}:{getattr(model, '__qualname__', type(model).__name__)}"


def build_model(
    model: ModelSpec, num_classes: int, dropout: float = 0.5, pretrained_backbone: bool = False
) -> SegmentationNet:
    """The network for ``model=``; ``pretrained_backbone`` needs the ImageNet weights already in torch's cache.

    A factory of your own is called as ``factory(num_classes=C)``, plus ``dropout=`` and ``pretrained_backbone=``
    when its signature names them, and must return a ``torch.nn.Module`` whose forward maps normalised images
    [B, 3, H, W] to logits [B, C, h, w] (or torchvision's ``{"out": logits}``). A ``SegmentationNet`` is used as
    it is; any other module is wrapped in ``ForeignNet``.
    """
    factory = model_factory(model)
    if isinstance(model, str) and model in BUILT_IN_MODELS:
        kwargs = {"dropout": dropout, "pretrained_backbone": pretrained_backbone}
    else:
        accepted = inspect.signature(factory).parameters  # only named parameters: **kwargs often forwards elsewhere
        kwargs = {
            k: v for k, v in (("dropout", dropout), ("pretrained_backbone", pretrained_backbone)) if k in accepted
        }
    try:
        net = factory(num_classes=num_classes, **kwargs)
    except (OSError, RuntimeError) as err:  # urllib errors are OSErrors
        if not pretrained_backbone:
            raise
        raise RuntimeError(
            f"could not load pretrained backbone weights for '{model_name(model)}' ({err}); they must already be in "
            "torch's cache (TORCH_HOME) because nothing is downloaded at run time, or pass pretrained_backbone=False"
        ) from err
    if not isinstance(net, nn.Module):
        raise TypeError(f"model '{model_name(model)}' returned {type(net).__name__}, not a torch.nn.Module")
    return net if isinstance(net, SegmentationNet) else ForeignNet(net)


def check_output_contract(model: SegmentationNet, num_classes: int, height: int, width: int, name: str) -> None:
    """One forward pass on a blank image: the logits must be [1, num_classes, h, w]; a clear error otherwise."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model.decode(model.encode(torch.zeros(1, 3, height, width)))
    except Exception as err:
        raise ValueError(f"model '{name}' fails on a [1, 3, {height}, {width}] image batch: {err}") from err
    finally:
        model.train(was_training)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 4 or logits.shape[:2] != (1, num_classes):
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(
            f"model '{name}' must map images [B, 3, H, W] to logits [B, {num_classes}, h, w] "
            f"({num_classes} classes in this data set), got {got}"
        )


def normalize(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> ImageNet-normalised float, on the images' device."""
    mean = torch.tensor(IMAGENET_MEAN, device=images_uint8.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images_uint8.device).view(1, 3, 1, 1)
    return (images_uint8.float() / 255.0 - mean) / std
