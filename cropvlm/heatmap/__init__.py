"""The default crop policy: a small CNN that turns (page, question) into a box.

It speaks the paper's interface (`"[x1, y1, x2, y2]."` in percent through `Policy.propose`)
but is a few MB and runs anywhere: inference needs only numpy and ONNX Runtime
(`HeatmapPolicy`, `onnx_policy.py`); training needs torch (`TrainableHeatmapPolicy`).

A box is three discrete choices, so it has an exact log-probability for GRPO:
the grid cell of its centre (a heatmap over a 32x32 grid of the letterboxed page), then a
width bin and a height bin read at that cell (log-spaced fractions of the page side).
"""
