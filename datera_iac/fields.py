"""Field metadata: the keys every front end reads, and the helpers that set them.

A leaf (imports only attrs): the resource kinds, the shared configuration
(:class:`~datera_iac.config.DateraConfig`) and the three front ends all read the same keys,
so none of them has to import another layer to learn what a field means.

* :func:`spec_field`: an input of a kind's ``Spec`` (``replace``, ``sensitive``,
  ``reference``, ``doc``, and ``aliases``: former names still accepted, deprecated).
* :func:`out_field`: an output of a kind's ``Outputs`` (``computed``).
* :func:`option`: an option of the shared configuration (``unit``, ``cinder``,
  ``deprecated``, and the parser that reads it from text).

Read a key with ``attrs.fields(Spec).name.metadata.get(REPLACE)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs

__all__ = [
    "ALIASES", "CINDER", "COMPUTED", "DEPRECATED", "DOC", "PARSE", "REFERENCE", "REPLACE",
    "SENSITIVE", "UNIT", "aliases_of", "field_names", "option", "out_field", "spec_field",
]

#: Changing the field re-creates the object.
REPLACE: Final = "datera_iac.replace"
#: A secret: masked in logs, plans and state.
SENSITIVE: Final = "datera_iac.sensitive"
#: An output the DSP assigns.
COMPUTED: Final = "datera_iac.computed"
#: One line of documentation.
DOC: Final = "datera_iac.doc"
#: The kind this field refers to (the engine orders by it, resolves ``${res.prop}`` into it).
REFERENCE: Final = "datera_iac.reference"
#: Former names of an input, still accepted with a deprecation warning (every front end
#: offers them, marked deprecated; the core reads them as the field's own name).
ALIASES: Final = "datera_iac.aliases"
#: Configuration options: the unit of a number ("seconds"), whether the option is a
#: cinder.conf option, a deprecation note, and the parser from text.
UNIT: Final = "datera_iac.unit"
CINDER: Final = "datera_iac.cinder"
DEPRECATED: Final = "datera_iac.deprecated"
PARSE: Final = "datera_iac.config.parse"


def _field(metadata: dict[str, Any], *, default: Any, factory: Any, sensitive: bool,
           **kw: Any) -> Any:
    kw.update(metadata=metadata, repr=not sensitive)
    if factory is not None:
        kw["factory"] = factory
    else:
        kw["default"] = default
    return attrs.field(**kw)


def spec_field(
    *,
    doc: str,
    default: Any = attrs.NOTHING,
    factory: Any = None,
    replace: bool = False,
    sensitive: bool = False,
    reference: str | None = None,
    validator: Any = None,
    converter: Any = None,
    aliases: tuple[str, ...] = (),
) -> Any:
    """An input field of a kind's ``Spec``.

    ``replace``: a change re-creates the object. ``sensitive``: a secret (masked in logs,
    plans and state; ``repr=False``). ``reference``: the kind name this field refers to
    (the engine orders by it and resolves ``${res.prop}`` into it). ``aliases``: former
    names of the field, still accepted (deprecated; see :func:`aliases_of`).
    """
    metadata = {DOC: doc, REPLACE: replace, SENSITIVE: sensitive, REFERENCE: reference}
    if aliases:
        metadata[ALIASES] = tuple(aliases)
    return _field(metadata, default=default, factory=factory, sensitive=sensitive,
                  validator=validator, converter=converter)


def out_field(*, doc: str, default: Any = None, sensitive: bool = False) -> Any:
    """An output (computed) field of a kind's ``Outputs``."""
    metadata = {DOC: doc, COMPUTED: True, SENSITIVE: sensitive, REPLACE: False}
    return _field(metadata, default=default, factory=None, sensitive=sensitive)


def option(
    *,
    doc: str,
    parse: Callable[[Any], Any],
    default: Any = None,
    factory: Any = None,
    unit: str | None = None,
    cinder: bool = True,
    sensitive: bool = False,
    deprecated: str | None = None,
    validator: Any = None,
) -> Any:
    """An option of the shared configuration; ``parse`` reads it from text (env, files)."""
    metadata = {DOC: doc, SENSITIVE: sensitive, UNIT: unit, CINDER: cinder,
                DEPRECATED: deprecated, PARSE: parse}
    return _field(metadata, default=default, factory=factory, sensitive=sensitive,
                  validator=validator)


@functools.cache
def aliases_of(cls: type) -> Mapping[str, str]:
    """``{former name: field name}`` of an attrs class's deprecated input names (worked
    out once per class: a stack file asks for every property of every resource)."""
    return MappingProxyType({a: f.name for f in attrs.fields(cls)
                             for a in f.metadata.get(ALIASES, ())})


@functools.cache
def field_names(cls: type) -> frozenset[str]:
    """The names of an attrs class's fields (worked out once per class, as above)."""
    return frozenset(f.name for f in attrs.fields(cls))
