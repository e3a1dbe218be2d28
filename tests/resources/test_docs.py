"""docs/resources.md lists every input and output field of each kind, in its section, as
``python -m datera_iac.docgen`` generates them from the kinds' metadata (``--check``)."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from datera_iac import docgen
from datera_iac.resources import KINDS

ALL = sorted({k.name for k in KINDS.values()})

DOC = (Path(__file__).resolve().parents[2] / "docs" / "resources.md").read_text()


@pytest.mark.parametrize("kind", ALL)
def test_fields_documented(kind):
    """Each field of the kind's Spec and Outputs has a row in its table."""
    k = KINDS[kind]
    for part, cls in (("inputs", k.Spec), ("outputs", k.Outputs)):
        head = f"#### {kind} {part}"
        assert head in DOC
        table = DOC.split(head, 1)[1].split("\n\n", 2)[1]
        rows = {line.split("|")[1].strip().strip("`") for line in table.splitlines()
                if line.startswith("| `")}
        assert rows == {f.name for f in attrs.fields(cls)}


def test_docgen_check_passes():
    """The page is what the generator writes (run ``python -m datera_iac.docgen``)."""
    assert docgen.main(["--check"]) == 0, "run: python -m datera_iac.docgen"
    assert docgen.render(DOC) == DOC


def test_docgen_check_sees_a_stale_table():
    """A changed doc line, a missing row or a new field makes the page stale; the prose
    around the tables is kept as written."""
    vol = KINDS["Volume"]
    doc = attrs.fields_dict(vol.Spec)["size"].metadata["datera_iac.doc"]
    assert docgen.render(DOC.replace(doc, "Old words.")) == DOC
    row = next(line for line in DOC.splitlines() if line.startswith("| `chap_user` |"))
    assert docgen.render(DOC.replace(row + "\n", "", 1)) == DOC
    prose = "A Volume is one app_instance"
    assert prose in docgen.render(DOC)
    # a kind the page lacks gets a section of its own before the closing sections
    bare = DOC.replace("## Volume\n", "## Volume (prose)\n").replace(
        "<!-- fields of Volume:", "<!-- was:").replace("<!-- end of the generated fields of Volume -->", "")
    grown = docgen.render(bare, [vol])
    assert grown.index("\n## Volume\n") < grown.index("## Request counts")


def test_every_kind_has_a_section():
    """Each kind has a "## <Kind>" section holding its generated block."""
    for name in ALL:
        assert f"## {name}\n" in DOC and f"<!-- fields of {name}:" in DOC
