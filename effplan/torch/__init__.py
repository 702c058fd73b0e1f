"""The PyTorch front-end: a module exported with torch.export (on the meta device, or with fake copies
of real weights) and imported into effplan's graph (importer.py, with the aten-to-ONNX op rules of
aten.py); model.py is the object commands take, source.py resolves a model argument (timm:NAME,
torchvision:NAME, PACKAGE.MODULE:CALLABLE). torch is an optional extra: this package's own __init__
and source.py import it only when a PyTorch model is asked for. It imports the graph core and base
only: never the spec builder or another front-end."""
