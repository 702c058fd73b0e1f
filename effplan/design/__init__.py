"""A design and the graph it builds: specs (TOML into dataclasses), compound scaling, block kinds."""
from . import blocks  # noqa: F401,E402  (registers the block kinds spec rows are checked against)
