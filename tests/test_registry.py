"""Registry: decorator registration, duplicate and unknown-name errors, entry-point plugins."""

from __future__ import annotations

import sys
import textwrap

import pytest

from rapidbench.registry import ALGORITHMS, TASKS, Registry, RegistryError


def test_register_get_and_describe():
    reg = Registry("widget", "rapidbench.test-widgets-none")

    @reg.register("a")
    class A:
        """First line describes it.

        More text."""

    assert reg.get("a") is A
    assert reg.entry("a").description == "First line describes it."
    assert reg.names() == ["a"] and "a" in reg and "b" not in reg


def test_duplicate_name_is_an_error():
    reg = Registry("widget", "rapidbench.test-widgets-none")
    reg.add("a", object())
    with pytest.raises(RegistryError, match="duplicate widget name 'a'"):
        reg.add("a", object())


def test_unknown_name_is_one_line_listing_choices():
    with pytest.raises(RegistryError) as e:
        ALGORITHMS.get("nope")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg == f"unknown algorithm 'nope'; registered algorithms: {', '.join(ALGORITHMS.names())}"
    assert {"rapid", "grpo"} <= set(ALGORITHMS.names())
    assert "arith" in TASKS.names()


def make_plugin_package(tmp_path, name: str, body: str, group: str, ep: str):
    """A real installed-looking distribution: a module plus a dist-info with entry_points.txt."""
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    dist = tmp_path / f"{name}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{group}]\n{ep}\n")
    return tmp_path


def test_entry_point_plugin_is_discovered(tmp_path, monkeypatch):
    body = '''
        from rapidbench.registry import register_task
        from rapidbench.tasks.arith import Arith

        @register_task("plugin-arith")
        class PluginArith(Arith):
            """Arith, from a third-party plugin package."""
    '''
    make_plugin_package(tmp_path, "rb_test_plugin_task", body, "rapidbench.tasks", "plug = rb_test_plugin_task")
    monkeypatch.syspath_prepend(str(tmp_path))
    TASKS.reset_plugins()
    try:
        assert "plugin-arith" in TASKS.names()
        assert TASKS.entry("plugin-arith").description.startswith("Arith, from a third-party")
    finally:
        TASKS.unregister("plugin-arith")
        sys.modules.pop("rb_test_plugin_task", None)
        TASKS.reset_plugins()


def test_entry_point_naming_an_object(tmp_path, monkeypatch):
    body = '''
        def make():
            """A factory registered by its entry-point name."""
    '''
    make_plugin_package(tmp_path, "rb_test_plugin_obj", body, "rapidbench.test-objs", "objname = rb_test_plugin_obj:make")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("thing", "rapidbench.test-objs")
    assert reg.names() == ["objname"]
    assert reg.entry("objname").description == "A factory registered by its entry-point name."
    sys.modules.pop("rb_test_plugin_obj", None)
