"""Elementwise arithmetic, comparisons and transcendentals."""
import numpy as np

from .. import infer as rules
from .table import (INPUT, INPUTS, MASK, NO_GRADIENT, OPERANDS, OUTPUT, POINTWISE, RESIDUAL, Backward,
                    elementwise)
from .values import binary, div, unary

# Backward FLOPs per element, each from its gradient formula in derivatives.yaml. Memory-bound on every
# device in the catalog, so they only decide time on a device with a very slow vector unit.
# Add, Sub, Mul, Div: a constant beyond a scalar is a bias or scale (learned). Add's backward only
# reduces dY to a broadcast operand's shape
elementwise(1, "Add", saves=(), fusion=RESIDUAL, evaluate=binary(np.add),
            backward=Backward(1, broadcast_only=True), learned=True, infer=rules.broadcasting)
elementwise(1, "Sub", saves=(), fusion=POINTWISE, evaluate=binary(np.subtract),
            backward=Backward(1), learned=True, infer=rules.broadcasting)
elementwise(1, "Mul", saves=(OPERANDS,), fusion=POINTWISE, evaluate=binary(np.multiply),
            backward=Backward(3), learned=True,  # dy * b, dy * a, the add of a broadcast operand's reduction
            infer=rules.broadcasting)
elementwise(1, "Div", saves=(OPERANDS,), fusion=POINTWISE, evaluate=div,
            backward=Backward(4), learned=True, infer=rules.broadcasting)
elementwise(1, "Max", saves=(INPUTS,), fusion=POINTWISE,
            evaluate=lambda attrs, *xs: np.maximum.reduce(np.broadcast_arrays(*xs)), backward=Backward(1),
            infer=rules.broadcasting)
elementwise(1, "Min", saves=(INPUTS,), fusion=POINTWISE,
            evaluate=lambda attrs, *xs: np.minimum.reduce(np.broadcast_arrays(*xs)), backward=Backward(1),
            infer=rules.broadcasting)
elementwise(1, "Mod", saves=(INPUTS,), fusion=POINTWISE,
            evaluate=lambda attrs, x, y: np.fmod(x, y) if attrs.get("fmod", 0) else np.mod(x, y),
            backward=Backward(3), infer=rules.broadcasting)  # fmod/remainder: dy; -dy * trunc(a / b): 3
elementwise(1, "Neg", saves=(), fusion=POINTWISE, evaluate=unary(np.negative), backward=Backward(1),
            infer=rules.same)
elementwise(1, "Abs", saves=(INPUT,), fusion=POINTWISE, evaluate=unary(np.abs),
            backward=Backward(2), infer=rules.same)  # abs: dy * sgn(x)
# ceil, floor: zeros_like(grad) in derivatives.yaml; comparisons and logic: not differentiable
elementwise(1, "Ceil", saves=(), fusion=POINTWISE, evaluate=unary(np.ceil), infer=rules.same,
            backward=NO_GRADIENT)
elementwise(1, "Floor", saves=(), fusion=POINTWISE, evaluate=unary(np.floor), infer=rules.same,
            backward=NO_GRADIENT)
# comparisons and logic: one op per element, no gradient
for _op, _fn in (("Equal", np.equal), ("Less", np.less), ("Greater", np.greater), ("LessOrEqual", np.less_equal),
                 ("GreaterOrEqual", np.greater_equal), ("And", np.logical_and), ("Or", np.logical_or)):
    elementwise(1, _op, saves=(), fusion=POINTWISE, evaluate=binary(_fn), infer=rules.compare,
                backward=NO_GRADIENT)
del _op, _fn
elementwise(1, "Not", saves=(), fusion=POINTWISE, evaluate=unary(np.logical_not),
            backward=NO_GRADIENT, infer=rules.logical_not)
elementwise(1, "Exp", saves=(OUTPUT,), fusion=POINTWISE, backward=Backward(1), infer=rules.same)
elementwise(1, "Tanh", saves=(OUTPUT,), fusion=POINTWISE, backward=Backward(3), infer=rules.same)
elementwise(1, "Sqrt", saves=(OUTPUT,), fusion=POINTWISE, evaluate=unary(np.sqrt), backward=Backward(2),
            infer=rules.same)
# erf, like exp and tanh, one transcendental; GELU x * 0.5 * (1 + erf(x / sqrt 2)): divide, erf, add and
# two multiplies, the five ops exporters write it as at opset <= 19. PyTorch's GELU keeps its input.
# erf: 2/sqrt(pi) * exp(-x^2) * dy: square, negate, exp, two multiplies
elementwise(1, "Erf", saves=(INPUT,), fusion=POINTWISE, backward=Backward(5), infer=rules.same)
# pow_backward: dy * e * x^(e - 1): a power and two multiplies (the exponent's own gradient, x^e log x, is not
# asked: exporters write constant exponents)
elementwise(1, "Pow", saves=(INPUTS,), fusion=POINTWISE, backward=Backward(3),
            infer=rules.power)
elementwise(1, "Reciprocal", saves=(OUTPUT,), fusion=POINTWISE, backward=Backward(3),  # -dy * y * y
            infer=rules.same)
# where: where(c, dy, 0) and where(c, 0, dy), a select for each of the two operands
elementwise(1, "Where", saves=(MASK,), fusion=POINTWISE,
            evaluate=lambda attrs, c, x, y: np.where(c, x, y),  # a select; backward keeps the condition
            backward=Backward(2), infer=rules.where)
# random tensors shaped like their input (a train-mode export's drop path: RandomUniformLike, Floor, Div, Mul):
# one draw an element, no gradient (the draw does not depend on x's values)
for _op in ("RandomUniformLike", "RandomNormalLike", "Bernoulli"):
    elementwise(1, _op, saves=(), fusion=POINTWISE, backward=NO_GRADIENT, infer=rules.same)
del _op
# on activations: x / scale + zero point, clamped (rounding is the conversion): 3; back: (q - zero point) * scale: 2.
# Training a quantized graph is quantization-aware training, which a file quantized for inference does not hold
QUANTIZED = Backward(refused="the file is quantized for inference (QuantizeLinear/DequantizeLinear); "
                             "export the float model to plan its training")
elementwise(3, "QuantizeLinear", saves=(), fusion=POINTWISE, backward=QUANTIZED, infer=rules.quantize)
elementwise(2, "DequantizeLinear", saves=(), fusion=POINTWISE, passes_weight=True, backward=QUANTIZED,
            infer=rules.dequantize)
