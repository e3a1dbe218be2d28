"""The real Pulumi CLI (tools/pulumi/build.sh) on the plugin itself: `pulumi package
get-schema` validates the served schema against Pulumi's metaschema and binds it, and a
stack pointed at a DSP that is not there fails in seconds with one clear error."""

from __future__ import annotations

import json
import shutil
import socket
import time

import yaml

from datera_iac.pulumi.gen import SCHEMA_PATH
from tests.pulumi.cli import PulumiCli


def test_get_schema_validates_the_served_schema(tmp_path):
    """get-schema runs pulumi-resource-datera (GetSchema), checks the answer against the
    metaschema and binds it: no error, no warning, our tokens. The same command refuses a
    schema with a bad type, so the check is real."""
    cli = PulumiCli(tmp_path)
    exe = shutil.which("pulumi-resource-datera", path=cli.env["PATH"])
    assert exe, "pulumi-resource-datera is not on PATH: pip install -e ."
    got = cli.run("package", "get-schema", exe)
    assert "warning" not in got.stderr.lower() and "error" not in got.stderr.lower(), got.stderr
    served, ours = json.loads(got.stdout), json.loads(SCHEMA_PATH.read_text())
    assert served["version"] == ours["version"]
    assert sorted(served["resources"]) == sorted(ours["resources"])
    assert sorted(served["functions"]) == sorted(ours["functions"])
    assert served["config"] == ours["config"]

    bad = json.loads(SCHEMA_PATH.read_text())
    bad["resources"]["datera:index:Volume"]["properties"]["size"] = {"type": "strng"}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    refused = cli.run("package", "get-schema", str(tmp_path / "bad.json"), check=False)
    assert refused.returncode != 0
    assert "failed to bind schema" in refused.stderr and "strng" in refused.stderr


def test_wrong_endpoint_fails_in_seconds(tmp_path):
    """`pulumi up` of a stack whose endpoint nobody listens on (datera503Timeout left at its
    default of 120 s) fails well before that timeout, naming the endpoint."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    prog = tmp_path / "prog"
    prog.mkdir()
    (prog / "Pulumi.yaml").write_text(yaml.safe_dump({
        "name": "wrong-endpoint", "runtime": "yaml",
        "resources": {"t": {"type": "datera:index:Tenant", "properties": {"name": "nowhere"}}},
    }))
    cli = PulumiCli(tmp_path)
    cli.run("stack", "init", "dev", cwd=prog)
    cli.config("datera:endpoint", f"http://127.0.0.1:{port}", cwd=prog)
    cli.config("datera:sanPassword", "x-password-1", secret=True, cwd=prog)
    start = time.monotonic()
    got = cli.run("up", "--yes", "--skip-preview", cwd=prog, check=False, timeout=110)
    took = time.monotonic() - start
    out = got.stdout + got.stderr
    assert got.returncode != 0
    assert f"127.0.0.1:{port}" in out, out[-2000:]
    assert "Traceback" not in out
    assert took < 60, f"took {took:.0f} s"
