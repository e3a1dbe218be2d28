"""Helpers shared by the user-needs tests (imported as ``needkit``; conftest puts this
directory on sys.path, since the Terraform tests' ``conftest`` module name is taken)."""

from __future__ import annotations

from typing import Any

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient


def client_for(sim: Any) -> DspClient:
    """An operator's client of ``sim`` (for out-of-band changes), ignoring DATERA_* env."""
    return DspClient(DateraConfig.from_mapping(
        {"endpoint": sim.http_url, "san_login": "admin", "san_password": "password"},
        use_env=False))


def app_instances(client: DspClient, tenant: str = "/root") -> list[dict[str, Any]]:
    return list(client.list("/app_instances", tenant=tenant))


def delete_out_of_band(client: DspClient, ai_id: str, tenant: str = "/root") -> None:
    """What an operator does in the DSP UI: offline (force), then delete."""
    client.put(f"/app_instances/{ai_id}", {"admin_state": "offline", "force": True},
               tenant=tenant)
    client.delete(f"/app_instances/{ai_id}", tenant=tenant)


def configure(rpc: Any, sim: Any, **extra: Any) -> Any:
    from datera_iac.pulumi._codec import Secret

    return rpc.configure(endpoint=sim.http_url, sanLogin="admin",
                         sanPassword=Secret(sim.users["admin"]), datera503Timeout=5, **extra)


TF_HEAD = """
terraform {
  required_providers {
    datera = { source = "datera/datera" }
  }
}
provider "datera" {}
"""
