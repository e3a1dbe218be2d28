"""Terraform's create intents (:mod:`datera_iac.resources.intents`), kept in
``$TF_DATA_DIR/datera-intents/`` (default ``.terraform`` in the working directory Terraform
runs the provider in)."""

from __future__ import annotations

import os

from datera_iac.resources import intents

__all__ = ["IntentJournal"]


class IntentJournal(intents.IntentJournal):
    """The journal in ``root`` (default ``$TF_DATA_DIR`` or ``.terraform``)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        super().__init__(root if root is not None else os.environ.get("TF_DATA_DIR", ".terraform"))
