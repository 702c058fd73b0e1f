"""The graph core, which knows no file format: the graph (digraph.py) and its builder (builder.py); the op
table by op family (ops/: per op type its shape rule, cost, saved tensors, backward, unit, fusion class and
weights); the shape rules the entries name (infer.py, infer_layout.py), which builders and import both call."""
