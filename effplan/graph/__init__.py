"""The graph of ONNX-named ops: the builder; the op table (ops.py: per op type its shape rule, cost,
saved tensors, unit and fusion class) and the shape rules it names (shapes.py); ONNX import and export."""
