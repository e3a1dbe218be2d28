"""Load a stack written in Pulumi YAML form (``Pulumi.yaml`` with ``runtime: yaml``).

One file serves ``datera-iac up`` and, with our Pulumi plugin, ``pulumi up``, so this
loader accepts the Pulumi YAML shape (``name``, ``runtime``, ``config``, ``variables``,
``resources`` with ``type``/``properties``/``options``, ``outputs``) and the
``${resource.property}`` / ``${configKey}`` / ``${pulumi.stack}`` interpolations. Anything
it does not understand is an error with the file, the line and the resource name: a
misspelt key silently ignored is how stacks drift from what their authors meant.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import yaml

from datera_iac.engine.model import (
    Concat,
    Location,
    Ref,
    ResourceDecl,
    ResourceOptions,
    Secret,
    StackDef,
    StackError,
    refs_in,
)
from datera_iac.engine.graph import check_secret_flow, mark_sensitive_outputs
from datera_iac.errors import InputError
from datera_iac.fields import field_names
from datera_iac.names import camel, did_you_mean
from datera_iac.resources.base import kind_for, snake
from datera_iac.validators import parse_bool

__all__ = [
    "PythonRuntime",
    "load_yaml",
    "parse_interpolation",
    "parse_with_lines",
    "split_config",
    "validate_known",
]

TOP_KEYS = {
    "name", "runtime", "description", "config", "variables", "resources", "outputs",
    "main", "backend", "options", "stackConfigDir", "author", "license", "website",
}
RESOURCE_KEYS = {"type", "properties", "options"}
OPTION_KEYS = {"dependsOn", "protect", "retainOnDelete", "import", "deleteBeforeReplace",
               "ignoreChanges"}
CONFIG_DECL_KEYS = {"type", "default", "value", "secret", "description"}

_EXPR = re.compile(r"\$\{([^}]*)\}")
_PATH_TOKEN = re.compile(
    r"""\.(?P<attr>[A-Za-z_][\w-]*)|\[(?P<idx>\d+)\]|\[\s*"(?P<dq>[^"]*)"\s*\]|\[\s*'(?P<sq>[^']*)'\s*\]"""
)
_ROOT = re.compile(r"[A-Za-z_][\w-]*")


class LineMap(dict):
    """A YAML mapping as a dict that remembers the 1-based line of itself and of each key."""

    line: int = 0
    key_lines: dict[Any, int] = {}  # noqa: RUF012 - replaced per instance by the parser


class LineSeq(list):
    """A YAML sequence as a list that remembers its 1-based line."""

    line: int = 0


_Loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG = "tag:yaml.org,2002:str"


class YamlSyntaxError(ValueError):
    def __init__(self, message: str, line: int, fix: str | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.fix = fix


@attrs.frozen
class Limits:
    """What one stack file may expand to: a file of a few hundred bytes must not be able
    to take gigabytes (YAML aliases that repeat each other, variables that double each
    other). Each limit can be raised through its environment variable when a real stack
    needs more; the defaults are far above a 10,000-resource stack.

    ``nodes``: YAML nodes after alias expansion. ``alias_nodes``: of those, nodes that
    aliases repeat. ``depth``: nesting of mappings/sequences (libyaml's own composer
    recurses in C and crashes the process on ~100,000 levels). ``string``: characters of
    one interpolated string (a reference counts as one)."""

    nodes: int = 2_000_000
    alias_nodes: int = 100_000
    depth: int = 256
    string: int = 1_048_576

    ENV = {"nodes": "DATERA_IAC_YAML_MAX_NODES", "alias_nodes": "DATERA_IAC_YAML_MAX_ALIAS_NODES",
           "depth": "DATERA_IAC_YAML_MAX_DEPTH", "string": "DATERA_IAC_MAX_STRING"}

    @classmethod
    def from_env(cls) -> Limits:
        values: dict[str, int] = {}
        for name, var in cls.ENV.items():
            raw = os.environ.get(var)
            if raw:
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise InputError(f"{var}={raw!r} is not a whole number",
                                     fix=f"unset {var} or give a number") from None
        return cls(**values)

    def fix(self, name: str) -> str:
        return (f"a stack built to exhaust memory is refused; if this one is legitimate, raise "
                f"the limit with {self.ENV[name]}=<n> (now {getattr(self, name)})")


def _check_budget(text: str, limits: Limits) -> None:
    """Walk the event stream (libyaml's parser keeps its own stack: no recursion) and
    count what composing would build, before anything is built: nodes after alias
    expansion, nodes repeated by aliases, and nesting depth. Raises YamlSyntaxError at the
    line where a limit is crossed."""
    parser = _Loader_cls(text)
    anchors: dict[str, int] = {}
    #: open collections: [anchor, expanded size so far]
    stack: list[list[Any]] = []
    total = alias_total = 0
    def at(ev: Any) -> int:
        return ev.start_mark.line + 1 if ev.start_mark else 0

    try:
        while True:
            try:
                ev = parser.get_event()
            except yaml.MarkedYAMLError:
                return  # the composer reports syntax errors with their line
            kind = type(ev)  # the parser makes these classes themselves: no isinstance chain
            if kind is yaml.ScalarEvent:
                size = 1
                if ev.anchor is not None:
                    anchors[ev.anchor] = 1
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                stack.append([ev.anchor, 1])
                if len(stack) > limits.depth:
                    raise YamlSyntaxError(f"nesting deeper than {limits.depth} levels", at(ev),
                                          limits.fix("depth"))
                continue
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                anchor, size = stack.pop()
                if anchor is not None:
                    anchors[anchor] = size
            elif kind is yaml.AliasEvent:
                size = anchors.get(ev.anchor, 1)
                alias_total += size
                if alias_total > limits.alias_nodes:
                    raise YamlSyntaxError(
                        f"aliases expand to more than {limits.alias_nodes:,} nodes (at *{ev.anchor})",
                        at(ev), limits.fix("alias_nodes"))
            elif ev is None or kind is yaml.StreamEndEvent:
                return
            else:
                continue
            total += size
            if total > limits.nodes:
                raise YamlSyntaxError(f"more than {limits.nodes:,} nodes after alias expansion",
                                      at(ev), limits.fix("nodes"))
            if stack:
                stack[-1][1] += size
    finally:
        parser.dispose()


def _build(loader: Any, n: Any) -> Any:
    """A composed node as LineMap/LineSeq/scalars. A module function, not a closure in
    :func:`parse_with_lines`: a recursive closure is a reference cycle that would keep the
    loader (and every node it constructed) for the cyclic collector."""
    if isinstance(n, yaml.MappingNode):
        out = LineMap()
        out.line = n.start_mark.line + 1
        out.key_lines = {}
        loader.flatten_mapping(n)
        for kn, vn in n.value:
            key = _build(loader, kn)
            if isinstance(key, (dict, list)):
                raise YamlSyntaxError("a mapping key must be a scalar", kn.start_mark.line + 1)
            if key in out:
                raise YamlSyntaxError(f"duplicate key {key!r}", kn.start_mark.line + 1)
            out[key] = _build(loader, vn)
            out.key_lines[key] = kn.start_mark.line + 1
        return out
    if isinstance(n, yaml.SequenceNode):
        seq = LineSeq(_build(loader, x) for x in n.value)
        seq.line = n.start_mark.line + 1
        return seq
    if n.tag == _STR_TAG:  # what construct_object makes of it, without its machinery
        return n.value
    return loader.construct_object(n, deep=True)


def parse_with_lines(text: str, limits: Limits | None = None) -> Any:
    """Parse one YAML document into dicts/lists that carry line numbers.

    Uses libyaml's composer when available (an order of magnitude faster than a pure
    Python parser on a 1,000-resource stack) and constructs scalars with the safe
    constructor. Duplicate keys are errors (YAML says so; PyYAML alone would keep the last).
    The document is first checked against ``limits`` (:class:`Limits`, from the
    environment by default): an alias bomb is refused before it is expanded."""
    _check_budget(text, limits or Limits.from_env())
    loader = _Loader_cls(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            raise YamlSyntaxError(str(e.problem or e.context or e), (mark.line + 1) if mark else 0) from None
        if node is None:
            return None

        try:
            return _build(loader, node)
        except yaml.constructor.ConstructorError as e:
            mark = e.problem_mark
            raise YamlSyntaxError(str(e.problem), (mark.line + 1) if mark else 0) from None
    finally:
        loader.dispose()


def _line(node: Any, key: Any = None) -> int:
    """1-based line of a mapping (or of one of its keys)."""
    if key is not None and isinstance(node, LineMap):
        return node.key_lines.get(key, node.line)
    return int(getattr(node, "line", 0) or 0)


def parse_interpolation(text: str) -> tuple[str, tuple[str | int, ...]]:
    """Parse the inside of ``${...}`` into a root name and an access path.

    ``"vol.id"`` -> ``("vol", ("id",))``; ``'gold.extraSpecs["DF:replica_count"]'`` ->
    ``("gold", ("extraSpecs", "DF:replica_count"))``. Raises ValueError on bad syntax.
    """
    text = text.strip()
    if text.startswith("pulumi."):
        return text, ()
    m = _ROOT.match(text)
    if not m:
        raise ValueError(f"bad expression ${{{text}}}")
    root, pos, path = m.group(0), m.end(), []
    while pos < len(text):
        t = _PATH_TOKEN.match(text, pos)
        if not t:
            raise ValueError(f"bad expression ${{{text}}} at {text[pos:]!r}")
        if t.group("attr") is not None:
            path.append(t.group("attr"))
        elif t.group("idx") is not None:
            path.append(int(t.group("idx")))
        else:
            path.append(t.group("dq") if t.group("dq") is not None else t.group("sq"))
        pos = t.end()
    return root, tuple(path)


def split_config(raw: Mapping[str, Any], project: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``key: value`` config into (stack config, provider config).

    ``datera:sanIp`` / ``datera:san_ip`` is provider configuration (snake_case result);
    ``<project>:key`` and bare ``key`` are stack configuration.
    """
    stack_cfg: dict[str, Any] = {}
    provider: dict[str, Any] = {}
    for key, value in raw.items():
        ns, sep, rest = str(key).partition(":")
        if sep and ns == "datera":
            provider[snake(rest)] = value
        elif sep and ns == project:
            stack_cfg[rest] = value
        elif sep:
            continue  # another namespace (e.g. pulumi:tags): not ours
        else:
            stack_cfg[key] = value
    return stack_cfg, provider


@attrs.define
class _Loader:
    path: Path
    stack: str
    overrides: dict[str, Any]
    file: str = ""
    project: str = ""
    config: dict[str, Any] = attrs.field(factory=dict)
    variables: dict[str, Any] = attrs.field(factory=dict)
    raw_vars: dict[str, Any] = attrs.field(factory=dict)
    var_lines: dict[str, int] = attrs.field(factory=dict)
    resolving: list[str] = attrs.field(factory=list)
    resource_names: set[str] = attrs.field(factory=set)
    #: config keys set (-c, Pulumi.<stack>.yaml) but not declared, and the keys expressions read
    undeclared: set[str] = attrs.field(factory=set)
    used_config: set[str] = attrs.field(factory=set)
    #: resource name -> its declared type (for the kinds of references, before all are parsed)
    types: dict[str, Any] = attrs.field(factory=dict)
    #: config keys declared ``secret: true``
    secret_config: set[str] = attrs.field(factory=set)
    limits: Limits = attrs.field(factory=Limits.from_env)
    #: id(Concat) -> its length (literal characters, one per reference): variables are
    #: shared, so a string built from doubled variables is sized without being built
    sizes: dict[int, int] = attrs.field(factory=dict)

    def err(self, msg: str, line: int = 0, **kw: Any) -> StackError:
        return StackError(msg, where=Location(self.file, line), **kw)

    def only_keys(self, node: Mapping[str, Any], allowed: Collection[str], what: str, fix: str,
                  **kw: Any) -> None:
        """Refuse the first key of ``node`` not in ``allowed`` ("<what> 'key'", fix "<fix>"
        followed by the allowed keys)."""
        for key in node:
            if key not in allowed:
                raise self.err(f"{what} {key!r}", _line(node, key),
                               fix=fix + ", ".join(sorted(allowed)), **kw)

    # ---- document ------------------------------------------------------------------

    def load(self) -> StackDef:
        self.file = str(self.path)
        try:
            text = self.path.read_text()
        except OSError as e:
            raise StackError(f"cannot read stack file: {e.strerror}", where=Location(self.file)) from None
        try:
            doc = parse_with_lines(text, self.limits)
        except YamlSyntaxError as e:
            raise self.err(f"invalid YAML: {e}" if e.fix is None else str(e), e.line, fix=e.fix) from None
        if not isinstance(doc, LineMap):
            raise self.err("a stack file is a YAML mapping with name, runtime and resources", 1)
        self.only_keys(doc, TOP_KEYS, "unknown top-level key", "allowed keys: ")
        self.project = str(doc.get("name") or self.path.parent.name)
        runtime = doc.get("runtime", "yaml")
        if isinstance(runtime, Mapping):
            runtime = runtime.get("name")
        if runtime == "python":
            raise PythonRuntime(str(doc.get("main") or "__main__.py"), self.project)
        if runtime != "yaml":
            raise self.err(
                f"runtime {runtime!r} is not a YAML stack", _line(doc, "runtime"),
                fix="use runtime: yaml, or runtime: python with main: <program.py>",
            )
        provider = self._config(doc.get("config") or LineMap(), doc)
        self.raw_vars = dict(doc.get("variables") or {})
        vars_node = doc.get("variables")
        if vars_node is not None and not isinstance(vars_node, LineMap):
            raise self.err("variables must be a mapping", _line(doc, "variables"))
        self.var_lines = {k: _line(vars_node, k) for k in self.raw_vars}
        res_node = doc.get("resources") or LineMap()
        if not isinstance(res_node, LineMap):
            raise self.err("resources must be a mapping of name -> resource", _line(doc, "resources"))
        self.resource_names = set(res_node)
        self.types = {n: (r.get("type") if isinstance(r, Mapping) else None) for n, r in res_node.items()}
        for name in self.raw_vars:
            if name in self.resource_names:
                raise self.err(
                    f"variable {name!r} has the name of a resource", self.var_lines[name],
                    fix="rename the variable or the resource",
                )
        resources: dict[str, ResourceDecl] = {}
        for name, node in res_node.items():
            resources[name] = self._resource(str(name), node, _line(res_node, name))
        outputs: dict[str, Any] = {}
        out_node = doc.get("outputs") or LineMap()
        if not isinstance(out_node, LineMap):
            raise self.err("outputs must be a mapping", _line(doc, "outputs"))
        for key, value in out_node.items():
            outputs[str(key)] = self._value(value, _line(out_node, key), None)
        stack = StackDef(
            project=self.project, resources=resources, outputs=outputs,
            provider_config=provider, source=self.file,
        )
        mark_sensitive_outputs(stack, self.kind_of)
        _check_references(stack)
        self._check_config_used(doc)
        return stack

    def _check_config_used(self, doc: LineMap) -> None:
        """A config key set for this stack that nothing declares or reads is a typo: an
        error naming the nearest key, never silently ignored."""
        unused = sorted(self.undeclared - self.used_config)
        if not unused:
            return
        declared = set(self.config) - self.undeclared
        key = unused[0]
        more = f" (and {len(unused) - 1} more)" if len(unused) > 1 else ""
        raise self.err(
            f"config key {key!r}{more} is set but the stack neither declares nor uses it"
            f"{did_you_mean(key, declared)}", _line(doc, "config"),
            fix="declare it under config: or fix the --config / Pulumi.<stack>.yaml key; "
                "DSP options are datera:<option>",
        )

    def _config(self, node: Any, doc: LineMap) -> dict[str, Any]:
        """Declared stack config with defaults, overridden by the stack's settings."""
        if not isinstance(node, LineMap):
            raise self.err("config must be a mapping", _line(doc, "config"))
        declared: dict[str, Any] = {}
        provider: dict[str, Any] = {}
        for key, decl in node.items():
            line = _line(node, key)
            ns, sep, rest = str(key).partition(":")
            if sep and ns == "datera":
                value = decl.get("value", decl.get("default")) if isinstance(decl, Mapping) else decl
                provider[snake(rest)] = _plain(value)
                continue
            name = rest if sep and ns == self.project else str(key)
            if isinstance(decl, Mapping):
                self.only_keys(decl, CONFIG_DECL_KEYS, f"config {key!r}: unknown key", "allowed: ")
                value = decl.get("value", decl.get("default", _MISSING))
                declared[name] = (_plain(value), decl.get("type"), line)
                secret = decl.get("secret", False)
                if not isinstance(secret, bool):
                    raise self.err(f"config {key!r}: secret must be true or false", _line(decl, "secret"))
                if secret:
                    self.secret_config.add(name)
            else:
                declared[name] = (_plain(decl), None, line)
        stack_over, provider_over = split_config(self.overrides, self.project)
        provider.update(provider_over)
        for name, (value, typ, line) in declared.items():
            if name in stack_over:
                value = _coerce(stack_over.pop(name), typ, name, self.err, line)
            if value is _MISSING:
                raise self.err(
                    f"config {name!r} has no value and no default", line,
                    fix=f"set it with --config {name}=<value> or in Pulumi.{self.stack}.yaml",
                )
            self.config[name] = value
        self.config.update(stack_over)  # undeclared keys are still usable, like Pulumi,
        self.undeclared = set(stack_over)  # ... but one that nothing reads is an error
        return provider

    # ---- resources -----------------------------------------------------------------

    def _resource(self, name: str, node: Any, line: int) -> ResourceDecl:
        if not isinstance(node, LineMap):
            raise self.err("a resource is a mapping with type and properties", line, resource=name)
        self.only_keys(node, RESOURCE_KEYS, "unknown key", "a resource has ", resource=name)
        typ = node.get("type")
        if not typ:
            raise self.err("missing 'type'", line, resource=name, fix="e.g. type: datera:index:Volume")
        try:
            kind = kind_for(str(typ))
        except InputError as e:
            raise self.err(e.reason, _line(node, "type"), resource=name, fix=e.fix) from None
        props_node = node.get("properties") or LineMap()
        if not isinstance(props_node, LineMap):
            raise self.err("properties must be a mapping", _line(node, "properties"), resource=name)
        known = field_names(kind.Spec)
        props: dict[str, Any] = {}
        lines: dict[str, int] = {}
        for key, value in props_node.items():
            pline = _line(props_node, key)
            snake_key = snake(str(key))
            field = kind.field_for(snake_key) or snake_key
            if field in props:  # a field and its former name both set
                raise self.err(
                    f"property {key!r} is set twice (under its former name too)", pline,
                    resource=name, kind=kind.name, field=str(key),
                    fix=f"keep only {camel(field)}")
            if field not in known:
                raise self.err(
                    f"unknown property {key!r}", pline, resource=name, kind=kind.name,
                    field=str(key),
                    fix=f"{kind.name} properties: {', '.join(_camel_all(known))}",
                )
            props[field] = self._value(value, pline, name)
            lines[field] = pline
        options = self._options(node.get("options"), _line(node, "options"), name)
        decl = ResourceDecl(
            name=name, type=kind.token, properties=props, options=options,
            where=Location(self.file, line), lines=lines,
        )
        check_secret_flow(kind, decl, self.kind_of)
        validate_known(kind, decl)
        return decl

    def kind_of(self, resource: str) -> Any:
        """The kind of a resource of this file (None for an unknown type)."""
        try:
            return kind_for(str(self.types.get(resource)))
        except InputError:
            return None

    def _options(self, node: Any, line: int, name: str) -> ResourceOptions:
        if node is None:
            return ResourceOptions()
        if not isinstance(node, LineMap):
            raise self.err("options must be a mapping", line, resource=name)
        self.only_keys(node, OPTION_KEYS, "unsupported option", "supported options: ",
                       resource=name)
        deps: list[str] = []
        raw_deps = node.get("dependsOn") or []
        if not isinstance(raw_deps, list):
            raw_deps = [raw_deps]
        for item in raw_deps:
            v = self._value(item, _line(node, "dependsOn"), name)
            if not isinstance(v, Ref) or v.path:
                raise self.err(
                    "dependsOn takes resource references like ${other}",
                    _line(node, "dependsOn"), resource=name,
                )
            deps.append(v.resource)
        imp = node.get("import")
        ignore = node.get("ignoreChanges") or []
        if not isinstance(ignore, list) or not all(isinstance(x, str) for x in ignore):
            raise self.err("ignoreChanges takes a list of property names", _line(node, "ignoreChanges"),
                           resource=name)
        for flag in ("protect", "retainOnDelete", "deleteBeforeReplace"):
            if flag in node and not isinstance(node[flag], bool):
                raise self.err(f"{flag} must be true or false", _line(node, flag), resource=name)
        return ResourceOptions(
            depends_on=tuple(deps),
            protect=bool(node.get("protect", False)),
            retain_on_delete=bool(node.get("retainOnDelete", False)),
            import_id=None if imp is None else str(imp),
            delete_before_replace=bool(node.get("deleteBeforeReplace", False)),
            ignore_changes=tuple(snake(x) for x in ignore),
        )

    # ---- values --------------------------------------------------------------------

    def _value(self, value: Any, line: int, resource: str | None) -> Any:
        if isinstance(value, LineMap):
            if any(str(k).startswith("fn::") for k in value):
                fn = next(str(k) for k in value if str(k).startswith("fn::"))
                raise self.err(
                    f"{fn} is not supported by datera-iac", _line(value, fn), resource=resource,
                    fix="compute the value in variables or config, or use a Python program",
                )
            return {str(k): self._value(v, _line(value, k) or line, resource) for k, v in value.items()}
        if isinstance(value, (LineSeq, list)):
            return [self._value(v, line, resource) for v in value]
        if isinstance(value, str):
            return self._string(value, line, resource)
        return _plain(value)

    def _string(self, text: str, line: int, resource: str | None) -> Any:
        if "${" not in text:
            return text.replace("$${", "${")
        parts: list[Any] = []
        pos = 0
        for m in _EXPR.finditer(text):
            if m.start() > 0 and text[m.start() - 1] == "$":
                continue  # "$${" is an escaped literal
            if m.start() > pos:
                parts.append(text[pos:m.start()].replace("$${", "${"))
            parts.append(self._expr(m.group(1), line, resource))
            pos = m.end()
        if pos < len(text):
            parts.append(text[pos:].replace("$${", "${"))
        if len(parts) == 1:
            return parts[0]
        size = sum(self._size(p) for p in parts)
        if size > self.limits.string:
            raise self.err(
                f"an interpolated string would be {size:,} characters, over the limit of "
                f"{self.limits.string:,}", line, resource=resource, fix=self.limits.fix("string"))
        if all(not isinstance(p, (Ref, Concat)) for p in parts):
            secret = next((p for p in parts if isinstance(p, Secret)), None)
            text = "".join(str(p.value if isinstance(p, Secret) else p) for p in parts)
            return text if secret is None else Secret(text, secret.source)
        out = Concat(tuple(parts))
        self.sizes[id(out)] = size
        return out

    def _size(self, part: Any) -> int:
        """Characters ``part`` adds to a string (a reference counts as one)."""
        if isinstance(part, str):
            return len(part)
        if isinstance(part, Concat):
            return self.sizes.get(id(part)) or sum(self._size(p) for p in part.parts)
        if isinstance(part, Ref):
            return 1
        if isinstance(part, Secret):
            return self._size(part.value)
        return len(str(part))

    def _expr(self, text: str, line: int, resource: str | None) -> Any:
        try:
            root, path = parse_interpolation(text)
        except ValueError as e:
            raise self.err(str(e), line, resource=resource) from None
        if root == "pulumi.stack":
            return self.stack
        if root == "pulumi.project":
            return self.project
        if root.startswith("pulumi."):
            raise self.err(f"unknown expression ${{{text}}}", line, resource=resource,
                           fix="supported: ${pulumi.stack}, ${pulumi.project}")
        if root in self.resource_names:
            if path and isinstance(path[0], str):
                path = (snake(path[0]),) + path[1:]
            return Ref(root, path)
        secret = None
        if root in self.raw_vars:
            base = self._variable(root, line, resource)
        elif root in self.config:
            self.used_config.add(root)
            base = self.config[root]
            if root in self.secret_config:
                secret = f"config {root!r}, declared secret"
        else:
            raise self.err(
                f"${{{text}}} refers to {root!r}, which is no resource, variable or config key",
                line, resource=resource,
                fix="check the spelling; resources: " + ", ".join(sorted(self.resource_names)),
            )
        for p in path:
            if isinstance(base, Ref):
                base = base[p]
                continue
            if isinstance(base, Secret):
                secret, base = base.source, base.value
            try:
                base = base[p]
            except (KeyError, IndexError, TypeError):
                raise self.err(f"${{{text}}}: no {p!r} in {root!r}", line, resource=resource) from None
        return Secret(base, secret) if secret is not None and not isinstance(base, Secret) else base

    def _variable(self, name: str, line: int, resource: str | None) -> Any:
        if name in self.variables:
            return self.variables[name]
        if name in self.resolving:
            chain = " -> ".join(self.resolving + [name])
            raise self.err(f"variables form a cycle: {chain}", self.var_lines.get(name, line))
        self.resolving.append(name)
        try:
            value = self._value(self.raw_vars[name], self.var_lines.get(name, line), None)
        finally:
            self.resolving.pop()
        self.variables[name] = value
        return value


class PythonRuntime(Exception):
    """Raised by the loader for ``runtime: python``: the stack is a program (``main``)."""

    def __init__(self, main: str, project: str) -> None:
        super().__init__(main)
        self.main = main
        self.project = project


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


def _plain(value: Any) -> Any:
    """Parsed scalars and containers (LineMap/LineSeq) as plain Python values."""
    if isinstance(value, LineMap):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (LineSeq, list)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or value is _MISSING:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def _coerce(value: Any, typ: Any, name: str, err: Any, line: int) -> Any:
    """A config value given on the command line (a string) as the declared type."""
    if not isinstance(value, str) or typ in (None, "string", "String"):
        return value
    try:
        if typ in ("integer", "int", "Number", "number"):
            return int(value) if typ in ("integer", "int") else float(value)
        if typ in ("boolean", "bool", "Boolean"):
            return parse_bool(value)
    except ValueError:
        raise err(f"config {name!r}: {value!r} is not a {typ}", line) from None
    return value


def _camel_all(names: Iterable[str]) -> list[str]:
    from datera_iac.resources.base import camel

    return sorted(camel(n) for n in names)


def _check_references(stack: StackDef) -> None:
    """Every dependsOn names a resource of the stack (refs were checked while parsing), and
    no resource refers to itself (StackError at the field's line)."""
    for decl in stack.resources.values():
        decl.dependencies()
        for dep in decl.options.depends_on:
            if dep not in stack.resources:
                raise StackError(f"dependsOn names unknown resource {dep!r}", where=decl.where,
                                 resource=decl.name)


def validate_known(kind: Any, decl: ResourceDecl) -> None:
    """Validate a resource whose properties are all known at load time, so a bad value is
    reported with its file and line before anything runs (the Spec is kept for the plan).
    A resource with references is validated when the plan resolves them, with the same
    file and line in the error."""
    if any(True for _ in refs_in(decl.properties)):
        return
    try:
        decl.validated = kind.spec_from(decl.properties, resource=decl.name)
    except InputError as e:
        raise StackError.wrap(e, decl.where_of(e.field), decl.name) from None


def load_yaml(path: str | Path, *, stack: str = "dev", config: Mapping[str, Any] | None = None) -> StackDef:
    """Load a Pulumi-YAML stack file into a :class:`StackDef`.

    ``config`` holds ``key=value`` settings (``--config`` and ``Pulumi.<stack>.yaml``);
    ``datera:*`` keys are provider configuration. Raises :class:`StackError` (file, line,
    resource) for anything invalid: unknown keys or types, bad references, bad values.
    """
    return _Loader(Path(path), stack, dict(config or {})).load()
