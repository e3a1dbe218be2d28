"""Pulumi-YAML stack loading: interpolation, and errors that name file, line and resource."""

import pytest

from datera_iac.engine.graph import dependencies
from datera_iac.engine.model import Concat, Ref, StackError
from datera_iac.engine.yamlstack import load_yaml, parse_interpolation

GOOD = """\
name: demo
runtime: yaml
config:
  size:
    type: integer
    default: 3
  datera:endpoint: http://127.0.0.1:9
variables:
  prefix: app-${pulumi.stack}
resources:
  a:
    type: datera:index:EngineToy
    properties:
      name: ${prefix}
      size: ${size}
  b:
    type: datera:index:EngineToy
    properties:
      name: b-one
      parentId: ${a.id}
      tags:
        src: "from-${a.serial}"
        lit: "$${not.a.ref}"
    options:
      dependsOn: [ "${a}" ]
      protect: true
outputs:
  aid: ${a.id}
"""


def _write(tmp_path, text):
    p = tmp_path / "Pulumi.yaml"
    p.write_text(text)
    return p


def test_good_stack_resolves_config_variables_and_refs(toy, tmp_path):
    """Config defaults, variables, ${pulumi.stack}, refs and $${ escapes load as expected."""
    st = load_yaml(_write(tmp_path, GOOD), stack="prod")
    a, b = st.resources["a"], st.resources["b"]
    assert a.properties == {"name": "app-prod", "size": 3}
    assert isinstance(b.properties["parent_id"], Ref) and str(b.properties["parent_id"]) == "${a.id}"
    tags = b.properties["tags"]
    assert isinstance(tags["src"], Concat) and tags["lit"] == "${not.a.ref}"
    assert b.options.protect and b.options.depends_on == ("a",)
    assert st.provider_config == {"endpoint": "http://127.0.0.1:9"}
    assert dependencies(st) == {"a": set(), "b": {"a"}}
    assert b.where.line == 16


def test_config_override_is_typed(toy, tmp_path):
    """--config size=7 is coerced to the declared integer type."""
    st = load_yaml(_write(tmp_path, GOOD), config={"size": "7", "datera:sanLogin": "bob"})
    assert st.resources["a"].properties["size"] == 7
    assert st.provider_config["san_login"] == "bob"


@pytest.mark.parametrize(
    "edit, line, words",
    [
        (("runtime: yaml", "runtime: yaml\nbogus: 1"), 3, ["unknown top-level key 'bogus'"]),
        (("type: datera:index:EngineToy\n    properties:\n      name: ${prefix}",
          "type: datera:index:Nope\n    properties:\n      name: ${prefix}"), 12, ["'a'", "unknown resource type"]),
        (("      size: ${size}", "      sise: ${size}"), 15, ["'a'", "unknown property 'sise'", "size"]),
        (("      protect: true", "      protect: true\n      aliases: [x]"), 27, ["'b'", "unsupported option"]),
        (("parentId: ${a.id}", "parentId: ${zz.id}"), 20, ["'b'", "'zz'"]),
        (("      size: ${size}", "      size: 0"), 15, ["'a'", "size"]),
        (("      size: ${size}", "      size: ${size}\n      zone: [x, y]"), 16,
         ["'a'", "zone", "expected a string, got a list"]),
        (("      dependsOn: [ \"${a}\" ]", "      dependsOn: [ \"${c}\" ]"), 25, ["'b'"]),
    ],
)
def test_errors_name_file_line_and_resource(toy, tmp_path, edit, line, words):
    """Unknown keys/types/properties/options, bad refs and bad values are StackErrors
    pointing at the file, the line and the resource."""
    old, new = edit
    assert old in GOOD
    p = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(StackError) as e:
        load_yaml(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}:{line}:"), msg
    for w in words:
        assert w in msg


def test_cycle_is_an_error_naming_the_cycle(toy, tmp_path):
    """A reference cycle names every resource on it."""
    text = GOOD.replace("      name: ${prefix}", "      name: ${prefix}\n      parentId: ${b.id}")
    st = load_yaml(_write(tmp_path, text))
    with pytest.raises(StackError) as e:
        dependencies(st)
    assert "dependency cycle: a -> b -> a" in str(e.value)
    assert f"{tmp_path / 'Pulumi.yaml'}:" in str(e.value)


def test_invalid_yaml_reports_line(toy, tmp_path):
    """A YAML syntax error is a StackError with the line."""
    p = _write(tmp_path, "name: x\nresources:\n  a: [unclosed\n")
    with pytest.raises(StackError) as e:
        load_yaml(p)
    assert "invalid YAML" in str(e.value) and f"{p}:" in str(e.value)


def test_missing_config_value_says_how_to_set_it(toy, tmp_path):
    """A declared config key without value or default tells the user how to set it."""
    p = _write(tmp_path, "name: x\nruntime: yaml\nconfig:\n  size:\n    type: integer\nresources: {}\n")
    with pytest.raises(StackError) as e:
        load_yaml(p)
    assert "--config size=" in str(e.value)


def test_parse_interpolation_paths():
    """Access paths support attributes, list indexes and quoted keys."""
    assert parse_interpolation("v.id") == ("v", ("id",))
    assert parse_interpolation('g.extraSpecs["DF:replica_count"]') == ("g", ("extraSpecs", "DF:replica_count"))
    assert parse_interpolation("v.list[2]") == ("v", ("list", 2))
    with pytest.raises(ValueError):
        parse_interpolation("v..id")


def test_bad_value_beside_a_reference_is_reported_at_plan_with_line(toy_ws):
    """A resource with references is validated when the plan resolves them; the error still
    names the file, the line of the field and the resource."""
    ws = toy_ws(GOOD.replace("name: b-one", "name: B!"))
    plan = ws.preview()
    assert len(plan.errors) == 1
    assert plan.errors[0].startswith(f"{ws.stack_file}:19:") and "'b'" in plan.errors[0]


def test_parse_with_lines_builds_scalars_as_the_safe_loader_does():
    """Plain strings skip the constructor (issue 21: a 10,000-volume stack parses ~40%
    faster); every scalar still comes out as yaml.safe_load makes it."""
    import yaml

    from datera_iac.engine.yamlstack import parse_with_lines

    text = ("a: text\nb: 12\nc: 0x1f\nd: 1.5\ne: true\nf: null\ng: '12'\nh: !!str 13\n"
            "i: 2001-12-14\nj: [x, 1, ~, 'y z']\nk: &anchor v\nl: *anchor\nm: \"q\\tr\"\n"
            "n: |\n  two\n  lines\n")
    assert parse_with_lines(text) == yaml.safe_load(text)
