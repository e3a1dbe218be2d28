"""Fixtures of the real-kernel NodeAttachment tests (see vmkit.py for the guest).

``vm_lab`` (one per test session and xdist worker) is below. The tests carry
``xdist_group("vm")``, but pytest-xdist 3.8 does not honour it under pytest 9 (it renames
``item._nodeid``; pytest 9 reads ``_id``), so ``-n 2`` splits them over two workers, each
booting its own guest. CI therefore runs them apart, on one worker (``.ci/run``:
``pytest -n 1 -m vm tests/vm``), and the main run deselects ``vm``. The lab is:

* the simulator's tgtd data plane listening on 127.0.0.1 and 127.0.0.2 (free port,
  private control port, stopped with ``tgtadm --op delete --mode system``);
* a DSP simulator whose storage instances advertise the *guest-side* portals
  10.0.2.100 and 10.0.2.101 (what the guest must connect to; tgt's sendtargets answer
  names 127.0.0.x, which inside the guest is the guest itself, so portals come from the
  DSP's answer, as with a real DSP);
* one booted guest: qemu forwards a guest connection to 10.0.2.10N:3260 to tgtd on
  127.0.0.(N+1), and 127.0.0.1:<free port> to the guest's sshd.

An environmental failure (no qemu, a build or boot that fails) FAILS the test with its
reason; it is never a skip.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import vmkit  # noqa: E402

from vmkit import Lab, Recorder  # noqa: E402


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == HERE:
            item.add_marker(pytest.mark.vm)
            item.add_marker(pytest.mark.xdist_group("vm"))
            if item.get_closest_marker("timeout") is None:  # a boot, or a cold build, first
                item.add_marker(pytest.mark.timeout(1200))


@pytest.fixture(scope="session")
def vm_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("vm-lab"))
    try:
        lab.start()
    except vmkit.VmError as e:
        lab.stop()
        pytest.fail(f"the real-kernel test guest is not available: {e}", pytrace=False)
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture(scope="session")
def guest(vm_lab: Lab) -> vmkit.Guest:
    """The first guest (booted once per session)."""
    if vm_lab.guests:
        return vm_lab.guests[0]
    try:
        return vm_lab.boot("node1")
    except vmkit.VmError as e:
        pytest.fail(f"the real-kernel test guest did not boot: {e}", pytrace=False)


@pytest.fixture
def vm_ws(vm_lab: Lab, tmp_path: Path):
    """``vm_ws(text, recorder=None)``: an engine Workspace over a Pulumi-YAML stack on
    the lab's simulator; node commands reach the guest over SSH (the production
    SshRunner; with a Recorder, the same runner recording its commands)."""
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient
    from datera_iac.engine.core import Workspace
    from datera_iac.resources.base import Context, Timeouts

    def make(text: str, recorder: Recorder | None = None, name: str = "stack") -> Any:
        d = tmp_path / name
        d.mkdir(parents=True, exist_ok=True)
        f = d / "Pulumi.yaml"
        f.write_text(text)
        cfg = DateraConfig.from_mapping({"endpoint": vm_lab.sim.http_url, "san_login": "admin",
                                         "san_password": "password"}, use_env=False)
        timeouts = Timeouts(create=300, update=300, delete=300, read=120)
        ctx = Context(client=DspClient(cfg), config=cfg,
                      runner=recorder.runner_for if recorder else None, timeouts=timeouts)
        return Workspace(stack_file=f, ctx=ctx, timeouts=timeouts)

    return make


@pytest.fixture
def dsp(vm_lab: Lab) -> Iterator[Any]:
    """An operator's client of the lab's simulator (checks and out-of-band changes)."""
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient

    c = DspClient(DateraConfig.from_mapping({"endpoint": vm_lab.sim.http_url,
                                             "san_login": "admin", "san_password": "password"},
                                            use_env=False))
    yield c
    c.close()


_WIPE = ("for m in $(grep -E '^/dev/(mapper|dm-|sd)' /proc/mounts | cut -d' ' -f2); do "
         "umount -l $m; done; multipath -F >/dev/null 2>&1; "
         "iscsiadm -m node --logoutall=all >/dev/null 2>&1; "
         "iscsiadm -m node -o delete >/dev/null 2>&1; multipath -F >/dev/null 2>&1; true")


@pytest.fixture(autouse=True)
def _clean_lab(request: Any) -> Iterator[None]:
    """After each real-kernel test, whatever it left (it failed half-way) is wiped from
    the guests (this test VM's own mounts, maps and sessions) and the simulator, so one
    failure does not cascade into the next test."""
    yield
    if "vm_lab" not in request.fixturenames:
        return
    lab = request.getfixturevalue("vm_lab")
    for g in lab.guests:
        if g.proc is not None:
            try:
                g.sh(_WIPE, timeout=120)
            except Exception as e:  # noqa: BLE001 - the next test reports a dead guest
                print(f"cleanup of {g.name} failed: {e}", file=sys.stderr)
    lab.sim.reset()
