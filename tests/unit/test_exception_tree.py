"""One exception tree: every exception class core, jobs, dashboard and the gateway define comes under
``PulsegateError`` and is drawn in the diagram of core/errors.py's docstring, so ``except PulsegateError`` catches
everything Pulsegate raises on purpose and a reader finds every class in one place.

A private signal (a leading underscore: raised and caught inside one module, never reaching a caller) is exempt.
Streamlit page scripts (``pulsegate.dashboard.app``, ``pulsegate.dashboard.views``) and ``__main__`` modules run when
imported, so they are not walked; they define no exception.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pulsegate.core.errors
from pulsegate.core.errors import PulsegateError

PACKAGES = ("pulsegate.core", "pulsegate.jobs", "pulsegate.dashboard", "pulsegate.gateway")
PAGE_SCRIPTS = ("pulsegate.dashboard.app", "pulsegate.dashboard.views")


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
            if not info.name.startswith(PAGE_SCRIPTS) and not info.name.endswith(".__main__"):
                names.append(info.name)
    return names


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in _modules():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            defined_here = inspect.isclass(value) and value.__module__ == name
            if defined_here and issubclass(value, BaseException) and not attr.startswith("_"):
                found[f"{name}.{attr}"] = value
    return found


def _drawn() -> set[str]:
    """The class names in the docstring's tree: its root, alone on a line, and each on a ``├──`` or ``└──`` branch."""
    doc = pulsegate.core.errors.__doc__ or ""
    return set(re.findall(r"^ {4}(\w+)$", doc, re.MULTILINE)) | set(re.findall(r"[├└]── (\w+)", doc))


def test_the_walk_finds_the_classes_defined_outside_errors_py() -> None:
    found = _exception_classes()
    assert {
        "pulsegate.core.queries.filters.QueryFilterError",
        "pulsegate.jobs.cli.command_error.CommandError",
        "pulsegate.dashboard.data.StoreDown",
    } <= set(found)


def test_every_exception_class_is_a_pulsegate_error() -> None:
    outside = sorted(name for name, cls in _exception_classes().items() if not issubclass(cls, PulsegateError))
    assert outside == []


def test_every_exception_class_is_drawn_in_the_tree() -> None:
    drawn = _drawn()
    assert "PulsegateError" in drawn
    assert sorted(name for name, cls in _exception_classes().items() if cls.__name__ not in drawn) == []


def test_the_tree_draws_no_class_that_does_not_exist() -> None:
    defined = {cls.__name__ for cls in _exception_classes().values()}
    assert _drawn() - defined == set()


def test_a_class_that_was_a_builtin_error_still_is_one() -> None:
    """Multiple inheritance keeps every ``except ValueError`` that caught these before."""
    found = {cls.__name__: cls for cls in _exception_classes().values()}
    for name in ("QueryFilterError", "ControlCommandError", "SilenceError", "RuleProblem", "ProbeError", "BadNow"):
        assert issubclass(found[name], ValueError), name
    assert issubclass(found["ChildFailed"], RuntimeError)


def test_one_line_reason_is_the_first_line_or_the_type() -> None:
    from pulsegate.core.errors import one_line_reason

    assert one_line_reason(OSError("connection refused\n  detail")) == "connection refused"
    assert one_line_reason(TimeoutError()) == "TimeoutError"
    assert one_line_reason(ValueError("x" * 300), limit=200) == "x" * 200
