"""effplan: static FLOPs, parameter and memory planning for compound-scaled CNNs.

    >>> import effplan
    >>> p = effplan.analyze(effplan.resolve("efficientnet-b0"))
    >>> p.totals.params
    5288548
"""
from .base.version import __version__

from .plan.profile import Profile, analyze, profile  # noqa: E402
from .design.blocks import build  # noqa: E402
from .base.errors import EffplanError  # noqa: E402
from .design.scaling import Coefficients, Design, compound, resolve, with_overrides  # noqa: E402
from .design.spec import ModelSpec, load_spec  # noqa: E402

__all__ = ["Coefficients", "Design", "EffplanError", "ModelSpec", "Profile", "analyze", "build",
           "compound", "load_spec", "profile", "resolve", "with_overrides"]
