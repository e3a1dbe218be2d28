"""The read batcher Terraform's refresh goes through: defined once for every front end in
:mod:`datera_iac.resources.batching` (the Pulumi provider's ``Read`` uses it too)."""

from datera_iac.resources.batching import (
    MAX_BATCH,
    DeleteChecks,
    WINDOW,
    ReadBatcher,
    SharedListings,
    batches,
)

__all__ = ["MAX_BATCH", "WINDOW", "DeleteChecks", "ReadBatcher", "SharedListings", "batches"]
