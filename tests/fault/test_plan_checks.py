"""Input the DSP would refuse half-way is refused when planning, with 0 requests: metadata
over the DSP's 2,048 serialized characters (before: 4 writes, then a rollback), a metadata
key holding NUL, and a resource that refers to itself (before: a confusing error at apply)."""

from __future__ import annotations

import pytest

from datera_iac.errors import InputError
from tests.fault.conftest import engine_ws

STACK = """\
name: checks
runtime: yaml
resources:
  v:
    type: datera:index:Volume
    properties:
      name: checks-vol
      size: 1
      metadata:
%s
"""

CASES = {
    # 30 keys of 60 characters: ~2,300 characters serialized
    "metadata over 2,048 characters": ("\n".join(f"        k{i:02d}: {'x' * 60}" for i in range(30)),
                                       ["metadata is", "characters serialized", "2,048"], 9, "metadata"),
    "NUL in a metadata key": ('        "bad\\0key": x', ["NUL", "bad\\x00key"], 9, "metadata"),
    "self-reference": ("        me: ${v.id}", ["refers to itself", "${v.id}"], 9, "metadata"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_at_plan_with_location_and_no_request(sim, tmp_path, engine_env, figure, case):
    body, words, line, field = CASES[case]
    ws = engine_ws(sim, tmp_path / "s", STACK % body)
    before = sum(sim.counters().values())
    try:
        with pytest.raises(InputError) as e:
            ws.preview()
    finally:
        ws.close()
    text = str(e.value)
    figure("plan_checks", case=case, requests=sum(sim.counters().values()) - before,
           located=f"Pulumi.yaml:{line}:" in text)
    assert all(w in text for w in words), text
    assert f"Pulumi.yaml:{line}:" in text and f"field '{field}" in text, text
    assert sum(sim.counters().values()) == before  # not a single request


def test_metadata_at_the_limit_is_written(sim, tmp_path, engine_env):
    """The check counts what the DSP counts: metadata of exactly 2,048 serialized characters
    (the volume_type key included) is accepted by the simulator."""
    import json

    from datera_iac.resources.volume import METADATA_MAX_CHARS

    meta = {"a": ""}
    meta["a"] = "x" * (METADATA_MAX_CHARS - len(json.dumps(meta)))
    assert len(json.dumps(meta)) == METADATA_MAX_CHARS
    ws = engine_ws(sim, tmp_path / "ok", STACK % f"        a: {meta['a']}")
    try:
        _, result = ws.up(quiet=True)
    finally:
        ws.close()
    assert result is not None and result.ok, result and result.failures


def test_self_reference_in_a_program_is_refused(tmp_path):
    """A Python program whose resource takes its own output is refused when loaded."""
    from datera_iac.engine.core import load_stack
    from datera_iac.engine.model import StackError

    prog = tmp_path / "main.py"
    prog.write_text(
        "from datera_iac import engine\n"
        "from datera_iac.engine.model import Ref\n"
        "engine.Volume('v', name='pv', size=1, metadata={'me': Ref('v', ('id',))})\n"
    )
    try:
        load_stack(prog)
    except StackError as e:
        assert "refers to itself" in str(e) and "metadata" in str(e)
    else:
        pytest.fail("a self-referring resource was accepted")
