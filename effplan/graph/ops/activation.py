"""Activations: each fused into a conv's epilogue where the runtime fuses it (fusion ACTIVATION), and
Softmax, which runs as a row reduction. Backward FLOPs per element from derivatives.yaml."""
from .. import infer as rules
from .table import ACTIVATION, INPUT, OUTPUT, POINTWISE, REDUCTION, Backward, elementwise
from .values import clip

elementwise(1, "Relu", saves=(OUTPUT,), fusion=ACTIVATION,
            backward=Backward(1), infer=rules.same)  # threshold_backward: select dy where y > 0
# PRelu and LeakyRelu: a compare and a multiply (backward: the same); Clip's backward (hardtanh_backward):
# two compares, a select
elementwise(2, "Clip", saves=(INPUT,), fusion=ACTIVATION, evaluate=clip, backward=Backward(2),
            infer=rules.same)
elementwise(2, "LeakyRelu", saves=(INPUT,), fusion=ACTIVATION, backward=Backward(2), infer=rules.same)
elementwise(2, "PRelu", saves=(INPUT,), fusion=POINTWISE, weights=("X", "slope"),
            backward=Backward(2), infer=rules.prelu)
elementwise(3, "Sigmoid", saves=(OUTPUT,), fusion=ACTIVATION,  # exp, add, divide
            backward=Backward(3), infer=rules.same)  # sigmoid_backward: dy * y * (1 - y)
elementwise(3, "Softmax", saves=(OUTPUT,), fusion=REDUCTION, backward=Backward(4), infer=rules.same)
elementwise(3, "LogSoftmax", saves=(OUTPUT,), fusion=REDUCTION,  # exp, add, subtract (the row's log apart)
            backward=Backward(3), infer=rules.same)
elementwise(5, "Gelu", saves=(INPUT,), fusion=ACTIVATION, backward=Backward(8), infer=rules.same)
# multiply, add, min, max. An activation like Sigmoid, so fused into a conv's epilogue as MobileNetV3's
# squeeze-excitation gate: TensorRT's Layer Fusion Catalog fuses a Convolution with an Activation layer
# (HardSigmoid is ActivationType kHARD_SIGMOID), and onnxruntime's FusedConv takes HardSigmoid
# (contrib_ops/cpu/fused_activation.cc: MlasHardSigmoidActivation)
elementwise(4, "HardSigmoid", saves=(INPUT,), fusion=ACTIVATION, backward=Backward(2), infer=rules.same)
elementwise(5, "HardSwish", saves=(INPUT,), fusion=ACTIVATION,  # HardSigmoid, then multiply
            backward=Backward(4), infer=rules.same)
