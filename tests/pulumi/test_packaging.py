"""How the engine finds the plugin: the console script on PATH, and the install archive.

Each variant is started exactly as the engine starts a plugin executable (engine address
as the argument, port read from stdout) and answers GetPluginInfo."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml

from datera_iac.pulumi.package import build_archive
from datera_iac.pulumi.provider import plugin_version
from datera_iac.pulumi.testing import Rpc, stop_plugin

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def _serving(argv: list[str], cwd: Path | None = None,
             env: dict[str, str] | None = None) -> Iterator[Rpc]:
    """``argv`` started as the engine starts a plugin: its port read from stdout."""
    proc = subprocess.Popen([*argv, "127.0.0.1:1"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=cwd, env=env)
    try:
        port = proc.stdout.readline().decode().strip()
        assert port.isdigit(), f"no port handshake from {argv}"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
            yield Rpc(channel)
    finally:
        stop_plugin(proc)


def _handshake(argv: list[str], cwd: Path | None = None) -> str:
    with _serving(argv, cwd) as rpc:
        return rpc.GetPluginInfo().version


def test_console_script_on_path():
    """``pip install datera-iac`` puts ``pulumi-resource-datera`` on PATH; it serves."""
    exe = shutil.which("pulumi-resource-datera")
    assert exe, "pulumi-resource-datera is not on PATH: pip install -e . first"
    assert _handshake([exe]) == plugin_version()


def test_archive_for_plugin_install(tmp_path):
    """The archive holds one executable launcher named as the engine expects."""
    archive = build_archive(tmp_path / "dist")
    assert archive.name.startswith(f"pulumi-resource-datera-v{plugin_version()}-")
    with tarfile.open(archive) as tar:
        assert tar.getnames() == ["pulumi-resource-datera"]
        assert tar.getmember("pulumi-resource-datera").mode & 0o111
        tar.extractall(tmp_path / "plugin", filter="data")
    exe = tmp_path / "plugin" / "pulumi-resource-datera"
    assert os.access(exe, os.X_OK)
    assert _handshake([str(exe)]) == plugin_version()


def test_manifest_declares_the_python_runtime():
    """PulumiPlugin.yaml names the runtime a source-based plugin is run with."""
    manifest = yaml.safe_load((ROOT / "PulumiPlugin.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"


def test_source_based_plugin_directory_runs(tmp_path):
    """The language host runs a plugin directory with a ``__main__.py`` as
    ``python <directory> <engine address>``, from the stack's directory: it serves."""
    assert (ROOT / "requirements.txt").read_text().splitlines()[-1] == "-e ."
    # run from elsewhere: the directory argument alone must suffice
    assert _handshake([sys.executable, str(ROOT)], cwd=tmp_path) == plugin_version()


def test_cli_subcommands(tmp_path):
    """``datera-iac pulumi schema/gen --check/package`` work from the main CLI."""
    import json

    from click.testing import CliRunner

    from datera_iac.cli import cli
    from datera_iac.pulumi.gen import SCHEMA_PATH

    runner = CliRunner()
    out = runner.invoke(cli, ["pulumi", "schema"])
    assert out.exit_code == 0 and json.loads(out.output) == json.loads(SCHEMA_PATH.read_text())
    assert runner.invoke(cli, ["pulumi", "gen", "--check"]).exit_code == 0
    built = runner.invoke(cli, ["pulumi", "package", "--out", str(tmp_path)])
    assert built.exit_code == 0 and Path(built.output.splitlines()[0]).is_file()


def _schema_through(exe: Path, env: dict[str, str]) -> dict:
    """GetSchema from ``exe`` started as the engine does (the provider built after the port
    line answers it)."""
    import json

    from pulumi.runtime.proto import provider_pb2 as pb

    with _serving([str(exe)], env=env) as rpc:
        return json.loads(rpc.GetSchema(pb.GetSchemaRequest()).schema)


def _unpacked(tmp_path: Path, **launcher: object) -> Path:
    """The archive (``build_archive``'s launcher arguments) unpacked as ``pulumi plugin
    install`` does; its executable."""
    with tarfile.open(build_archive(tmp_path / "dist", **launcher)) as tar:  # type: ignore[arg-type]
        tar.extractall(tmp_path / "plugin", filter="data")
    return tmp_path / "plugin" / "pulumi-resource-datera"


def test_archive_launcher_starts_python_without_site_and_serves(tmp_path):
    """Issue 21: the archive's launcher runs the provider with ``python -S`` (no ``.pth``
    file is read before the port line the engine waits for) and serves the schema."""
    exe = _unpacked(tmp_path)
    assert exe.read_text().startswith(f"#!{sys.executable} -S\n")
    assert "from datera_iac.pulumi._serve import main" in exe.read_text()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    served = _schema_through(exe, env)
    assert served["name"] == "datera" and served["version"] == plugin_version()


@pytest.fixture(scope="module")
def pth_venv(tmp_path_factory) -> tuple[Path, Path]:
    """A virtualenv (no pip, no system site-packages) whose one ``.pth`` file is the only
    way to this checkout and to the installed dependencies (``pulumi``, ``grpc``, ...); the
    file's last line appends the name of the thread reading it to ``$PTH_MARK``. Returns
    the venv's python and a directory holding only ``grpc`` and what ``import grpc``
    imports from outside the standard library (links)."""
    import json
    import site

    d = tmp_path_factory.mktemp("pth-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(d / "venv")],
                   check=True, timeout=120)
    python = d / "venv" / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    deps = [*site.getsitepackages(), *([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])]
    mark = ("import os, threading; p = os.environ.get('PTH_MARK'); "
            "p and open(p, 'a').write(threading.current_thread().name + '\\n')")
    (Path(purelib) / "datera-test.pth").write_text("\n".join([str(ROOT), *deps, mark]) + "\n")
    # the modules `import grpc` loads from the site directories, linked into one dir
    probe = ("import json, sys; before = set(sys.modules); import grpc; "
             "print(json.dumps({n: m.__file__ for n, m in sys.modules.items() if n not in before "
             "and '.' not in n and getattr(m, '__file__', None)}))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                       check=True, timeout=60).stdout)
    early = d / "grpc-only"
    early.mkdir()
    for name, file in loaded.items():
        f = Path(file)
        if not {Path(p) for p in deps} & set(f.parents):
            continue  # the standard library
        (early / (name if f.name == "__init__.py" else f.name)).symlink_to(
            f.parent if f.name == "__init__.py" else f)
    assert (early / "grpc").is_dir()
    return python, early


def _clean_env(mark: Path) -> dict[str, str]:
    """No PYTHONPATH, no user site: only the launcher and the venv's ``.pth`` give paths."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONUSERBASE")}
    return {**env, "PYTHONNOUSERSITE": "1", "PTH_MARK": str(mark)}


def test_pth_files_are_read_after_the_port_line_by_the_build(tmp_path, pth_venv):
    """The entry imports without the ``.pth`` files (this checkout and gRPC on the
    launcher's path), the provider does not (``pulumi`` is reached only through one): the
    build reads them after the port line, on another thread than the main one, and the
    first RPC, waiting for that build, is answered."""
    python, early = pth_venv
    exe = _unpacked(tmp_path, python=str(python), pythonpath=[str(ROOT), str(early)])
    mark = tmp_path / "pth-read-by"
    served = _schema_through(exe, _clean_env(mark))
    assert served["name"] == "datera"
    readers = set(mark.read_text().splitlines())  # (a venv's site reads its .pth files twice)
    assert len(readers) == 1 and readers != {"MainThread"}, readers


def test_an_entry_that_needs_the_pth_files_reads_them_first(tmp_path, pth_venv):
    """An editable install is found through a ``.pth`` file: the entry cannot be imported
    without them, so the launcher reads them before the port line (on the main thread),
    the build does not read them again, and the provider builds."""
    python, _ = pth_venv
    exe = _unpacked(tmp_path, python=str(python))
    mark = tmp_path / "pth-read-by"
    served = _schema_through(exe, _clean_env(mark))
    assert served["name"] == "datera"
    assert set(mark.read_text().splitlines()) == {"MainThread"}


def test_in_a_venv_the_launcher_puts_the_venvs_site_packages_on_the_path(tmp_path, pth_venv):
    """Without ``site``, a venv's interpreter has the base installation's ``sys.prefix``:
    the launcher puts the venv's site-packages on the path, not the base's (whose packages
    would shadow the venv's), and reads no ``.pth`` file before the entry runs."""
    import json

    from datera_iac._launcher import launcher_text, write_launcher

    python, _ = pth_venv
    (tmp_path / "probe.py").write_text(
        "import json, sys\n\ndef main():\n    print(json.dumps(sys.path))\n    return 0\n")
    exe = write_launcher(tmp_path / "probe", launcher_text(str(python), [str(tmp_path)],
                                                           "probe:main", "probe"))
    mark = tmp_path / "pth-read-by"
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True, timeout=60,
                         env=_clean_env(mark))
    path = json.loads(out.stdout)
    ours, base = json.loads(subprocess.run(
        [str(python), "-c", "import json, site, sys; print(json.dumps("
         "[site.getsitepackages(), site.getsitepackages([sys.base_prefix])]))"],
        capture_output=True, text=True, check=True, timeout=60).stdout)
    assert set(ours) <= set(path) and not set(base) & set(path), path
    assert not mark.exists()


def test_the_provider_builds_with_asyncio_deferred(tmp_path):
    """With the stand-ins in place (the plugin as it starts), the provider's build imports
    the real asyncio and answers: GetSchema, then a Check that goes through Pulumi's
    property codec."""
    from pulumi.runtime.proto import provider_pb2 as pb

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with _serving([str(_unpacked(tmp_path))], env=env) as rpc:
        assert rpc.GetSchema(pb.GetSchemaRequest()).schema
        resp = rpc.check("datera:index:Volume", "vol1", {"name": "vol1", "size": 1})
        assert not resp.failures and resp.inputs["name"] == "vol1"
