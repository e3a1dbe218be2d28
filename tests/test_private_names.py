"""No module reaches into a kind's privates (issue 15).

What several kinds share about the DSP (ids, URLs, the storage-1/volume-1 layout) lives in
public modules (``datera_iac.resources.layout``); a ``_name`` of a kind module
(``datera_iac.resources.<kind>``) is that kind's own business, and so is a ``_name`` of the
classes it defines. Read statically from the source of ``datera_iac`` and
``datera_iac_tf``: ``from datera_iac.resources.<kind> import _x``, ``<kind module>._x``
(after ``from datera_iac.resources import <kind>``), ``<Class>._x`` (after
``from datera_iac.resources.<kind> import <Class>``) and ``KINDS[...]._x`` are reported.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = "datera_iac.resources."


def _is_kind_module(name: str) -> bool:
    """A public module of datera_iac.resources (a kind or a shared public helper module);
    its underscore names are private to it."""
    return name.startswith(PKG) and not name[len(PKG):].startswith("_") and \
        "." not in name[len(PKG):]


def _private_uses(source: str, module: str) -> list[str]:
    """``module``'s uses of another resources module's underscore names, as
    ``"line: module._name"``."""
    out = []
    tree = ast.parse(source)
    aliases: dict[str, str] = {}  # local name -> resources module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                if node.module + "." == PKG and _is_kind_module(full):
                    aliases[a.asname or a.name] = full
                elif _is_kind_module(node.module) and node.module != module and \
                        a.name.startswith("_") and not a.name.startswith("__"):
                    out.append(f"{node.lineno}: {node.module}.{a.name}")
                elif _is_kind_module(node.module) and node.module != module and \
                        a.name[:1].isupper():
                    aliases[a.asname or a.name] = full  # a class of another kind module
        elif isinstance(node, ast.Import):
            for a in node.names:
                if _is_kind_module(a.name) and a.asname:
                    aliases[a.asname] = a.name
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_") or \
                node.attr.startswith("__"):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in aliases and \
                aliases[node.value.id] != module:
            out.append(f"{node.lineno}: {aliases[node.value.id]}.{node.attr}")
        elif isinstance(node.value, ast.Subscript) and isinstance(node.value.value, ast.Name) \
                and node.value.value.id == "KINDS":
            out.append(f"{node.lineno}: KINDS[...].{node.attr}")
    return out


def _scan() -> dict[str, list[str]]:
    found = {}
    for top in ("datera_iac", "datera_iac_tf"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT)
            module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
            uses = _private_uses(path.read_text(encoding="utf-8"), module)
            if uses:
                found[str(rel)] = uses
    return found


def test_the_check_can_fail():
    """Both spellings of a reach into a kind's privates are reported, the kind's own
    imports and a private helper module's public names are not."""
    src = ("from datera_iac.resources.volume import _ai_url, Volume\n"
           "from datera_iac.resources import volume as v, snapshot\n"
           "from datera_iac.resources._util import check\n"
           "v._first_si_vol({})\nsnapshot.split_snapshot_id\n")
    assert _private_uses(src, "datera_iac.resources.group") == [
        "1: datera_iac.resources.volume._ai_url",
        "4: datera_iac.resources.volume._first_si_vol",
    ]
    assert _private_uses("from datera_iac.resources.volume import _x\n",
                         "datera_iac.resources.volume") == []


def test_the_check_sees_a_kind_class_and_the_registry():
    """A private method of another kind module's class, by its name or through the kinds'
    registry, is reported; the class's public names and its own module's uses are not."""
    src = ("from datera_iac.resources.volume import Volume as V, VolumeSpec\n"
           "from datera_iac.resources.base import KINDS\n"
           "V._lookup(1)\nVolumeSpec.__attrs_attrs__\nV.resolve_ref(1)\n"
           "KINDS['Volume']._tenant_of('x')\n")
    assert _private_uses(src, "datera_iac.resources.snapshot") == [
        "3: datera_iac.resources.volume.Volume._lookup",
        "6: KINDS[...]._tenant_of",
    ]
    assert _private_uses("from datera_iac.resources.volume import Volume\nVolume._x\n",
                         "datera_iac.resources.volume") == []


def test_no_module_reaches_into_a_kinds_privates():
    """Kinds, the engine and the front ends use the kinds' public names only (shared DSP
    layout helpers are in datera_iac.resources.layout)."""
    assert _scan() == {}
