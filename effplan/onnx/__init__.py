"""The ONNX front-end: reading a file (read.py, wire.py), importing it into effplan's graph
(importer.py, with shape subgraphs folded by fold.py), the model object commands take (model.py), and
export (export.py). It imports the graph core and base only: never the spec builder or another front-end."""
