"""Helpers shared by the user-needs tests (imported as ``needkit``; conftest puts this
directory on sys.path, since the Terraform tests' ``conftest`` module name is taken)."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path
from typing import Any

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac.node.iscsi import wwid_for_serial
from datera_iac.node.testing import FakeLun, FakeNode, FakeTarget


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


class SimFabricNode(FakeNode):
    """A FakeNode whose fabric serves every storage instance ``client``'s DSP has in
    ``tenants``."""

    def __init__(self, root: Any, client: DspClient, *, tenants: tuple[str, ...] = ("/root",),
                 **kw: Any) -> None:
        super().__init__(root, **kw)
        self.client, self.tenants = client, tenants

    def sync(self) -> None:
        for tenant in self.tenants:
            for ai in self.client.list("/app_instances", tenant=tenant):
                for si in ai.get("storage_instances") or []:
                    access = si.get("access") or {}
                    if not access.get("iqn") or not si.get("volumes"):
                        continue
                    vol = si["volumes"][0]
                    serial = vol["uuid"]
                    portals = [f"{ip}:3260" for ip in access.get("ips") or []]
                    old = self.targets.get(access["iqn"])
                    if old is None:
                        old = self.add_target(FakeTarget(access["iqn"], portals, {0: FakeLun(
                            wwid_for_serial(serial), serial.replace("-", ""))}))
                    old.portals = portals  # ACL/CHAP set by a test are kept
                    old.luns[0].size = int(vol["size"]) << 30

    def _discovery(self, portal: str) -> tuple[int, str, str]:
        self.sync()
        return super()._discovery(portal)

    def write_text(self, path: str, data: str) -> None:
        if path.endswith("/device/rescan"):  # a real rescan is when the kernel learns the size
            self.sync()
        super().write_text(path, data)


def sim_fabric_node(root: Any, client: DspClient, *, iqn: str = "iqn.1993-08.org.debian:01:needs",
                    tenants: tuple[str, ...] = ("/root",), **kw: Any) -> Any:
    """A FakeNode (kernel iSCSI/dm-multipath simulated) whose fabric serves every storage
    instance the simulator has; a LUN takes its DSP volume's size at discovery and at a
    per-device rescan (as a kernel does), not before."""
    return SimFabricNode(root, client, tenants=tenants, initiator_iqn=iqn, **kw)


#: where the node a provider process (started by a real terraform / pulumi) reaches is
#: saved, and the endpoint of the DSP its fabric serves
SAVED_NODE_ENV, SAVED_NODE_DSP_ENV = "DATERA_TEST_NODE_DIR", "DATERA_TEST_NODE_DSP"


class SavedFabricNode(SimFabricNode):
    """A :class:`SimFabricNode` that outlives its process: its sessions, node records and
    mounts are saved in ``directory`` after each command and loaded by the next process
    (a real terraform or pulumi starts a new provider process for each command, and the
    attachment's read asks the node what it holds)."""

    def __init__(self, directory: Any, client: DspClient, **kw: Any) -> None:
        saved = Path(directory) / "node.pickle"
        super().__init__(Path(directory) / "root", client, **kw)
        if saved.exists():
            vars(self).update(pickle.loads(saved.read_bytes()))
            self._write_mounts()
        self.saved = saved

    def _save(self) -> None:
        state = {k: v for k, v in vars(self).items() if k not in ("client", "saved")}
        assert not state["_pending"], "only a node without delayed events can be saved"
        self.saved.write_bytes(pickle.dumps(state))

    def _execute(self, argv: list[str], **kw: Any) -> Any:
        try:
            return super()._execute(argv, **kw)
        finally:
            self._save()

    def write_text(self, path: str, data: str) -> None:
        super().write_text(path, data)
        self._save()


def saved_node_runner() -> Any:
    """``{"local": node}`` for a provider process: the node saved in ``$DATERA_TEST_NODE_DIR``
    whose fabric serves the DSP at ``$DATERA_TEST_NODE_DSP``."""
    client = DspClient(DateraConfig.from_mapping(
        {"endpoint": os.environ[SAVED_NODE_DSP_ENV], "san_login": "admin",
         "san_password": "password"}, use_env=False))
    return {"local": SavedFabricNode(os.environ[SAVED_NODE_ENV], client,
                                     initiator_iqn="iqn.1993-08.org.debian:01:needs")}


def terraform_provider_with_saved_node() -> int:
    """terraform-provider-datera whose NodeAttachments reach :func:`saved_node_runner`
    (an entry for ``install_dev_overrides(entry=...)``)."""
    from datera_iac_tf._serve import serve
    from datera_iac_tf.provider import DateraProvider

    serve(lambda: DateraProvider(runner=saved_node_runner()), sys.argv)
    return 0


def pulumi_provider_with_saved_node() -> int:
    """pulumi-resource-datera whose NodeAttachments reach :func:`saved_node_runner`."""
    import datera_iac.pulumi.provider as p
    from datera_iac.pulumi._serve import main

    real = p.DateraProvider

    def factory(config: Any) -> Any:
        ctx = p.default_context_factory(config)
        ctx.runner = saved_node_runner()
        return ctx

    class WithSavedNode(real):  # type: ignore[misc, valid-type]
        def __init__(self, **kw: Any) -> None:
            super().__init__(context_factory=factory, **kw)

    p.DateraProvider = WithSavedNode  # what _serve builds
    return main()


def engine_ws(sim: Any, directory: Any, text: str, *, runner: Any = None,
              dsp_config: dict[str, Any] | None = None, **kw: Any) -> Any:
    """An engine Workspace over the stack ``text`` with a ready Context whose runner is
    ``runner`` (a fake node), on ``sim``."""
    from datera_iac.engine.core import Workspace
    from datera_iac.resources.base import Context, Timeouts

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    f = d / "Pulumi.yaml"
    f.write_text(text)
    cfg = DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": "admin",
                                     "san_password": "password", **(dsp_config or {})},
                                    use_env=False)
    timeouts = kw.pop("timeouts", Timeouts(create=20, update=20, delete=20, read=20))
    ctx = Context(client=DspClient(cfg), config=cfg, runner=runner, timeouts=timeouts)
    return Workspace(stack_file=f, ctx=ctx, timeouts=timeouts, **kw)


def writes_of(sim: Any) -> dict[str, int]:
    """Write requests (POST/PUT/DELETE under /v2.x, logins excepted) served so far."""
    return {k: n for k, n in sim.counters().items()
            if k.split(" ")[0] in ("POST", "PUT", "DELETE", "PATCH") and "/v2." in k
            and "login" not in k}


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}
