"""The paper's four CIFAR networks in PyTorch, after the reference code (test fixtures).

Written after bearpaw/pytorch-classification (``models/cifar/preresnet.py``,
``resnext.py``, ``wrn.py``, ``densenet.py``, commit 24f1c45): same classes,
module names, forward passes and pooling, so that a state_dict key names the
reference's own module. Only these changes, each to reach a config the
reference cannot build or a place the zoo puts dropout:

- every network takes ``drop`` (a `Drop`): dropout at the zoo's positions
  (``zoo.DropoutPlan``), at the place each zoo family puts it;
- `CifarResNeXt` takes ``base_width`` (the reference fixes 64: its grouped
  width ``cardinality * out_channels // widen_factor``) and its classifier
  reads ``stages[3]`` channels (the reference hard-codes 1024);
- `DenseNet` takes ``stem`` (the reference always uses ``2 * growthRate``)
  and computes ``n`` as an int for basic blocks (the reference's
  ``(depth - 4) / 3`` is a float under Python 3 and does not build).

``RENAMES`` maps each network's module names to the zoo's layer names;
`transfer` copies every tensor through it and checks the mapping.
"""

import math
import re

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "RENAMES",
    "CifarResNeXt",
    "DenseNet",
    "DenseNetBasicBlock",
    "DenseNetBottleneck",
    "Drop",
    "MappingError",
    "PreResNet",
    "WideResNet",
    "randomize_batch_norms",
    "transfer",
]


class Drop:
    """Dropout at one zoo position (``"none"``, ``"before_bn"``, ``"before_conv"``,
    ``"after_conv"``, ``"head"``); not a module, so it adds no state_dict entry."""

    def __init__(self, position="none", rate=0.0):
        self.position = position
        self.rate = rate

    def __call__(self, x, position, training):
        """``x`` through ``F.dropout`` if ``position`` is the planned one."""
        if position != self.position or self.rate == 0:
            return x
        return F.dropout(x, p=self.rate, training=training)


# -- preresnet.py -------------------------------------------------------------------


def conv3x3(in_planes, out_planes, stride=1):
    "3x3 convolution with padding"
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class PreResNetBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, drop=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.downsample = downsample
        self.stride = stride
        self.drop = drop or Drop()

    def forward(self, x):
        residual = x

        out = self.bn1(x)
        out = self.relu(out)
        out = self.conv1(out)

        out = self.drop(out, "before_bn", self.training)
        out = self.bn2(out)
        out = self.relu(out)
        out = self.drop(out, "before_conv", self.training)
        out = self.conv2(out)
        out = self.drop(out, "after_conv", self.training)

        if self.downsample is not None:
            residual = self.downsample(x)

        out += residual

        return out


class PreResNetBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, drop=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride
        self.drop = drop or Drop()

    def forward(self, x):
        residual = x

        out = self.bn1(x)
        out = self.relu(out)
        out = self.conv1(out)

        out = self.bn2(out)
        out = self.relu(out)
        out = self.conv2(out)

        out = self.drop(out, "before_bn", self.training)
        out = self.bn3(out)
        out = self.relu(out)
        out = self.drop(out, "before_conv", self.training)
        out = self.conv3(out)
        out = self.drop(out, "after_conv", self.training)

        if self.downsample is not None:
            residual = self.downsample(x)

        out += residual

        return out


class PreResNet(nn.Module):
    def __init__(self, depth, num_classes=1000, block_name="BasicBlock", drop=None):
        super().__init__()
        if block_name.lower() == "basicblock":
            assert (depth - 2) % 6 == 0, "When use basicblock, depth should be 6n+2"
            n = (depth - 2) // 6
            block = PreResNetBasicBlock
        elif block_name.lower() == "bottleneck":
            assert (depth - 2) % 9 == 0, "When use bottleneck, depth should be 9n+2"
            n = (depth - 2) // 9
            block = PreResNetBottleneck
        else:
            raise ValueError("block_name shoule be Basicblock or Bottleneck")
        self.drop = drop or Drop()

        self.inplanes = 16
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, padding=1, bias=False)
        self.layer1 = self._make_layer(block, 16, n)
        self.layer2 = self._make_layer(block, 32, n, stride=2)
        self.layer3 = self._make_layer(block, 64, n, stride=2)
        self.bn = nn.BatchNorm2d(64 * block.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(8)
        self.fc = nn.Linear(64 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride,
                          bias=False),
            )

        layers = []
        layers.append(block(self.inplanes, planes, stride, downsample, drop=self.drop))
        self.inplanes = planes * block.expansion
        for i in range(1, blocks):
            layers.append(block(self.inplanes, planes, drop=self.drop))

        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.conv1(x)

        x = self.layer1(x)  # 32x32
        x = self.layer2(x)  # 16x16
        x = self.layer3(x)  # 8x8
        x = self.bn(x)
        x = self.relu(x)

        x = self.avgpool(x)
        x = x.view(x.size(0), -1)
        x = self.drop(x, "head", self.training)
        x = self.fc(x)

        return x


# -- resnext.py ---------------------------------------------------------------------


class ResNeXtBottleneck(nn.Module):
    """RexNeXt bottleneck type C."""

    def __init__(self, in_channels, out_channels, stride, cardinality, widen_factor,
                 base_width=64, drop=None):
        super().__init__()
        D = cardinality * base_width * out_channels // (64 * widen_factor)
        self.conv_reduce = nn.Conv2d(in_channels, D, kernel_size=1, stride=1, padding=0, bias=False)
        self.bn_reduce = nn.BatchNorm2d(D)
        self.conv_conv = nn.Conv2d(D, D, kernel_size=3, stride=stride, padding=1,
                                   groups=cardinality, bias=False)
        self.bn = nn.BatchNorm2d(D)
        self.conv_expand = nn.Conv2d(D, out_channels, kernel_size=1, stride=1, padding=0,
                                     bias=False)
        self.bn_expand = nn.BatchNorm2d(out_channels)
        self.drop = drop or Drop()

        self.shortcut = nn.Sequential()
        if in_channels != out_channels:
            self.shortcut.add_module("shortcut_conv", nn.Conv2d(
                in_channels, out_channels, kernel_size=1, stride=stride, padding=0, bias=False))
            self.shortcut.add_module("shortcut_bn", nn.BatchNorm2d(out_channels))

    def forward(self, x):
        bottleneck = self.conv_reduce.forward(x)
        bottleneck = F.relu(self.bn_reduce.forward(bottleneck), inplace=True)
        bottleneck = self.conv_conv.forward(bottleneck)
        bottleneck = F.relu(self.bn.forward(bottleneck), inplace=True)
        bottleneck = self.drop(bottleneck, "before_conv", self.training)
        bottleneck = self.conv_expand.forward(bottleneck)
        bottleneck = self.drop(bottleneck, "after_conv", self.training)
        bottleneck = self.drop(bottleneck, "before_bn", self.training)
        bottleneck = self.bn_expand.forward(bottleneck)
        residual = self.shortcut.forward(x)
        return F.relu(residual + bottleneck, inplace=True)


class CifarResNeXt(nn.Module):
    def __init__(self, cardinality, depth, num_classes, widen_factor=4, dropRate=0,
                 base_width=64, drop=None):
        super().__init__()
        self.cardinality = cardinality
        self.depth = depth
        self.block_depth = (self.depth - 2) // 9
        self.widen_factor = widen_factor
        self.base_width = base_width
        self.num_classes = num_classes
        self.output_size = 64
        self.stages = [64, 64 * self.widen_factor, 128 * self.widen_factor,
                       256 * self.widen_factor]
        self.drop = drop or Drop()

        self.conv_1_3x3 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn_1 = nn.BatchNorm2d(64)
        self.stage_1 = self.block("stage_1", self.stages[0], self.stages[1], 1)
        self.stage_2 = self.block("stage_2", self.stages[1], self.stages[2], 2)
        self.stage_3 = self.block("stage_3", self.stages[2], self.stages[3], 2)
        self.classifier = nn.Linear(self.stages[3], num_classes)
        nn.init.kaiming_normal_(self.classifier.weight)

        for key in self.state_dict():
            if key.split(".")[-1] == "weight":
                if "conv" in key:
                    nn.init.kaiming_normal_(self.state_dict()[key], mode="fan_out")
                if "bn" in key:
                    self.state_dict()[key][...] = 1
            elif key.split(".")[-1] == "bias":
                self.state_dict()[key][...] = 0

    def block(self, name, in_channels, out_channels, pool_stride=2):
        block = nn.Sequential()
        for bottleneck in range(self.block_depth):
            name_ = "%s_bottleneck_%d" % (name, bottleneck)
            if bottleneck == 0:
                block.add_module(name_, ResNeXtBottleneck(
                    in_channels, out_channels, pool_stride, self.cardinality, self.widen_factor,
                    self.base_width, self.drop))
            else:
                block.add_module(name_, ResNeXtBottleneck(
                    out_channels, out_channels, 1, self.cardinality, self.widen_factor,
                    self.base_width, self.drop))
        return block

    def forward(self, x):
        x = self.conv_1_3x3.forward(x)
        x = F.relu(self.bn_1.forward(x), inplace=True)
        x = self.stage_1.forward(x)
        x = self.stage_2.forward(x)
        x = self.stage_3.forward(x)
        x = F.avg_pool2d(x, 8, 1)
        x = x.view(-1, self.stages[3])
        x = self.drop(x, "head", self.training)
        return self.classifier(x)


# -- wrn.py -------------------------------------------------------------------------


class WideResNetBasicBlock(nn.Module):
    def __init__(self, in_planes, out_planes, stride, dropRate=0.0, drop=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, kernel_size=3, stride=1, padding=1,
                               bias=False)
        self.droprate = dropRate
        self.drop = drop or Drop()
        self.equalInOut = in_planes == out_planes
        self.convShortcut = (not self.equalInOut) and nn.Conv2d(
            in_planes, out_planes, kernel_size=1, stride=stride, padding=0, bias=False) or None

    def forward(self, x):
        if not self.equalInOut:
            x = self.relu1(self.bn1(x))
        else:
            out = self.relu1(self.bn1(x))
        out = self.conv1(out if self.equalInOut else x)
        out = self.drop(out, "before_bn", self.training)
        out = self.relu2(self.bn2(out))
        if self.droprate > 0:
            out = F.dropout(out, p=self.droprate, training=self.training)
        out = self.drop(out, "before_conv", self.training)
        out = self.conv2(out)
        out = self.drop(out, "after_conv", self.training)
        return torch.add(x if self.equalInOut else self.convShortcut(x), out)


class NetworkBlock(nn.Module):
    def __init__(self, nb_layers, in_planes, out_planes, block, stride, dropRate=0.0, drop=None):
        super().__init__()
        self.layer = self._make_layer(block, in_planes, out_planes, nb_layers, stride, dropRate,
                                      drop)

    def _make_layer(self, block, in_planes, out_planes, nb_layers, stride, dropRate, drop):
        layers = []
        for i in range(nb_layers):
            layers.append(block(i == 0 and in_planes or out_planes, out_planes,
                                i == 0 and stride or 1, dropRate, drop))
        return nn.Sequential(*layers)

    def forward(self, x):
        return self.layer(x)


class WideResNet(nn.Module):
    def __init__(self, depth, num_classes, widen_factor=1, dropRate=0.0, drop=None):
        super().__init__()
        nChannels = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        assert (depth - 4) % 6 == 0, "depth should be 6n+4"
        n = (depth - 4) // 6
        block = WideResNetBasicBlock
        self.drop = drop or Drop()
        # 1st conv before any network block
        self.conv1 = nn.Conv2d(3, nChannels[0], kernel_size=3, stride=1, padding=1, bias=False)
        # 1st block
        self.block1 = NetworkBlock(n, nChannels[0], nChannels[1], block, 1, dropRate, self.drop)
        # 2nd block
        self.block2 = NetworkBlock(n, nChannels[1], nChannels[2], block, 2, dropRate, self.drop)
        # 3rd block
        self.block3 = NetworkBlock(n, nChannels[2], nChannels[3], block, 2, dropRate, self.drop)
        # global average pooling and classifier
        self.bn1 = nn.BatchNorm2d(nChannels[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(nChannels[3], num_classes)
        self.nChannels = nChannels[3]

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                m.bias.data.zero_()

    def forward(self, x):
        out = self.conv1(x)
        out = self.block1(out)
        out = self.block2(out)
        out = self.block3(out)
        out = self.relu(self.bn1(out))
        out = F.avg_pool2d(out, 8)
        out = out.view(-1, self.nChannels)
        out = self.drop(out, "head", self.training)
        return self.fc(out)


# -- densenet.py --------------------------------------------------------------------


class DenseNetBottleneck(nn.Module):
    def __init__(self, inplanes, expansion=4, growthRate=12, dropRate=0, drop=None):
        super().__init__()
        planes = expansion * growthRate
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, growthRate, kernel_size=3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.dropRate = dropRate
        self.drop = drop or Drop()

    def forward(self, x):
        out = self.bn1(x)
        out = self.relu(out)
        out = self.conv1(out)
        out = self.drop(out, "before_bn", self.training)
        out = self.bn2(out)
        out = self.relu(out)
        out = self.drop(out, "before_conv", self.training)
        out = self.conv2(out)
        if self.dropRate > 0:
            out = F.dropout(out, p=self.dropRate, training=self.training)
        out = self.drop(out, "after_conv", self.training)

        out = torch.cat((x, out), 1)

        return out


class DenseNetBasicBlock(nn.Module):
    def __init__(self, inplanes, expansion=1, growthRate=12, dropRate=0, drop=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, growthRate, kernel_size=3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.dropRate = dropRate
        self.drop = drop or Drop()

    def forward(self, x):
        out = self.drop(x, "before_bn", self.training)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.drop(out, "before_conv", self.training)
        out = self.conv1(out)
        if self.dropRate > 0:
            out = F.dropout(out, p=self.dropRate, training=self.training)
        out = self.drop(out, "after_conv", self.training)

        out = torch.cat((x, out), 1)

        return out


class Transition(nn.Module):
    def __init__(self, inplanes, outplanes):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, outplanes, kernel_size=1, bias=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.bn1(x)
        out = self.relu(out)
        out = self.conv1(out)
        out = F.avg_pool2d(out, 2)
        return out


class DenseNet(nn.Module):
    def __init__(self, depth=22, block=DenseNetBottleneck, dropRate=0, num_classes=10,
                 growthRate=12, compressionRate=2, stem=None, drop=None):
        super().__init__()

        assert (depth - 4) % 3 == 0, "depth should be 3n+4"
        n = (depth - 4) // 3 if block == DenseNetBasicBlock else (depth - 4) // 6

        self.growthRate = growthRate
        self.dropRate = dropRate
        self.drop = drop or Drop()

        # self.inplanes is a global variable used across multiple
        # helper functions
        self.inplanes = stem or growthRate * 2
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=3, padding=1, bias=False)
        self.dense1 = self._make_denseblock(block, n)
        self.trans1 = self._make_transition(compressionRate)
        self.dense2 = self._make_denseblock(block, n)
        self.trans2 = self._make_transition(compressionRate)
        self.dense3 = self._make_denseblock(block, n)
        self.bn = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(8)
        self.fc = nn.Linear(self.inplanes, num_classes)

        # Weight initialization
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()

    def _make_denseblock(self, block, blocks):
        layers = []
        for i in range(blocks):
            # Currently we fix the expansion ratio as the default value
            layers.append(block(self.inplanes, growthRate=self.growthRate,
                                dropRate=self.dropRate, drop=self.drop))
            self.inplanes += self.growthRate

        return nn.Sequential(*layers)

    def _make_transition(self, compressionRate):
        inplanes = self.inplanes
        outplanes = int(math.floor(self.inplanes // compressionRate))
        self.inplanes = outplanes
        return Transition(inplanes, outplanes)

    def forward(self, x):
        x = self.conv1(x)

        x = self.trans1(self.dense1(x))
        x = self.trans2(self.dense2(x))
        x = self.dense3(x)
        x = self.bn(x)
        x = self.relu(x)

        x = self.avgpool(x)
        x = x.view(x.size(0), -1)
        x = self.drop(x, "head", self.training)
        x = self.fc(x)

        return x


# -- from the reference's module names to the zoo's layer names ---------------------

# Per family: (pattern of a reference module name, the zoo layer name it becomes).
# A module name matching no pattern, or two, is a mapping error.
RENAMES = {
    "preresnet": [
        (r"conv1", "stem_conv"),
        (r"layer(\d)\.(\d+)\.(bn|conv)(\d)", "stage{0}_block{1+}_{2}{3}"),
        (r"layer(\d)\.(\d+)\.downsample\.0", "stage{0}_block{1+}_shortcut_conv"),
        (r"bn", "post_bn"),
        (r"fc", "predictions"),
    ],
    "wide_resnet": [
        (r"conv1", "stem_conv"),
        (r"block(\d)\.layer\.(\d+)\.(bn|conv)(\d)", "stage{0}_block{1+}_{2}{3}"),
        (r"block(\d)\.layer\.(\d+)\.convShortcut", "stage{0}_block{1+}_shortcut_conv"),
        (r"bn1", "post_bn"),
        (r"fc", "predictions"),
    ],
    "resnext": [
        (r"conv_1_3x3", "stem_conv"),
        (r"bn_1", "stem_bn"),
        (r"stage_(\d)\.stage_\d_bottleneck_(\d+)\.conv_reduce", "stage{0}_block{1+}_conv1"),
        (r"stage_(\d)\.stage_\d_bottleneck_(\d+)\.bn_reduce", "stage{0}_block{1+}_bn1"),
        (r"stage_(\d)\.stage_\d_bottleneck_(\d+)\.conv_conv", "stage{0}_block{1+}_conv2"),
        (r"stage_(\d)\.stage_\d_bottleneck_(\d+)\.bn", "stage{0}_block{1+}_bn2"),
        (r"stage_(\d)\.stage_\d_bottleneck_(\d+)\.conv_expand", "stage{0}_block{1+}_conv3"),
        (r"stage_(\d)\.stage_\d_bottleneck_(\d+)\.bn_expand", "stage{0}_block{1+}_bn3"),
        (r"stage_(\d)\.stage_\d_bottleneck_(\d+)\.shortcut\.shortcut_(conv|bn)",
         "stage{0}_block{1+}_shortcut_{2}"),
        (r"classifier", "predictions"),
    ],
    "densenet": [
        (r"conv1", "stem_conv"),
        (r"dense(\d)\.(\d+)\.(bn|conv)(\d)", "stage{0}_block{1+}_{2}{3}"),
        (r"trans(\d)\.(bn|conv)1", "transition{0}_{1}"),
        (r"bn", "post_bn"),
        (r"fc", "predictions"),
    ],
}


class MappingError(AssertionError):
    """The reference-to-zoo mapping missed, doubled or mis-shaped a tensor."""


def _rename(rules, module):
    """The zoo layer name of reference module ``module`` under ``rules``."""
    names = []
    for pattern, template in rules:
        match = re.fullmatch(pattern, module)
        if match:
            groups = list(match.groups())
            # "{1+}": the group as a 1-based index (torch counts blocks from 0).
            name = re.sub(r"\{(\d)\+\}", lambda m: str(int(groups[int(m.group(1))]) + 1), template)
            names.append(name.format(*groups))
    if len(names) != 1:
        raise MappingError(f"reference module {module!r} maps to {names} (expected one layer)")
    return names[0]


# Keras variable name and the conversion for each kind of reference tensor.
_BN = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
       "running_var": "moving_variance"}


def _target(module, kind, value):
    """``(keras variable name, value in Keras' layout)`` for one reference tensor."""
    if isinstance(module, nn.BatchNorm2d):
        return _BN[kind], value
    if isinstance(module, nn.Conv2d) and kind == "weight":
        return "kernel", value.transpose(2, 3, 1, 0)  # (out, in, h, w) -> (h, w, in, out)
    if isinstance(module, nn.Linear) and kind == "weight":
        return "kernel", value.T
    if isinstance(module, nn.Linear) and kind == "bias":
        return "bias", value
    raise MappingError(f"no Keras counterpart for a {type(module).__name__}'s {kind!r}")


def transfer(net, family, model, state=None, rules=None):
    """Copies every tensor of ``net`` into zoo ``model``; checks the mapping.

    Every reference parameter and buffer is consumed exactly once (BN's
    ``num_batches_tracked`` is read and set aside: it only matters with
    ``momentum=None``, and the reference uses 0.1), and every entry of
    ``model.weights`` is assigned exactly once, with the same shape.

    Args:
        net: A network of this module.
        family: Its key in `RENAMES`.
        model: The zoo model of the same architecture.
        state: The tensors to copy, default ``net.state_dict()``.
        rules: Renaming rules, default ``RENAMES[family]``.

    Returns:
        The number of tensors copied.

    Raises:
        MappingError: A tensor has no target or a wrong shape, two tensors
            share a target, or a Keras weight is left unassigned.
    """
    targets = {}
    for layer in model.layers:
        for variable in layer.weights:
            targets[(layer.name, variable.name)] = variable
    if {id(v) for v in targets.values()} != {id(v) for v in model.weights}:
        raise MappingError("model.weights and the layers' weights differ")
    modules = dict(net.named_modules())
    assigned = {}
    for key, tensor in (net.state_dict() if state is None else state).items():
        module_name, _, kind = key.rpartition(".")
        if kind == "num_batches_tracked":
            continue
        value = tensor.detach().cpu().numpy()
        name, value = _target(modules[module_name], kind, value)
        target = (_rename(rules or RENAMES[family], module_name), name)
        if target not in targets:
            raise MappingError(f"{key} -> {target}: no such Keras weight")
        if target in assigned:
            raise MappingError(f"{key} -> {target}: already assigned from {assigned[target]}")
        variable = targets[target]
        if tuple(variable.shape) != value.shape:
            raise MappingError(f"{key} -> {target}: shape {value.shape} != {variable.shape}")
        variable.assign(np.ascontiguousarray(value))
        assigned[target] = key
    missing = sorted(set(targets) - set(assigned))
    if missing:
        raise MappingError(f"Keras weights left unassigned: {missing}")
    return len(assigned)


def randomize_batch_norms(net, seed):
    """Draws every BN's weight, bias and running statistics (so a swapped
    or misplaced one changes the output; the reference starts them at 1/0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.bias.copy_(0.2 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
