"""Views, data movement and shape arithmetic: costed at zero, each with its reason."""
import math

import numpy as np

from .. import infer as rules, infer_layout as layout_rules
from .table import LAYOUT, MASK, NO_GRADIENT, VECTOR, VIEW, VIEW_GRADIENT, Backward, free, register
from .values import cast, constant_of_shape, expand, range_, reshape, slice_, squeeze, unsqueeze


def _resize_taps(attrs, output) -> int:
    """Input elements each output element reads per spatial axis (nearest: 1), over all spatial axes."""
    neighbours = {"linear": 2, "cubic": 4}.get(attrs.get("mode", "nearest"), 1)
    return neighbours ** (len(output) - 2)


# upsample_{nearest,linear,bicubic}*_backward: every dY element added into each input element it read, times
# its weight: nearest 1 add, else a multiply and an add per tap
def _resize_backward(attrs, output) -> int:
    return 1 if attrs.get("mode", "nearest") not in ("linear", "cubic") else 2 * _resize_taps(attrs, output)


RESIZE_BACKWARD = Backward(_resize_backward)


@register("Resize", saves=(), fusion=LAYOUT, unit=VECTOR, backward=RESIZE_BACKWARD,
          infer=rules.resize)
@register("Upsample", saves=(), fusion=LAYOUT, unit=VECTOR, backward=RESIZE_BACKWARD,
          infer=rules.upsample)
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
     passes_weight=True, infer=layout_rules.flatten)
free(VIEW_REASON, "Reshape", saves=(), fusion=VIEW, evaluate=reshape, backward=VIEW_GRADIENT,
     passes_weight=True, infer=layout_rules.reshape)
free(VIEW_REASON, "Squeeze", saves=(), fusion=VIEW, evaluate=squeeze, backward=VIEW_GRADIENT,
     passes_weight=True, infer=layout_rules.squeeze)
free(VIEW_REASON, "Unsqueeze", saves=(), fusion=VIEW, evaluate=unsqueeze,
     backward=VIEW_GRADIENT, passes_weight=True, infer=layout_rules.unsqueeze)
MOVE_REASON = "data movement: no arithmetic"
# Concat's input gradients are views of dY (cat_tensors_backward: narrow). Slice's is a kernel:
# slice_backward writes zeros of the input's shape and copies dY into its part; Split's one too:
# split_with_sizes_backward concatenates the pieces' gradients into dX (a copy: 0 FLOPs, memory-bound).
# Concat and Tile (and Expand) of a constant tensor: a learned token (ViT's cls_token)
COPY_GRADIENT = Backward(0)
free(MOVE_REASON, "Concat", saves=(), fusion=LAYOUT,
     evaluate=lambda attrs, *xs: np.concatenate(xs, axis=attrs["axis"]), backward=VIEW_GRADIENT, learned=True,
     infer=layout_rules.concat)
free(MOVE_REASON, "Slice", saves=(), fusion=LAYOUT, evaluate=slice_, backward=COPY_GRADIENT,
     infer=layout_rules.slice_)
free(MOVE_REASON, "Transpose", saves=(), fusion=LAYOUT,
     evaluate=lambda attrs, x: np.transpose(x, attrs.get("perm")), backward=Backward(0), passes_weight=True,
     infer=layout_rules.transpose)
free(MOVE_REASON, "Split", saves=(), fusion=LAYOUT, backward=COPY_GRADIENT,
     infer=layout_rules.split)
# Pad: constant_pad_nd_backward narrows dY (a copy once read), reflection_pad and replication_pad's backward add
# each dY element into the input element it copied: one kernel, 1 FLOP per dY element (an upper bound for constant)
free(MOVE_REASON, "Pad", saves=(), fusion=LAYOUT, backward=Backward(1), infer=layout_rules.pad)
# Tile (repeat_backward) and Expand (expand: at::sum_to(grad, self.sizes())): dY summed back to the input's
# shape, one add per dY element
free(MOVE_REASON, "Tile", saves=(), fusion=LAYOUT, learned=True, backward=Backward(1),
     infer=layout_rules.tile)
free(MOVE_REASON, "Expand", saves=(), fusion=LAYOUT, evaluate=expand, learned=True,
     backward=Backward(1), infer=layout_rules.expand)
SHAPE_REASON = "shape arithmetic on small integer tensors"
free(SHAPE_REASON, "Shape", saves=(), fusion=LAYOUT,  # onnx/fold.py reads it off the shape
     backward=NO_GRADIENT, infer=layout_rules.shape_of)
# Gather: a weight table gathered by constant indices is the table (LeViT's attention bias). Its gradient
# (index_select, embedding: zeros of the table's shape, then index_add_ of dY; GatherElements' gather:
# scatter_add_) adds each dY element into the table: 1 FLOP per dY element, writing the table's gradient
free(SHAPE_REASON, "Gather", saves=(), fusion=LAYOUT,
     evaluate=lambda attrs, x, i: np.take(x, i, axis=attrs.get("axis", 0)), passes_weight=True,
     backward=Backward(1), infer=layout_rules.gather)
# GatherElements (torch.gather): gather_backward scatter-adds dY into zeros of the input's shape
free(MOVE_REASON, "GatherElements", saves=(), fusion=LAYOUT, backward=Backward(1),
     infer=layout_rules.gather_elements)
# GatherND (torch's advanced indexing, table[idx]): a weight table gathered by constant indices is the table (the
# dynamo exporter's LeViT attention bias); index's backward (derivatives.yaml index.Tensor: index_backward, an
# index_put_ with accumulate into zeros of the table's shape) adds each dY element into the table
free(MOVE_REASON, "GatherND", saves=(), fusion=LAYOUT, passes_weight=True, backward=Backward(1),
     infer=layout_rules.gather_nd)
# _to_copy_backward: dY cast back to the input's precision, a copy
free(SHAPE_REASON, "Cast", saves=(), fusion=LAYOUT, evaluate=cast, passes_weight=True,
     backward=Backward(0), infer=rules.cast)
free(SHAPE_REASON, "ConstantOfShape", saves=(), fusion=LAYOUT, evaluate=constant_of_shape,
     backward=NO_GRADIENT, infer=layout_rules.constant_of_shape)
free(SHAPE_REASON, "Range", saves=(), fusion=LAYOUT, evaluate=range_, backward=NO_GRADIENT,
     infer=layout_rules.range_)

