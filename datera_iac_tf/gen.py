"""Generate the provider's docs (tfplugindocs layout) and schema snapshot from the schema.

    python -m datera_iac_tf.gen            # rewrite datera_iac_tf/docs/** and schema.json
    python -m datera_iac_tf.gen --check    # exit 1 (and list the files) when they are stale

Both are derived from the live provider (that is, from the kinds and DateraConfig), so a
field added to a kind shows up here after one command; ``tests/terraform/test_schema_docs.py``
fails until it is run, and also checks the snapshot against what a real Terraform reports
(``terraform providers schema -json``).

``schema.json`` holds, for the provider block, each resource and each data source, the
schema exactly as ``terraform providers schema -json`` prints it, plus the attributes that
force replacement (which Terraform does not print).

Docs layout (what the Terraform Registry and tfplugindocs use): ``docs/index.md``,
``docs/resources/<name>.md``, ``docs/data-sources/<name>.md``, ``docs/functions/<name>.md``, ``docs/ephemeral-resources/<name>.md``, each with an example taken
from ``examples/terraform/**/*.tf`` and, for resources, an Import section.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from tf.gen import tfplugin_pb2 as pb

from datera_iac.docgen import generator_main, stale_paths
from datera_iac_tf._protocol import EPHEMERAL, is_write_only
from datera_iac_tf.provider import DateraProvider
from datera_iac_tf.servicer import Servicer

__all__ = ["PROVIDER_DIR", "REPO", "main", "render_docs", "schema_snapshot"]

PROVIDER_DIR = Path(__file__).resolve().parent
REPO = PROVIDER_DIR.parent
EXAMPLES = REPO / "examples" / "terraform"

_KIND = {pb.StringKind.PLAIN: "plain", pb.StringKind.MARKDOWN: "markdown"}
_WRITE_ONLY_DOC = ("https://developer.hashicorp.com/terraform/language/resources/ephemeral"
                   "#write-only-arguments")


# ---- schema JSON, in Terraform's `providers schema -json` shape ---------------------------


def _attr_json(a: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": json.loads(a.type)}
    if a.description:
        out["description"] = a.description
        out["description_kind"] = _KIND[a.description_kind]
    for flag in ("required", "optional", "computed", "sensitive", "deprecated"):
        if getattr(a, flag):
            out[flag] = True
    if is_write_only(a):  # a field tf's proto lacks (datera_iac_tf/_protocol.py)
        out["write_only"] = True
    return out


def _schema_json(s: Any) -> dict[str, Any]:
    block: dict[str, Any] = {}
    if s.block.attributes:
        block["attributes"] = {a.name: _attr_json(a) for a in s.block.attributes}
    if s.block.description:
        block["description"] = s.block.description
        block["description_kind"] = _KIND[s.block.description_kind]
    return {"version": s.version, "block": block}


def schema_snapshot(app: DateraProvider | None = None) -> dict[str, Any]:
    """The snapshot: Terraform's JSON for our provider, plus ``requires_replace``."""
    app = app or DateraProvider()
    resp = Servicer(app).GetProviderSchema(pb.GetProviderSchema.Request(), None)
    replace = {
        f"{app.get_model_prefix()}{cls.get_name()}": sorted(
            a.name for a in cls.get_schema().attributes if a.requires_replace)
        for cls in app.get_resources()
    }
    return {
        "provider": _schema_json(resp.provider),
        "resource_schemas": {k: _schema_json(v) for k, v in sorted(resp.resource_schemas.items())},
        "data_source_schemas": {k: _schema_json(v)
                                for k, v in sorted(resp.data_source_schemas.items())},
        "functions": {k: _function_json(v) for k, v in sorted(resp.functions.items())},
        "ephemeral_resource_schemas": {
            k: _schema_json(pb.Schema.FromString(v)) for k, v in sorted(
                EPHEMERAL["SchemaEphemeral"].FromString(resp.SerializeToString())
                .ephemeral_resource_schemas.items())},
        "list_resource_schemas": {
            k: _schema_json(pb.Schema.FromString(v)) for k, v in sorted(
                EPHEMERAL["SchemaList"].FromString(resp.SerializeToString())
                .list_resource_schemas.items())},
        "resource_identity_schemas": _identity_json(
            Servicer(app).GetResourceIdentitySchemas(EPHEMERAL["Empty"](), None)),
        "requires_replace": dict(sorted(replace.items())),
    }


def _identity_json(resp: Any) -> dict[str, Any]:
    """``GetResourceIdentitySchemas`` as ``terraform providers schema -json`` prints it."""
    out = {}
    for name, raw in sorted(resp.identity_schemas.items()):
        schema = EPHEMERAL["ResourceIdentitySchema"].FromString(raw)
        attrs_: dict[str, Any] = {}
        for a in schema.identity_attributes:
            entry: dict[str, Any] = {"type": json.loads(a.type)}
            if a.description:
                entry["description"] = a.description
            if a.required_for_import:
                entry["required_for_import"] = True
            if a.optional_for_import:
                entry["optional_for_import"] = True
            attrs_[a.name] = entry
        out[name] = {"version": schema.version, "attributes": attrs_}
    return out


def _function_json(f: Any) -> dict[str, Any]:
    """A ``tfplugin6.Function`` as ``terraform providers schema -json`` prints it."""
    def param(p: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"name": p.name}
        if p.description:
            out["description"] = p.description
        if p.allow_null_value:
            out["is_nullable"] = True
        out["type"] = json.loads(p.type)
        return out

    out: dict[str, Any] = {}
    for key in ("description", "summary"):
        if getattr(f, key):
            out[key] = getattr(f, key)
    out["return_type"] = json.loads(getattr(f, "return").type)
    if f.parameters:
        out["parameters"] = [param(p) for p in f.parameters]
    if f.HasField("variadic_parameter"):
        out["variadic_parameter"] = param(f.variadic_parameter)
    return out


# ---- docs ------------------------------------------------------------------------------------


def _type_label(t: Any) -> str:
    if isinstance(t, str):
        return t.capitalize()
    head, inner = t[0], t[1]
    if head == "object":
        return "Object"
    return f"{head.capitalize()} of {_type_label(inner)}"


def _bullets(attrs: dict[str, Any], names: list[str], replace: set[str]) -> list[str]:
    out = []
    for n in names:
        a = attrs[n]
        flags = []
        if a.get("sensitive"):
            flags.append("Sensitive")
        if a.get("write_only"):
            flags.append(f"[Write-only]({_WRITE_ONLY_DOC})")
        if n in replace:
            flags.append("changing it forces a new resource")
        if a.get("deprecated"):
            flags.append("Deprecated")
        extra = f", {', '.join(flags)}" if flags else ""
        desc = a.get("description", "")
        out.append(f"- `{n}` ({_type_label(a['type'])}{extra}) {desc}".rstrip())
        if isinstance(a["type"], list) and isinstance(a["type"][1], list) and a["type"][1][0] == "object":
            fields = ", ".join(f"`{k}`" for k in a["type"][1][1])
            out.append(f"  Each element has: {fields}.")
    return out


def _schema_md(schema: dict[str, Any], replace: set[str]) -> list[str]:
    attrs = schema["block"].get("attributes", {})
    groups = [
        ("Required", [n for n, a in attrs.items() if a.get("required")]),
        ("Optional", [n for n, a in attrs.items() if a.get("optional")]),
        ("Read-Only", [n for n, a in attrs.items()
                       if a.get("computed") and not a.get("optional")]),
    ]
    lines = ["<!-- generated by `python -m datera_iac_tf.gen` from the schema; do not edit -->",
             "## Schema", ""]
    for title, names in groups:
        if names:
            lines += [f"### {title}", ""]
            if any(attrs[n].get("write_only") for n in names):
                lines += [(f"> **NOTE**: [Write-only arguments]({_WRITE_ONLY_DOC}) are "
                           "supported in Terraform 1.11 and later; they are never stored in the "
                           "plan or state."), ""]
            lines += [*_bullets(attrs, sorted(names), replace), ""]
    return lines


def _blocks(kind: str, type_name: str) -> list[str]:
    """Every ``<kind> "<type_name>" ...`` block in examples/terraform, as written."""
    out = []
    pattern = re.compile(rf'^{kind} "{re.escape(type_name)}" "[^"]+" \{{', re.MULTILINE)
    for path in sorted(EXAMPLES.rglob("*.tf")):
        text = path.read_text()
        for m in pattern.finditer(text):
            depth, i = 0, m.end() - 1
            while i < len(text):
                depth += {"{": 1, "}": -1}.get(text[i], 0)
                i += 1
                if depth == 0:
                    break
            out.append(text[m.start():i])
    return out


def _frontmatter(title: str, description: str) -> list[str]:
    desc = " ".join(description.split())
    return ["---", f'page_title: "{title} - terraform-provider-datera"', 'subcategory: ""',
            "description: |-", f"  {desc}", "---", ""]


def _page(kind: str, type_name: str, schema: dict[str, Any], replace: set[str],
          import_doc: str | None) -> str:
    label = {"resource": "Resource", "ephemeral": "Ephemeral Resource"}.get(kind, "Data Source")
    desc = schema["block"].get("description", "")
    lines = _frontmatter(f"{type_name} {label}", desc)
    lines += [f"# {type_name} ({label})", "", desc, ""]
    examples = _blocks(kind, type_name)
    if examples:
        lines += ["## Example Usage", "", "```terraform", examples[0].strip(), "```", ""]
    lines += _schema_md(schema, replace)
    if import_doc is not None:
        lines += [
            "## Import", "",
            f"Import id: `{import_doc}`. With an `import` block (Terraform 1.5+):", "",
            "```terraform", "import {", f"  to = {type_name}.example",
            f'  id = "{import_doc}"', "}", "```", "",
            "or on the command line:", "", "```shell",
            f"terraform import {type_name}.example '{import_doc}'", "```", "",
            "The next plan is empty when the configuration matches the object.", "",
        ]
    return "\n".join(lines).rstrip() + "\n"


def render_docs(app: DateraProvider | None = None) -> dict[str, str]:
    """relative path under datera_iac_tf/ -> file text."""
    app = app or DateraProvider()
    snap = schema_snapshot(app)
    files: dict[str, str] = {}
    kinds = {a.kind.tf_type: a.kind for a in app.adapters.values()}
    for type_name, schema in snap["resource_schemas"].items():
        short = type_name.removeprefix(app.get_model_prefix())
        files[f"docs/resources/{short}.md"] = _page(
            "resource", type_name, schema, set(snap["requires_replace"].get(type_name, [])),
            kinds[type_name].import_id_doc)
    for type_name, schema in snap["data_source_schemas"].items():
        short = type_name.removeprefix(app.get_model_prefix())
        files[f"docs/data-sources/{short}.md"] = _page("data", type_name, schema, set(), None)
    for name, fn in snap["functions"].items():
        files[f"docs/functions/{name}.md"] = _function_page(name, fn)
    for type_name, schema in snap["ephemeral_resource_schemas"].items():
        short = type_name.removeprefix(app.get_model_prefix())
        files[f"docs/ephemeral-resources/{short}.md"] = _page("ephemeral", type_name, schema,
                                                              set(), None)
    files["docs/index.md"] = _index(snap)
    return files


def _function_page(name: str, fn: dict[str, Any]) -> str:
    lines = _frontmatter(f"{name} function", fn.get("summary", ""))
    params = fn.get("parameters", [])
    sig = ", ".join(f"{p['name']} {_type_label(p['type']).lower()}" for p in params)
    lines += [f"# {name} (Function)", "", fn.get("summary", ""), "",
              fn.get("description", ""), "", "## Signature", "", "```text",
              f"{name}({sig}) {_type_label(fn['return_type']).lower()}", "```", "",
              "## Arguments", ""]
    for i, p in enumerate(params, 1):
        lines.append(f"{i}. `{p['name']}` ({_type_label(p['type'])}) {p.get('description', '')}")
    lines += ["", f"Called as `provider::datera::{name}(...)` (Terraform 1.8+).", ""]
    return "\n".join(lines).rstrip() + "\n"


def _index(snap: dict[str, Any]) -> str:
    intro = (PROVIDER_DIR / "docs_index_intro.md").read_text()
    lines = _frontmatter("datera Provider", "Manage Datera DSP tenants, volume types, volumes, "
                         "snapshots and node attachments.")
    lines += [intro.rstrip(), ""]
    lines += ["## Resources and data sources", ""]
    for t in snap["resource_schemas"]:
        lines.append(f"- [`{t}`](resources/{t.removeprefix('datera_')}.md)")
    for t in snap["data_source_schemas"]:
        lines.append(f"- [`{t}`](data-sources/{t.removeprefix('datera_')}.md) (data source)")
    for t in snap["list_resource_schemas"]:
        lines.append(f"- `{t}` (list resource for `terraform query`, Terraform 1.14+; "
                     "import by identity `{ id }`)")
    for t in snap["ephemeral_resource_schemas"]:
        lines.append(f"- [`{t}`](ephemeral-resources/{t.removeprefix('datera_')}.md) "
                     "(ephemeral resource)")
    for name, fn in snap["functions"].items():
        lines.append(f"- [`provider::datera::{name}`](functions/{name}.md) (function): "
                     f"{fn.get('summary', '')}")
    lines.append("")
    lines += _schema_md(snap["provider"], set())
    return "\n".join(lines).rstrip() + "\n"


def expected_files(app: DateraProvider | None = None) -> dict[str, str]:
    files = render_docs(app)
    files["schema.json"] = json.dumps(schema_snapshot(app), indent=2, sort_keys=True) + "\n"
    return files


def _wanted(files: dict[str, str]) -> dict[Path, str | None]:
    """``files`` (relative to datera_iac_tf/) by path, and None for every other doc page."""
    return {**{p: None for p in (PROVIDER_DIR / "docs").rglob("*.md")},
            **{PROVIDER_DIR / rel: text for rel, text in files.items()}}


def stale(files: dict[str, str]) -> list[str]:
    """Files under datera_iac_tf/ that differ from ``files`` (or exist and should not)."""
    return sorted(p.relative_to(PROVIDER_DIR).as_posix() for p in stale_paths(_wanted(files)))


def main(argv: list[str] | None = None) -> int:
    return generator_main(argv, "datera_iac_tf.gen", __doc__, lambda: _wanted(expected_files()))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
