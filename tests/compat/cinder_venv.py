"""Where the OpenStack Cinder Datera driver's own virtualenv is, for the tests that run it.

cinder 29.0.0 and dfs-sdk 1.2.27 live in a venv of their own (cinder's dependency set is
large and pins versions the project does not share). ``.ci/run`` builds it; locally::

    python3 -m venv ~/.cache/datera-iac/cinder-venv
    ~/.cache/datera-iac/cinder-venv/bin/pip install cinder==29.0.0 dfs-sdk==1.2.27

or point ``DATERA_CINDER_VENV`` at another one. Without it the tests skip, except under CI
(``CI=true``), where a missing venv is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

VENV = Path(os.environ.get("DATERA_CINDER_VENV",
                           Path.home() / ".cache" / "datera-iac" / "cinder-venv"))
PY = VENV / "bin" / "python"


def require_venv() -> None:
    """Skip (locally) or fail (under CI) when the driver's venv is missing."""
    if PY.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"cinder venv missing at {VENV}: .ci/run must build it")
    pytest.skip(f"no cinder venv at {VENV} (see tests/compat/cinder_venv.py)")
