"""Resource kinds. Importing this package registers every kind in ``KINDS``."""

from datera_iac.resources.base import (  # noqa: F401
    KINDS,
    Context,
    Diff,
    FieldChange,
    Kind,
    Observed,
    Timeouts,
    kind_for,
)

__all__ = ["KINDS", "Context", "Diff", "FieldChange", "Kind", "Observed", "Timeouts", "kind_for"]
