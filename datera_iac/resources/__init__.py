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

# Each kind module registers itself in KINDS on import (one line per kind module).
from datera_iac.resources import tenant  # noqa: F401,E402
from datera_iac.resources import volume  # noqa: F401,E402
from datera_iac.resources import snapshot  # noqa: F401,E402
from datera_iac.resources import volume_type  # noqa: F401,E402  (registers VolumeType)
from datera_iac.resources import attachment  # noqa: F401,E402  (registers NodeAttachment)
from datera_iac.resources import volume_image  # noqa: F401,E402  (registers VolumeImage)
from datera_iac.resources import group  # noqa: F401,E402  (ConsistencyGroup, ...Snapshot)
