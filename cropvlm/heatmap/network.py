"""The network: a page trunk shared by all questions of a page, question-conditioned heads.

    images [P, 3, S, S] -> trunk (stride 16) -> features [P, C, G, G]
    questions [Q, BUCKETS] -> embedding -> FiLM (scale, shift) on the features of their page
    -> row and column context (a keyword such as TOTAL and its value share a row)
    -> logits [Q, 1 + 2K, G, G]: centre heatmap, K width bins, K height bins per cell

GroupNorm rather than BatchNorm: batches are a handful of pages on a CPU, and training and
inference must behave the same. About 0.9M parameters (4 MB in float32).
"""

from __future__ import annotations

import torch
from torch import nn


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.GroupNorm(8, cout),
        nn.ReLU(inplace=True),
    )


class HeatmapNet(nn.Module):
    def __init__(self, buckets: int = 2048, size_bins: int = 14, width: int = 128, embed: int = 96) -> None:
        super().__init__()
        self.size_bins = size_bins
        self.hparams = {"width": width, "embed": embed}  # saved in config.json to rebuild it
        self.trunk = nn.Sequential(
            _conv(3, 24, stride=2),  # 256
            _conv(24, 32, stride=2),  # 128
            _conv(32, 32),
            _conv(32, 64, stride=2),  # 64
            _conv(64, 64),
            _conv(64, width, stride=2),  # 32
            _conv(width, width),
            _conv(width, width, dilation=2),
        )
        self.embed = nn.Sequential(nn.Linear(buckets, embed), nn.ReLU(inplace=True), nn.Linear(embed, 2 * width))
        mix = width // 2  # per-question work: kept narrow, it runs Q times, the trunk P times
        self.mix = nn.Sequential(
            nn.Conv2d(3 * width, mix, 1, bias=False), nn.GroupNorm(8, mix), nn.ReLU(inplace=True),
            _conv(mix, mix, dilation=2), _conv(mix, mix, dilation=4),
        )
        self.head = nn.Conv2d(mix, 1 + 2 * size_bins, 1)

    def forward(self, images: torch.Tensor, questions: torch.Tensor, page_index: torch.Tensor) -> torch.Tensor:
        features = self.trunk(images)[page_index]  # [Q, C, G, G]: the trunk runs once per page
        scale, shift = self.embed(questions).chunk(2, dim=1)
        x = features * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
        rows = x.mean(dim=3, keepdim=True).expand_as(x)
        cols = x.mean(dim=2, keepdim=True).expand_as(x)
        return self.head(self.mix(torch.cat([x, rows, cols], dim=1)))
