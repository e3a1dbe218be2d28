"""docs/resources.md lists every input and output field of each kind, in its section."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from datera_iac.resources import KINDS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "resources.md").read_text()


@pytest.mark.parametrize("kind", ["Tenant", "Volume", "Snapshot"])
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
