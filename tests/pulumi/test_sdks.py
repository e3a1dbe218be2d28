"""The TypeScript and Go SDKs (sdk/nodejs, sdk/go): generated from schema.json by the
built Pulumi CLI (`pulumi package gen-sdk` through our language hosts), current, compiled
by their toolchains (tsc from npm; go build with the pinned go.sum), and stamped with the
provider's version in a layout that can be published (npm tarball; Go module)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile

import pytest

from datera_iac.pulumi.provider import plugin_version
from datera_iac.pulumi.schema import GO_MODULE, NODE_PACKAGE
from tests.pulumi.cli import ROOT, pulumi_bin
from tests.tools import require

SDK = ROOT / "tools" / "pulumi" / "sdk.sh"


def _sdk(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    pulumi_bin()  # fails with the build command when the CLI is not built
    got = subprocess.run(["bash", str(SDK), *args], capture_output=True, text=True,
                         timeout=timeout, stdin=subprocess.DEVNULL)
    assert got.returncode == 0, f"sdk.sh {' '.join(args)}:\n{got.stdout[-3000:]}\n{got.stderr[-3000:]}"
    return got


def _require_go() -> None:
    if not shutil.which("go"):
        pytest.fail("go not found: install the Go toolchain (>= 1.26)", pytrace=False)


def test_sdks_are_what_gen_sdk_writes():
    """sdk/ is current: `pulumi package gen-sdk` of today's schema writes the same files."""
    _require_go()
    _sdk("check")


def test_typescript_sdk_compiles_and_packs(tmp_path):
    """tsc compiles sdk/nodejs; the packed tarball is the npm package at the provider's
    version, with JavaScript, type declarations and the plugin's name and version."""
    require("node", "npm")
    tgz = _sdk("build", "nodejs", str(tmp_path)).stdout.strip().splitlines()[-1]
    assert tgz.endswith(f"-{plugin_version()}.tgz"), tgz
    with tarfile.open(tgz) as tar:
        names = set(tar.getnames())
        meta = json.load(tar.extractfile("package/package.json"))
    assert {"package/index.js", "package/index.d.ts", "package/volume.js",
            "package/listVolumes.d.ts"} <= names
    assert meta["name"] == NODE_PACKAGE and meta["version"] == plugin_version()
    assert meta["pulumi"] == {"resource": True, "name": "datera", "version": plugin_version()}


def test_go_sdk_builds_with_its_pinned_modules():
    """go build ./... of sdk/go with -mod=readonly (go.sum complete); the module path and
    pulumi-plugin.json carry the package's name and version."""
    _require_go()
    _sdk("build", "go")
    gomod = (ROOT / "sdk" / "go" / "go.mod").read_text()
    assert gomod.startswith(f"module {GO_MODULE}\n")
    plugin = json.loads((ROOT / "sdk" / "go" / "datera" / "pulumi-plugin.json").read_text())
    assert plugin == {"resource": True, "name": "datera", "version": plugin_version()}
