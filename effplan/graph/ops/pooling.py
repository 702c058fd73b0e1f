"""Pooling and reductions."""
import math

from .. import infer as rules
from .table import INDICES, INPUT, OUTPUT, REDUCTION, VECTOR, Backward, register
from .values import reduce_prod


# backward: dy / (H W) broadcast back, per input element; the saved input read for its shape only
# (adaptive_avg_pool2d_backward reads dY)
MEAN_BACKWARD = Backward(1, per_input=True, shape_only=True)


@register("GlobalAveragePool", saves=(INPUT,), fusion=REDUCTION, unit=VECTOR,
          backward=MEAN_BACKWARD, infer=rules.global_pool)
@register("ReduceMean", saves=(), fusion=REDUCTION, unit=VECTOR, backward=MEAN_BACKWARD,
          infer=rules.reduce)
def mean_pool_cost(attrs, inputs, output, weights):
    # one add per input element, one divide per output element
    return 0, math.prod(inputs[0]) + math.prod(output)


# backward: dy scattered through the window (max: through the saved indices); avg_pool2d_backward and
# max_pool2d_with_indices_backward read the saved input for its shape only
@register("MaxPool", saves=(INPUT, INDICES), fusion=REDUCTION, unit=VECTOR,
          backward=Backward(1, shape_only=True), infer=rules.max_pool)
@register("AveragePool", saves=(INPUT,), fusion=REDUCTION, unit=VECTOR,
          backward=Backward(1, shape_only=True), infer=rules.average_pool)
def window_pool_cost(attrs, inputs, output, weights):
    # one compare (or add) per window element; AveragePool's divide is counted as one of them
    return 0, math.prod(output) * math.prod(attrs["kernel_shape"])



# sum_backward: dY expanded back to the input's shape, written once (0 FLOPs, per input element);
# prod_backward: dY * result / x, two per input element
@register("ReduceSum", saves=(), fusion=REDUCTION, unit=VECTOR,
          backward=Backward(0, per_input=True), infer=rules.reduce)
@register("ReduceProd", saves=(INPUT, OUTPUT), fusion=REDUCTION, unit=VECTOR,
          evaluate=reduce_prod, backward=Backward(2, per_input=True), infer=rules.reduce)
def sum_cost(attrs, inputs, output, weights):
    return 0, math.prod(inputs[0])  # one add (multiply) per input element, over any axes

