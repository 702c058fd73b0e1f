"""Views, data movement and shape arithmetic: costed at zero, each with its reason."""
import math

import numpy as np

from .. import infer as rules, infer_layout as layout_rules
from .table import LAYOUT, MASK, VECTOR, VIEW, VIEW_GRADIENT, Backward, free, register
from .values import cast, constant_of_shape, expand, range_, reshape, slice_, squeeze, unsqueeze


@register("Resize", saves=(), fusion=LAYOUT, unit=VECTOR, infer=rules.resize)
@register("Upsample", saves=(), fusion=LAYOUT, unit=VECTOR, infer=rules.upsample)
def resize_cost(attrs, inputs, output, weights):
    # each output element is a weighted sum of its neighbours, 2 (linear) or 4 (cubic) per spatial
    # axis: that many multiplies and one add fewer; nearest mode copies
    neighbours = {"linear": 2, "cubic": 4}.get(attrs.get("mode", "nearest"))
    if neighbours is None:
        return 0, 0
    taps = neighbours ** (len(output) - 2)
    return 0, (2 * taps - 1) * math.prod(output)



# A view's gradient is dY itself (VIEW_GRADIENT). Dropout's training backward (dy * mask, 1 FLOP an
# element) is not timed: a stated simplification, as it is a view at inference
free("identity at inference", "Dropout", saves=(MASK,), fusion=VIEW, backward=VIEW_GRADIENT,
     infer=rules.dropout)
free("identity at inference", "Identity", saves=(), fusion=VIEW, evaluate=lambda attrs, x: x,
     backward=VIEW_GRADIENT, passes_weight=True, infer=rules.same)
VIEW_REASON = "a view of the same data: no arithmetic"
free(VIEW_REASON, "Flatten", saves=(), fusion=VIEW, backward=VIEW_GRADIENT,
     infer=layout_rules.flatten)
free(VIEW_REASON, "Reshape", saves=(), fusion=VIEW, evaluate=reshape, backward=VIEW_GRADIENT,
     passes_weight=True, infer=layout_rules.reshape)
free(VIEW_REASON, "Squeeze", saves=(), fusion=VIEW, evaluate=squeeze, backward=VIEW_GRADIENT,
     infer=layout_rules.squeeze)
free(VIEW_REASON, "Unsqueeze", saves=(), fusion=VIEW, evaluate=unsqueeze,
     backward=VIEW_GRADIENT, infer=layout_rules.unsqueeze)
MOVE_REASON = "data movement: no arithmetic"
# Concat, Slice, Split: their input gradients are views of dY (narrow, cat). Concat and Tile (and Expand)
# of a constant tensor: a learned token (ViT's cls_token)
free(MOVE_REASON, "Concat", saves=(), fusion=LAYOUT,
     evaluate=lambda attrs, *xs: np.concatenate(xs, axis=attrs["axis"]), backward=VIEW_GRADIENT, learned=True,
     infer=layout_rules.concat)
free(MOVE_REASON, "Slice", saves=(), fusion=LAYOUT, evaluate=slice_, backward=VIEW_GRADIENT,
     infer=layout_rules.slice_)
free(MOVE_REASON, "Transpose", saves=(), fusion=LAYOUT,
     evaluate=lambda attrs, x: np.transpose(x, attrs.get("perm")), backward=Backward(0), passes_weight=True,
     infer=layout_rules.transpose)
free(MOVE_REASON, "Split", saves=(), fusion=LAYOUT, backward=VIEW_GRADIENT,
     infer=layout_rules.split)
free(MOVE_REASON, "Pad", saves=(), fusion=LAYOUT, infer=layout_rules.pad)
free(MOVE_REASON, "Tile", saves=(), fusion=LAYOUT, learned=True, infer=layout_rules.tile)
free(MOVE_REASON, "Expand", saves=(), fusion=LAYOUT, evaluate=expand, learned=True,
     infer=layout_rules.expand)
SHAPE_REASON = "shape arithmetic on small integer tensors"
free(SHAPE_REASON, "Shape", saves=(), fusion=LAYOUT,  # evaluate.py reads it off the shape
     infer=layout_rules.shape_of)
# Gather: a weight table gathered by constant indices is the table (LeViT's attention bias)
free(SHAPE_REASON, "Gather", saves=(), fusion=LAYOUT,
     evaluate=lambda attrs, x, i: np.take(x, i, axis=attrs.get("axis", 0)), passes_weight=True,
     infer=layout_rules.gather)
free(SHAPE_REASON, "Cast", saves=(), fusion=LAYOUT, evaluate=cast, passes_weight=True,
     infer=rules.cast)
free(SHAPE_REASON, "ConstantOfShape", saves=(), fusion=LAYOUT, evaluate=constant_of_shape,
     infer=layout_rules.constant_of_shape)
free(SHAPE_REASON, "Range", saves=(), fusion=LAYOUT, evaluate=range_, infer=layout_rules.range_)

