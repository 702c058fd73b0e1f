"""Normalisation: BatchNormalization and the per-sample norms (instance, group, layer)."""
import math

from .. import infer as rules
from .table import INPUT, NORM, REDUCTION, STATISTICS, Backward, elementwise

# BN at inference: x*a + b with folded a, b; it keeps one mean and inverse std per channel for the batch.
# Training first computes the batch statistics, a read of its input: sum, square, add (PyTorch's CUDA
# batch norm: batch_norm_collect_statistics, then batch_norm_elemt). Backward per input element:
# x_hat (2), sum dy (1), sum dy*x_hat (2), dx = k (dy - a - x_hat b) (3)
elementwise(2, "BatchNormalization", saves=(INPUT, STATISTICS), fusion=NORM,
            statistics=lambda attrs, output: output[1], weights=("X", "scale", "B", "mean", "var"),
            backward=Backward(8, per_input=True, statistics=3), infer=rules.batch_norm)
# statistics (an add for the sum, a multiply and an add for the sum of squares), then x*a + b with
# a, b folded per channel (instance, group) or per row (layer); per-row divides are not counted.
# Backward keeps a mean and inverse std per sample and channel, group or row.
NORM_WEIGHTS = ("X", "scale", "B")
# native_group_norm_backward (instance norm runs as it): the per-channel scale folds into the per-group sums as
# BN's does, so BN's 8 per input element; no statistics kernel, as the forward computes them at inference too
GROUP_BACKWARD = Backward(8, per_input=True)
elementwise(5, "InstanceNormalization", saves=(INPUT, STATISTICS), fusion=REDUCTION,
            statistics=lambda attrs, output: output[0] * output[1], weights=NORM_WEIGHTS, backward=GROUP_BACKWARD,
            infer=rules.same)
elementwise(5, "GroupNormalization", saves=(INPUT, STATISTICS), fusion=REDUCTION,
            statistics=lambda attrs, output: output[0] * attrs["num_groups"], weights=NORM_WEIGHTS,
            backward=GROUP_BACKWARD, infer=rules.same)
# native_layer_norm_backward(grad, input, normalized_shape, mean, rstd, weight, bias): per input element
# x_hat = (x - mean) rstd (2), g = dy * gamma (1), the row sums of g (1) and g x_hat (2),
# dx = rstd (g - mean g - x_hat mean(g x_hat)) (4), gamma's and beta's column sums dy x_hat (2) and dy (1): 13
elementwise(5, "LayerNormalization", saves=(INPUT, STATISTICS), fusion=REDUCTION,
            statistics=lambda attrs, output: math.prod(output[:attrs.get("axis", -1) % len(output)]),
            weights=NORM_WEIGHTS, backward=Backward(13, per_input=True), infer=rules.layer_norm)
