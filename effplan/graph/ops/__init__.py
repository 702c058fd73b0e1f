"""The op table, by op family; the registry and the cost row of a node live in table.py, and each
family module registers its entries when imported here. `from effplan.graph.ops import OPS` sees them all."""
from .table import (ACTIVATION, ANCHOR, CONTRACTION, COSTS, FUSION_CLASSES, IN_PLACE,  # noqa: F401
                    INDICES, INPUT, INPUTS, OPERANDS, LAYOUT, MASK, MATRIX, NORM, OPS, OUTPUT, POINTWISE, REDUCTION, RESIDUAL,
                    SAVED_KINDS, STATISTICS, UNITS, VECTOR, VIEW, VIEW_GRADIENT, NO_GRADIENT, Backward, LayerCost, Op,
                    UnknownOpError, elementwise, free, graph_weights, node_cost, register, weight_bytes,
                    weight_counts)
from . import conv, pooling, arithmetic, activation, norm, layout  # noqa: F401,E402  (they register)
from .conv import CONV_WEIGHTS, PRODUCTS  # noqa: F401,E402
from .pooling import MEAN_BACKWARD  # noqa: F401,E402
from .norm import NORM_WEIGHTS  # noqa: F401,E402
from .layout import MOVE_REASON, SHAPE_REASON, VIEW_REASON  # noqa: F401,E402
