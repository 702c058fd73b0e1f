"""Convolution and matrix products: Conv, ConvTranspose, Gemm, MatMul, Einsum, Attention."""
import math

from .. import infer as rules
from .table import (ANCHOR, CONTRACTION, INPUT, INPUTS, MATRIX, OPERANDS, OUTPUT, STATISTICS, VECTOR,
                    Backward, register)


def _kernel(weights, inputs):
    """A conv's weight shape: its initializer, or input 1 when an imported graph computes it."""
    return weights["W"] if "W" in weights else inputs[1]


def _conv_gemm(attrs, inputs, output, weights):
    """A conv as `group` GEMMs: M = N*Hout*Wout, N = Cout/group, K = (Cin/group)*Kh*Kw."""
    group = attrs.get("group", 1)
    return group, output[0] * math.prod(output[2:]), output[1] // group, math.prod(_kernel(weights, inputs)[1:])


def _inner(attrs, inputs, weights):
    """K of a matrix product, read off the left operand, which may be the weight ("A", a constant on the left)."""
    a = weights["A"] if "A" in weights else inputs[0]
    return a[0] if attrs.get("transA", 0) else a[-1]


def _matmul_gemm(attrs, inputs, output, weights):
    """One GEMM: M = the product of the output's leading dims, N its last, K the contracted dim."""
    return 1, math.prod(output[:-1]), output[-1], _inner(attrs, inputs, weights)


def _conv_unit(attrs, inputs, weights) -> str:
    return VECTOR if _kernel(weights, inputs)[1] == 1 else MATRIX  # one input channel per group: depthwise


CONV_WEIGHTS = ("X", "W", "B")
# PyTorch's convolution_backward (cuDNN's backward-data and backward-filter) and mm's two products; for a
# product of two activations (attention's q @ k^T, bmm and matmul in derivatives.yaml): grad @ b^T and
# a^T @ grad, each the forward's MACs
PRODUCTS = Backward(products=True)


@register("Conv", saves=(INPUT,), unit=_conv_unit, fusion=ANCHOR, gemm=_conv_gemm,
          weights=CONV_WEIGHTS, weighted=True,
          backward=Backward(products=True, taps=lambda weights: math.prod(weights["W"][2:]) if "W" in weights else 1),
          infer=rules.conv)
def conv_cost(attrs, inputs, output, weights):
    per_output = math.prod(_kernel(weights, inputs)[1:])  # (Cin/group) * Kh * Kw
    macs = math.prod(output) * per_output
    return macs, 2 * macs + (math.prod(output) if "B" in weights else 0)


def _conv_transpose_gemm(attrs, inputs, output, weights):
    """A transposed conv as `group` GEMMs of its input with its kernel, whose products are then added
    into the output (col2im): M = N*Hin*Win, N = (Cout/group)*Kh*Kw, K = Cin/group (W is
    [Cin, Cout/group, Kh, Kw])."""
    group, x, w = attrs.get("group", 1), inputs[0], _kernel(weights, inputs)
    return group, x[0] * math.prod(x[2:]), math.prod(w[1:]), w[0] // group


def _conv_transpose_unit(attrs, inputs, weights) -> str:
    return VECTOR if _kernel(weights, inputs)[0] // attrs.get("group", 1) == 1 else MATRIX  # depthwise


# a convolution on the matrix unit, but fused with nothing: runtimes anchor Conv, Gemm and MatMul only
# convolution_backward with transposed=True: dX is a conv of dY with W, dW the same products as the forward's
@register("ConvTranspose", saves=(INPUT,), unit=_conv_transpose_unit, fusion=CONTRACTION,
          gemm=_conv_transpose_gemm, weights=CONV_WEIGHTS, weighted=True, backward=PRODUCTS,
          infer=rules.conv_transpose)
def conv_transpose_cost(attrs, inputs, output, weights):
    # every input element meets (Cout/group) * Kh * Kw weights (W is [Cin, Cout/group, Kh, Kw])
    macs = math.prod(inputs[0]) * math.prod(_kernel(weights, inputs)[1:])
    return macs, 2 * macs + (math.prod(output) if "B" in weights else 0)


@register("Gemm", saves=(INPUT,), unit=MATRIX, fusion=ANCHOR, gemm=_matmul_gemm,
          weights=("A", "W", "B"), weighted=True, backward=PRODUCTS, infer=rules.gemm)
@register("MatMul", saves=(OPERANDS,), unit=MATRIX, fusion=ANCHOR,  # takes its bias Add
          gemm=_matmul_gemm, weights=("A", "W"), weighted=True, backward=PRODUCTS, infer=rules.matmul)
def matmul_cost(attrs, inputs, output, weights):
    macs = math.prod(output) * _inner(attrs, inputs, weights)  # prod(output) * K
    bias = "B" in weights or len(inputs) > 2
    return macs, 2 * macs + (math.prod(output) if bias else 0)




def _einsum_sizes(equation: str, inputs) -> dict[str, int]:
    """Each index letter's size, read off the operand it labels ('...' spans the dims it leaves)."""
    sizes: dict[str, int] = {}
    for term, shape in zip(equation.replace(" ", "").split("->")[0].split(","), inputs):
        head, dots, tail = term.partition("...")
        for letter, size in zip(head, shape):
            sizes[letter] = size
        for letter, size in zip(tail, shape[len(shape) - len(tail):] if tail else ()):
            sizes[letter] = size
    return sizes


# einsum's gradient is one einsum per operand (torch.einsum decomposes to bmm): the forward's MACs each
@register("Einsum", saves=(OPERANDS,), unit=MATRIX, fusion=CONTRACTION, backward=PRODUCTS,
          infer=rules.einsum)
def einsum_cost(attrs, inputs, output, weights):
    # a product of operands: every output element sums over the contracted indices (the letters no
    # output keeps), one multiply-add each: prod(output) * prod(contracted sizes). One operand
    # (a sum or a transpose): an add per input element
    equation = attrs["equation"]
    if len(inputs) < 2:
        return 0, math.prod(inputs[0]) if inputs else 0
    sizes = _einsum_sizes(equation, inputs)
    terms = equation.replace(" ", "").replace("...", "")
    # implicit mode (no '->'): the output keeps the letters that appear once
    kept = terms.split("->")[1] if "->" in terms else {c for c in terms if c.isalpha() and terms.count(c) == 1}
    macs = math.prod(output) * math.prod(size for letter, size in sizes.items() if letter not in kept)
    return macs, 2 * macs


def _query_rows(attrs, output):
    """B x H x L: the output is (B, H, L, Dv), or (B, L, H x Dv) with q_num_heads H (ONNX's 3-D form)."""
    return math.prod(output[:-1]) * (attrs.get("q_num_heads", 1) if len(output) == 3 else 1)


# Scaled dot-product attention as one op (ONNX Attention-23, PyTorch's scaled_dot_product_attention): Q (B, H, L, Dk),
# K (B, Hkv, S, Dk), V (B, Hkv, S, Dv). What it saves is what the fused backends PyTorch picks keep (flash and
# memory-efficient attention on CUDA, flash attention for CPU): Q, K, V, the output and one fp32 logsumexp per
# query row, stated as half a STATISTICS group (two fp32 values); never the L x S probabilities (the math
# fallback's). Its backward is one fused kernel (attention_backward).
def attention_backward(attrs, inputs, output):
    """Flash attention's backward (FlashAttention-2, Dao 2023, Algorithm 2; PyTorch's
    _scaled_dot_product_flash_attention_backward), per head: the scores again, S = Q K^T (L S Dk), then
    dV = P^T dO (L S Dv), dP = dO V^T (L S Dv), dQ = dS K (L S Dk), dK = dS^T Q (L S Dk): S (3|Q| + 2|Y|) MACs.
    Per score: P = exp(S scale - logsumexp) (3) and dS = P (dP - D) (2); per output element D = rowsum(dO O) (2)."""
    keys, q, y = inputs[1][-2], math.prod(inputs[0]), math.prod(output)
    macs = keys * (3 * q + 2 * y)
    return macs, 2 * macs + 5 * _query_rows(attrs, output) * keys + 2 * y


@register("Attention", saves=(INPUTS, OUTPUT, STATISTICS), unit=MATRIX, fusion=CONTRACTION,
          statistics=lambda attrs, output: (_query_rows(attrs, output) + 1) // 2, infer=rules.attention,
          backward=Backward(fused=attention_backward))
def attention_cost(attrs, inputs, output, weights):
    # Q K^T then P V: B*H*L * S * (Dk + Dv) MACs, S keys to each query row, whatever the layout: S * (|Q| + |Y|).
    # Per score, the scale (1) and the softmax (3, as Softmax's entry), and the mask's add where one is given
    keys = inputs[1][-2]
    macs = keys * (math.prod(inputs[0]) + math.prod(output))
    return macs, 2 * macs + (4 + (len(inputs) > 3)) * _query_rows(attrs, output) * keys
