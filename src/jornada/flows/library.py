"""Loading flow files, with errors that name the file, the line and the path inside the flow."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from jornada.errors import InvalidInput
from jornada.flows.conditions import ConditionError, check
from jornada.flows.definition import FlowDocument


class FlowDefinitionError(InvalidInput):
    code = "invalid_flow"


def _line_of(source: str, path: tuple[Any, ...]) -> int | None:
    """The line of ``path`` in a YAML document, found by walking the composed node tree."""
    node: Any = yaml.compose(source, Loader=yaml.SafeLoader)
    line = None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == str(part)), None)
            if found is None:
                break
            node = found
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def _path(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The document path of a pydantic error location, without model and union labels."""
    path: list[Any] = []
    after_union = False
    for part in loc:
        if isinstance(part, str) and ("[" in part or part[:1].isupper()):
            after_union = "tagged-union[" in part
            continue
        if after_union and isinstance(part, str):  # a tagged union's tag names the branch
            after_union = False
            continue
        path.append(part)
    return tuple(path)


def parse_flow(source: str, name: str) -> FlowDocument:
    """A flow document from YAML text; errors say ``name:line: path: reason``."""
    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark else name
        raise FlowDefinitionError(f"{where}: not valid YAML: {exc}", field="flow") from exc
    triggers = data.get("trigger") if isinstance(data, dict) else None
    for n, trigger in enumerate(triggers if isinstance(triggers, list) else [triggers]):
        if isinstance(trigger, dict) and True in trigger:
            where = "trigger" if not isinstance(triggers, list) else f"trigger.{n}"
            raise FlowDefinitionError(
                f"{name}: {where}: write `when: entered` or `when: exited`; "
                "YAML reads a bare `on:` as true",
                field=where,
            )
    try:
        doc = FlowDocument.model_validate(data)
    except ValidationError as exc:
        # in a union, the error that got furthest into the document is the one meant
        error = max(exc.errors(include_url=False), key=lambda e: len(_path(e["loc"])))
        path = _path(error["loc"])
        line = _line_of(source, path)
        dotted = ".".join(str(p) for p in path) or "flow"
        where = f"{name}:{line}" if line else name
        raise FlowDefinitionError(f"{where}: {dotted}: {error['msg']}", field=dotted) from exc
    for i, step in enumerate(doc.steps):
        try:
            if step.branch:
                check(step.branch.condition, f"steps[{i}].branch.if")
            if step.wait_for:
                check(step.wait_for.where, f"steps[{i}].wait_for.where")
        except ConditionError as exc:
            raise FlowDefinitionError(f"{name}: {exc}", field=f"steps.{i}") from exc
    return doc


def load_flow_file(path: Path) -> FlowDocument:
    return parse_flow(path.read_text(encoding="utf-8"), str(path))


def library_flows() -> list[FlowDocument]:
    """The flows that ship with Jornada (``jornada flows install``)."""
    folder = resources.files("jornada.flows") / "library"
    return [
        parse_flow(entry.read_text(encoding="utf-8"), f"library/{entry.name}")
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".yaml")
    ]
