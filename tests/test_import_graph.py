"""The layers point one way (issue 15).

The import graph of ``datera_iac`` and ``datera_iac_tf`` (every import, also those inside
functions and under ``TYPE_CHECKING``), read statically by grimp, follows one order of
layers top to bottom (so no two layers import each other, directly or through a chain);
the leaves import no other layer; node/ never imports resources/; and
``import datera_iac.dsp`` (in a fresh interpreter) loads no resource kind and no node code.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest

from tests.tools import require_module

D = "datera_iac."


def _layers():
    """Top to bottom; a module may import only from layers below its own. One strict order
    is the "no cycle" rule: an import back up (directly or through any chain) is reported.
    Names in one ``Layer`` are independent: neither imports the other."""
    import grimp

    return [
        grimp.Layer(D + "cli", D + "cinder_cli", "datera_iac_tf"),  # front ends' entry points
        D + "engine",
        D + "pulumi",
        D + "sim",
        D + "resources",
        grimp.Layer(D + "dsp", D + "node"),
        D + "config",
        D + "cinder",
        grimp.Layer(D + "fields", D + "names", D + "secrets", D + "tenants", D + "files",
                    D + "validators", D + "_launcher"),
        D + "errors",
    ]


@pytest.fixture(scope="module")
def graph():
    require_module("grimp")
    import grimp

    return grimp.build_graph("datera_iac", "datera_iac_tf", cache_dir=None)


def _illegal(graph) -> dict[str, list[str]]:
    """"importer layer -> imported layer" -> a few of the import chains that go up."""
    out = {}
    for dep in graph.find_illegal_dependencies_for_layers(layers=_layers()):
        out[f"{dep.importer} -> {dep.imported}"] = sorted(
            " -> ".join([*r.heads, *r.middle, *r.tails]) for r in dep.routes)[:3]
    return out


def test_the_layer_check_can_fail(graph):
    """An import back up (the DSP client importing a kind) is reported with its chain."""
    g = copy.deepcopy(graph)
    g.add_import(importer=D + "dsp._client", imported=D + "resources.base")
    assert D + "dsp -> " + D + "resources" in _illegal(g)


def test_layers_point_down(graph):
    """No cycle between config, dsp, resources, node and the front ends (engine,
    provider, pulumi): every import, direct or through a chain, points down."""
    bad = _illegal(graph)
    assert not bad, json.dumps(bad, indent=1)


def test_node_never_imports_resources(graph):
    assert not graph.chain_exists(importer=D + "node", imported=D + "resources",
                                  as_packages=True)


def test_dsp_loads_no_kind_and_no_node_code():
    code = ("import json, sys; import datera_iac.dsp; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('datera_iac'))))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, timeout=60)
    loaded = json.loads(out.stdout)
    assert "datera_iac.dsp._client" in loaded  # the probe really imported the client
    wrong = [m for m in loaded if m.split(".")[1:2] in (["resources"], ["node"], ["engine"],
                                                         ["pulumi"], ["sim"])]
    assert not wrong, wrong
