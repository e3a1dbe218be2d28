"""``topo_order``: dependencies first, declaration order otherwise; ``check_acyclic``."""

import pytest

from datera_iac.engine.graph import check_acyclic, topo_order
from datera_iac.engine.model import StackError


def test_a_declaration_order_that_respects_the_dependencies_is_kept():
    """Each name declared after what it needs: the declaration order, as is."""
    deps = {"team": set(), **{f"v{i}": {"team"} for i in range(5)}, "snap": {"v3"}}
    assert topo_order(deps, list(deps)) == list(deps)


def test_a_name_declared_before_its_dependency_moves_after_it_and_nothing_else_moves():
    """The earliest declared name whose dependencies are placed comes next."""
    deps = {"v0": {"team"}, "a": set(), "team": set(), "v1": {"team"}, "b": set()}
    assert topo_order(deps, list(deps)) == ["a", "team", "v0", "v1", "b"]


def test_names_missing_from_the_order_come_last_and_outside_names_are_ignored():
    """Deps on names not in ``deps`` do not hold anything up; unordered names go last."""
    deps = {"x": set(), "v": {"team", "gone"}, "team": set()}
    assert topo_order(deps, ["v", "team"]) == ["team", "v", "x"]


def test_a_cycle_is_refused():
    with pytest.raises(StackError, match="dependency cycle"):
        topo_order({"a": {"b"}, "b": {"a"}}, ["a", "b"])


def test_a_long_dependency_chain_is_checked_without_recursion():
    """3,000 resources each depending on the next declared: no RecursionError."""
    deps = {f"r{i}": {f"r{i + 1}"} if i < 2999 else set() for i in range(3000)}
    check_acyclic(deps)
    assert topo_order(deps, list(deps))[:2] == ["r2999", "r2998"]
    deps["r2999"] = {"r0"}
    with pytest.raises(StackError, match="dependency cycle: r0 -> r1 -> r2 "):
        check_acyclic(deps)



def test_a_dependency_the_order_does_not_list_comes_first():
    # the dependent is checked before its unlisted dependency: the one-pass shortcut must
    # fall back to the full ordering, not fail looking the dependency up
    assert topo_order({"v": {"t"}, "t": set()}, ["v"]) == ["t", "v"]
