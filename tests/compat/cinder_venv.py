"""Where the OpenStack Cinder Datera driver's own virtualenv is, for the tests that run it.

cinder 29.0.0 and dfs-sdk 1.2.27 live in a venv of their own (cinder's dependency set is
large and pins versions the project does not share). ``.ci/run`` builds it; locally::

    python3 -m venv ~/.cache/datera-iac/cinder-venv
    ~/.cache/datera-iac/cinder-venv/bin/pip install cinder==29.0.0 dfs-sdk==1.2.27

or point ``DATERA_CINDER_VENV`` at another one. Without it the tests fail, saying how to
build it (never a skip that would hide a broken CI).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

VENV = Path(os.environ.get("DATERA_CINDER_VENV",
                           Path.home() / ".cache" / "datera-iac" / "cinder-venv"))
PY = VENV / "bin" / "python"


def require_venv() -> None:
    """Fail, with the commands that build it, when the driver's venv is missing."""
    if PY.exists():
        return
    pytest.fail(f"no cinder venv at {VENV}: install it with `python3 -m venv {VENV} && "
                f"{VENV}/bin/pip install cinder==29.0.0 dfs-sdk==1.2.27` (`bash .ci/run` does)",
                pytrace=False)
