"""Ephemeral resources (Terraform 1.10+): values that exist only while Terraform runs,
never in the plan or the state.

``datera_chap_credentials`` makes CHAP secrets for the write-only arguments
(``chap_secret_wo``, ``chap_initiator_secret_wo`` of ``datera_volume`` and
``datera_node_attachment``; Terraform accepts an ephemeral value only in a write-only
argument, the provider block or another ephemeral context). Each open makes new secrets
(:func:`datera_iac.secrets.new_chap_secret`: 12-16 letters and digits from the operating
system's random source); the write-only arguments apply them only when their
``*_wo_version`` changes, so the secret the DSP holds is the one of the apply that bumped
the version, and Terraform never stored it anywhere. Nothing is called on the DSP: no
provider configuration is needed, and there is nothing to renew or close.
"""

from __future__ import annotations

from typing import Any, ClassVar

from tf import types as tft
from tf.schema import Attribute, Schema

from datera_iac.secrets import CHAP_SECRET_LENGTHS, new_chap_secret

__all__ = ["EPHEMERAL_RESOURCES", "ChapCredentials"]


class ChapCredentials:
    """``ephemeral "datera_chap_credentials" "x" { length = 16, mutual = true }``."""

    type_name: ClassVar[str] = "datera_chap_credentials"
    description: ClassVar[str] = (
        "CHAP secrets made while Terraform runs, for the write-only `*_wo` arguments: never "
        "in the plan or the state (Terraform 1.10+ for ephemeral resources, 1.11+ for "
        "write-only arguments). Each run makes new ones; the DSP gets them when the "
        "`*_wo_version` argument changes.")

    @classmethod
    def schema(cls) -> Schema:
        lo, hi = CHAP_SECRET_LENGTHS[0], CHAP_SECRET_LENGTHS[-1]
        return Schema(description=cls.description, attributes=[
            Attribute("length", tft.Number(), optional=True,
                      description=f"Characters per secret, {lo}-{hi} (default {hi})."),
            Attribute("mutual", tft.Bool(), optional=True,
                      description="Also make `initiator_secret` (mutual CHAP; default false)."),
            Attribute("secret", tft.String(), computed=True, sensitive=True,
                      description="The CHAP secret (for `chap_secret_wo`)."),
            Attribute("initiator_secret", tft.String(), computed=True, sensitive=True,
                      description="Mutual CHAP: a second, different secret (for "
                      "`chap_initiator_secret_wo`); null unless `mutual`."),
        ])

    @staticmethod
    def check(config: dict[str, Any]) -> tuple[str, str] | None:
        """(attribute, problem) of an invalid configuration, or None."""
        length = config.get("length")
        if length is not None and length is not tft.Unknown and (
                int(length) != length or int(length) not in CHAP_SECRET_LENGTHS):
            return "length", (f"a CHAP secret has {CHAP_SECRET_LENGTHS[0]} to "
                              f"{CHAP_SECRET_LENGTHS[-1]} characters, not {length}")
        return None

    @staticmethod
    def open(config: dict[str, Any]) -> dict[str, Any]:
        length = int(config.get("length") or CHAP_SECRET_LENGTHS[-1])
        secret = new_chap_secret(length)
        initiator = None
        if config.get("mutual"):
            initiator = secret
            while initiator == secret:  # mutual CHAP needs two different secrets
                initiator = new_chap_secret(length)
        return {"length": config.get("length"), "mutual": config.get("mutual"),
                "secret": secret, "initiator_secret": initiator}


EPHEMERAL_RESOURCES: dict[str, type[ChapCredentials]] = {ChapCredentials.type_name: ChapCredentials}
