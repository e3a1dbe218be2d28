"""Loading and checking a stack leave no reference cycle behind.

The engine pauses the cyclic garbage collector while a run works (engine.core.
quiet_collector): what a run leaves in a cycle stays in memory until a full collection,
which in a long-lived process (a drift job, a provider) came later and later - every
preview of 10,000 volumes left its whole stack definition behind (~18 MB)."""

import gc
import weakref

from datera_iac.engine.graph import check_acyclic
from datera_iac.engine.model import StackDef
from datera_iac.engine.yamlstack import parse_with_lines


def _cyclic_garbage(fn):
    """How many objects ``fn()`` leaves for the cyclic collector alone."""
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        fn()
        return gc.collect()
    finally:
        if was:
            gc.enable()


def test_checking_for_cycles_leaves_no_reference_cycle_behind():
    """The stack definition is freed as soon as its last user lets go."""
    stack = StackDef(project="p", resources={})
    ref = weakref.ref(stack)
    assert _cyclic_garbage(lambda: check_acyclic({"a": {"b"}, "b": set()}, stack)) == 0
    del stack
    assert ref() is None


def test_parsing_a_stack_file_leaves_no_reference_cycle_behind():
    """Neither the parser nor the nodes it constructed outlive the parse."""
    text = "name: p\nresources:\n  v:\n    properties: {size: 1, ok: true, tags: [a, b]}\n"
    assert _cyclic_garbage(lambda: parse_with_lines(text)) == 0
