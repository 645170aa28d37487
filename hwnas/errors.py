"""The one exception type the CLI turns into a one-line message and a non-zero exit.

It is defined in the torch-free runner (which ships alone to targets and must raise it too) and
re-exported here, so everything else names it as `hwnas.errors.UserError`.
"""

from hwnas.latency.runner.errors import UserError

__all__ = ["UserError"]
