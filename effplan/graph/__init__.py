"""The graph of ONNX-named ops: the builder and its shape rules, the per-op table (cost, saved tensors,
unit, fusion class), ONNX import and export."""
