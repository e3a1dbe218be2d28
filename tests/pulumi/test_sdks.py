"""The TypeScript and Go SDKs (sdk/nodejs, sdk/go): generated from schema.json by the
built Pulumi CLI (`pulumi package gen-sdk` through our language hosts), current, compiled
by their toolchains (tsc from npm; go build with the pinned go.sum), and stamped with the
provider's version in a layout that can be published (npm tarball; Go module)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile

import pulumi
import pytest
import yaml

from datera_iac.pulumi.examples import EXAMPLES, render
from datera_iac.pulumi.gen import SCHEMA_PATH
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

    # every resource's TypeScript example compiles against the built package
    src = tmp_path / "src"
    link = src / "node_modules" / "@datera-iac" / "datera"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(src / "bin", target_is_directory=True)
    (src / "ex").mkdir()
    for token in EXAMPLES:
        (src / "ex" / f"{token.rsplit(':', 1)[1]}.ts").write_text(render(token, "typescript"))
    got = subprocess.run(["npx", "--no-install", "tsc", "--noEmit", "--strict", "--skipLibCheck",
                          "--target", "es2020", "--module", "commonjs", "--moduleResolution", "node",
                          *sorted(str(p) for p in (src / "ex").iterdir())],
                         cwd=src, capture_output=True, text=True, timeout=600)
    assert got.returncode == 0, got.stdout + got.stderr


def test_go_sdk_builds_with_its_pinned_modules():
    """go build ./... of sdk/go with -mod=readonly (go.sum complete); the module path and
    pulumi-plugin.json carry the package's name and version."""
    _require_go()
    _sdk("build", "go")
    gomod = (ROOT / "sdk" / "go" / "go.mod").read_text()
    assert gomod.startswith(f"module {GO_MODULE}\n")
    plugin = json.loads((ROOT / "sdk" / "go" / "datera" / "pulumi-plugin.json").read_text())
    assert plugin == {"resource": True, "name": "datera", "version": plugin_version()}


def test_go_examples_build(tmp_path):
    """Every resource's Go example (in its schema description) builds against sdk/go."""
    _require_go()
    mod = tmp_path / "ex"
    mod.mkdir()
    example = ROOT / "examples" / "pulumi-go"
    gomod = (example / "go.mod").read_text().replace(
        "example.com/datera-example-go", "example.com/datera-examples").replace(
        "=> ../../sdk/go", f"=> {ROOT / 'sdk' / 'go'}")
    (mod / "go.mod").write_text(gomod)
    shutil.copy(example / "go.sum", mod / "go.sum")
    for token in EXAMPLES:
        d = mod / token.rsplit(":", 1)[1].lower()
        d.mkdir()
        (d / "main.go").write_text(render(token, "go") + "\n")
    got = subprocess.run(["go", "build", "-o", os.devnull, "./..."], cwd=mod, capture_output=True,
                         text=True, timeout=600,
                         env={**os.environ, "GOFLAGS": "-mod=readonly -buildvcs=false"})
    assert got.returncode == 0, got.stderr
    fmt = subprocess.run(["gofmt", "-l", "."], cwd=mod, capture_output=True, text=True)
    assert fmt.stdout == "", f"not gofmt-formatted: {fmt.stdout}"


class _Echo(pulumi.runtime.Mocks):
    def new_resource(self, args):
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args):
        return {}


@pytest.mark.parametrize("token", sorted(EXAMPLES))
def test_python_example_runs(token, tmp_path):
    """The resource's Python example runs under Pulumi mocks (its keyword arguments are
    the SDK's) and registers the example's resources with their inputs."""
    from datera_iac.pulumi.testing import run_program

    prog = tmp_path / "__main__.py"
    prog.write_text(render(token, "python"))
    registered = []

    class Mocks(_Echo):
        def new_resource(self, args):
            registered.append((args.typ, args.name, args.inputs))
            return super().new_resource(args)

    out = run_program(str(prog), Mocks())
    steps = EXAMPLES[token][1]
    assert [(t, n) for t, n, _ in registered] == [(f"datera:index:{typ}", name)
                                                  for name, typ, _ in steps]
    assert out["id"] == f"{steps[-1][0]}-id"


def test_yaml_examples_name_schema_types_and_properties():
    """Each YAML example uses our types, their input properties, and outputs they have."""
    schema = json.loads(SCHEMA_PATH.read_text())
    for token in EXAMPLES:
        doc = yaml.safe_load(render(token, "yaml"))
        for name, res in doc["resources"].items():
            spec = schema["resources"][res["type"]]
            assert set(res["properties"]) <= set(spec["inputProperties"]), (token, name)
            assert set(spec["requiredInputs"]) <= set(res["properties"]), (token, name)
            for v in res["properties"].values():
                if isinstance(v, str) and v.startswith("${"):
                    ref, prop = v[2:-1].split(".")
                    target = schema["resources"][doc["resources"][ref]["type"]]
                    assert prop == "id" or prop in target["properties"], (token, v)


def test_every_resource_has_an_example_in_each_language():
    """Each resource's description has one example block per language; descriptions are
    prose (no line indented 4+ spaces outside a code block, which Markdown would turn
    into a code block)."""
    schema = json.loads(SCHEMA_PATH.read_text())
    assert set(EXAMPLES) == set(schema["resources"])
    for token, res in schema["resources"].items():
        desc = res["description"]
        for lang in ("typescript", "python", "go", "yaml"):
            assert desc.count(f"```{lang}\n") == 1, (token, lang)
    fenced = False
    for where in (schema["resources"], schema["functions"], schema["types"]):
        for token, spec in where.items():
            texts = [spec.get("description", "")] + [
                p.get("description", "") for k in ("properties", "inputProperties")
                for p in (spec.get(k) or {}).values()]
            for text in texts:
                for line in text.splitlines():
                    if line.startswith("```"):
                        fenced = not fenced
                    assert fenced or not line.startswith(("    ", "\t")), (token, line)
