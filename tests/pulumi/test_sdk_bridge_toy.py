"""Generated SDK classes, run by a real Pulumi program under the mocks bridge (toy kind).

The SDK source for the test-only kind is rendered by the same generator as the shipped
``_sdk.py``, imported, and used by a program; registrations go through ``EngineMocks`` to
the in-process provider, so typed arguments, camelCase translation, secrets and the
up/update/replace/delete cycle are exercised end to end."""

from __future__ import annotations

import importlib.util
import sys
import textwrap

import pytest

from datera_iac.pulumi.gen import render_sdk
from datera_iac.pulumi.testing import EngineMocks, run_program

PROGRAM = textwrap.dedent('''
    import pulumi
    import toy_sdk

    cfg = pulumi.Config()
    disk = toy_sdk.Disk("data", size=int(cfg.require("size")), tags={"team": "a"},
                        password="hunter2")
    pulumi.export("iqn", disk.iqn)
    pulumi.export("disk_id", disk.disk_id)
    pulumi.export("size", disk.size)
    pulumi.export("token", disk.token)
    if cfg.get("lookup"):
        found = toy_sdk.Disk.get("found", cfg.get("lookup"))
        pulumi.export("found_size", found.size)
        pulumi.export("found_iqn", found.iqn)
    if cfg.get("provider_ip"):
        p = toy_sdk.Provider("dsp2", san_ip=cfg.get("provider_ip"), san_password="pw-abc")
        toy_sdk.Disk("other", opts=pulumi.ResourceOptions(provider=p), size=2, name="other")
    if cfg.get_bool("extra"):
        toy_sdk.Disk("extra", opts=pulumi.ResourceOptions(depends_on=[disk]), size=1,
                     name=cfg.get("extra_name") or "extra")
''')


@pytest.fixture
def program(tmp_path, toy):
    src = render_sdk({toy.Disk.token: toy.Disk()}, version="9.9.9")
    (tmp_path / "toy_sdk.py").write_text(src)
    (tmp_path / "__main__.py").write_text(PROGRAM)
    sys.path.insert(0, str(tmp_path))
    sys.modules.pop("toy_sdk", None)
    try:
        yield str(tmp_path / "__main__.py")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("toy_sdk", None)


def test_generated_sdk_is_typed(tmp_path, toy):
    """The generated class takes typed keyword arguments and documents them from the core."""
    src = render_sdk({toy.Disk.token: toy.Disk()})
    path = tmp_path / "sdk_mod.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("sdk_mod", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    import inspect

    sig = inspect.signature(mod.Disk.__init__)
    assert list(sig.parameters)[:4] == ["__self__", "resource_name", "opts", "size"]
    assert sig.parameters["size"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "Size in GiB (grow only)." in mod.Disk.__init__.__doc__
    assert "disk_id" in dir(mod.Disk) and "Target IQN." in mod.Disk.iqn.__doc__
    assert sig.parameters["size"].default is inspect.Parameter.empty  # required, typed
    with pytest.raises(TypeError, match="size"):
        mod.Disk("x")
    with pytest.raises(TypeError, match="Missing required property 'size'"):
        mod.Disk("x", size=None)


def test_program_up_update_replace_destroy(program, toy, toy_store):
    """Run the program; re-run unchanged (no-op), changed (update, replace), then destroy."""
    mocks = EngineMocks(toy, config={})
    out = run_program(program, mocks, config={"project:size": "5"})
    assert out["size"] == 5 and out["iqn"] == "iqn.2013-05.com.daterainc:data"
    assert out["disk_id"] in toy_store and out["token"] == f"tok-{out['disk_id']}"
    (rid,) = toy_store
    spec = toy_store[rid]["spec"]
    assert (spec.name, spec.tags, spec.password) == ("data", {"team": "a"}, "hunter2")
    urn = "urn:pulumi:stack::project::test:index:Disk::data"
    # secrets stay secret in what the engine would store
    assert repr(mocks.state[urn][1]["password"]) == "Secret(***)"

    again = EngineMocks(toy, state=mocks.state)
    run_program(program, again, config={"project:size": "5"})
    again.finish()
    assert again.operations == [("same", urn)]

    grow = EngineMocks(toy, state=again.state)
    run_program(program, grow, config={"project:size": "7", "project:extra": "true"})
    grow.finish()
    extra = "urn:pulumi:stack::project::test:index:Disk::extra"
    assert grow.operations == [("update", urn), ("create", extra)]
    assert toy_store[rid]["spec"].size == 7 and len(toy_store) == 2

    rename = EngineMocks(toy, state=grow.state)
    run_program(program, rename, config={"project:size": "7", "project:extra": "true",
                                         "project:extra_name": "extra-two"})
    rename.finish()
    assert rename.operations == [("same", urn), ("delete-replaced", extra), ("replace", extra)]
    assert sorted(r["spec"].name for r in toy_store.values()) == ["data", "extra-two"]

    shrink = EngineMocks(toy, state=rename.state)
    with pytest.raises(Exception, match="cannot shrink from 7 to 3"):
        run_program(program, shrink, config={"project:size": "3"})

    rename.destroy()
    assert toy_store == {}


def test_get_reads_an_existing_disk(program, toy, toy_store):
    """``Disk.get(name, id)`` reads the object through the provider (import semantics)."""
    first = EngineMocks(toy, config={})
    out = run_program(program, first, config={"project:size": "4"})
    second = EngineMocks(toy, state=first.state)
    out = run_program(program, second, config={"project:size": "4", "project:lookup": "data"})
    assert out["found_size"] == 4 and out["found_iqn"] == "iqn.2013-05.com.daterainc:data"
    assert ("read", "urn:pulumi:stack::project::test:index:Disk::found") in second.operations
    with pytest.raises(Exception, match="does not exist"):
        run_program(program, EngineMocks(toy, state=first.state),
                    config={"project:size": "4", "project:lookup": "nope"})


def test_explicit_provider(program, toy, toy_store):
    """An explicit ``Provider`` configures the plugin with its (camelCased) options; its
    password travels as a secret and reaches the core in clear."""
    mocks = EngineMocks(toy, config={})
    run_program(program, mocks, config={"project:size": "1", "project:provider_ip": "10.0.0.9"})
    assert any({"san_ip": "10.0.0.9", "san_password": "pw-abc"}.items() <= c.items()
               for c in toy.configs), toy.configs
    assert sorted(r["spec"].name for r in toy_store.values()) == ["data", "other"]
