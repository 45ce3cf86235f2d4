"""Pure: the lead-scoring model language, validated once into a compiled :class:`ScoringModel`.

A model is a small YAML/JSON document (``docs/scoring.md``)::

    name: Loja online
    half_life: 30d                  # engagement points halve every 30 days (null: never)
    fit:                            # who the contact is: a segment condition
      - {key: cnpj, label: company with a tax id (CNPJ), points: 20,
         where: {trait: cnpj, exists: true}}
    engagement:                     # what the contact does: events with points
      - {key: pricing, label: viewed pricing, page: "*", where: {prop: path, contains: /precos},
         points: 30, count: 3, within: 2d, cap: 30}
    thresholds:
      - {name: MQL, score: 50, stage: Engaged}

Fit conditions are the segment language (:mod:`jornada.audience.definition`);
event property conditions use the flows' ``prop`` leaves. A mistake is a
:class:`ScoringModelError` naming its path (``engagement[2].within``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from functools import cache, cached_property
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from jornada.audience.compile import Predicate, to_predicate
from jornada.audience.definition import (
    All,
    AnyOf,
    Compare,
    Condition,
    Not,
    SegmentDefinitionError,
    Stage,
    Tag,
    parse,
)
from jornada.errors import InvalidInput
from jornada.events.canonical import LIFECYCLE_STAGES

#: Stages a threshold may move a contact to: a score never declares a deal won or closed.
THRESHOLD_STAGES = tuple(s for s in LIFECYCLE_STAGES if s not in ("Won", "Closed"))
DEFAULT_VERSION = 0  # the model shipped with Jornada, used until a workspace stores its own
MAX_POINTS = 1000
_KEY = r"^[a-z0-9][a-z0-9-]{0,63}$"
_DURATION = re.compile(r"(\d+)(w|d|h|m)")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}
_PROP_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "exists", "contains")
PropertyTest = Callable[[Mapping[str, Any]], bool]


class ScoringModelError(InvalidInput):
    """A scoring model that does not follow the language; ``field`` is the path of the mistake."""

    code = "invalid_scoring_model"


def parse_duration(text: str) -> timedelta:
    """``"2d"``, ``"12h"``, ``"1w2d"``, ``"90m"`` → a positive timedelta; ValueError otherwise."""
    value = text.strip().lower().replace(" ", "")
    if not value or _DURATION.sub("", value):
        raise ValueError(f"{text!r} is not a duration such as 90m, 12h, 2d or 1w")
    total = sum(
        (timedelta(**{_UNITS[u]: int(n)}) for n, u in _DURATION.findall(value)), timedelta()
    )
    if total <= timedelta():
        raise ValueError(f"{text!r} is not a positive duration")
    return total


def human_duration(span: timedelta) -> str:
    """``2 days``, ``1 day``, ``12 hours``, ``90 minutes``: how a reason says a window."""
    seconds = int(span.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return f"{seconds} seconds"


# -- event property conditions (the flows' ``prop`` leaves) ------------------------------------
def property_test(where: Any, path: str) -> PropertyTest:
    """A test on an event's properties: ``{prop: path, contains: /precos}``, all/any/not."""
    if not isinstance(where, Mapping):
        raise ScoringModelError(f"{path}: a condition is an object, not {where!r}", field=path)
    for key in ("all", "any"):
        if key in where:
            _only(where, {key}, path)
            items = where[key]
            if not isinstance(items, list) or not items:
                at = f"{path}.{key}"
                raise ScoringModelError(f"{at}: must be a non-empty list", field=at)
            tests = [property_test(c, f"{path}.{key}[{i}]") for i, c in enumerate(items)]
            if key == "all":
                return lambda props: all(t(props) for t in tests)
            return lambda props: any(t(props) for t in tests)
    if "not" in where:
        _only(where, {"not"}, path)
        inner = property_test(where["not"], f"{path}.not")
        return lambda props: not inner(props)
    if "prop" not in where:
        raise ScoringModelError(
            f"{path}: a property condition starts with prop, all, any or not", field=path
        )
    _only(where, {"prop", *_PROP_OPS}, path)
    name = where["prop"]
    if not isinstance(name, str) or not name:
        raise ScoringModelError(f"{path}.prop: a property name, not {name!r}", field=f"{path}.prop")
    ops = [(op, where[op]) for op in _PROP_OPS if op in where]
    if not ops:
        raise ScoringModelError(f"{path}: add an operator ({', '.join(_PROP_OPS)})", field=path)
    for op, expected in ops:
        if op in ("in", "not_in") and not isinstance(expected, list):
            at = f"{path}.{op}"
            raise ScoringModelError(f"{at}: {op} takes a list", field=at)
    keys = name.split(".")
    return lambda props: all(_holds(_dig(props, keys), op, v) for op, v in ops)


def _dig(props: Mapping[str, Any], keys: list[str]) -> Any:
    value: Any = props
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _number(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _holds(actual: Any, op: str, expected: Any) -> bool:
    if op == "exists":
        return (actual is not None) == bool(expected)
    if op in ("in", "not_in"):
        inside = any(_holds(actual, "eq", e) for e in expected)
        return inside if op == "in" else not inside
    if op == "contains":
        if isinstance(actual, str):
            return isinstance(expected, str) and expected.lower() in actual.lower()
        return isinstance(actual, list) and expected in actual
    left, right = _number(actual), _number(expected)
    a, b = (left, right) if left is not None and right is not None else (actual, expected)
    if op == "eq":
        return bool(a == b)
    if op == "ne":
        return bool(a != b)
    if a is None or b is None:
        return False
    try:
        if op == "gt":
            return bool(a > b)
        if op == "gte":
            return bool(a >= b)
        if op == "lt":
            return bool(a < b)
        return bool(a <= b)
    except TypeError:
        return False


def _only(where: Mapping[str, Any], allowed: set[str], path: str) -> None:
    unknown = set(where) - allowed
    if unknown:
        names = ", ".join(sorted(map(str, unknown)))
        raise ScoringModelError(f"{path}: unknown or misplaced key(s) {names}", field=path)


# -- the document --------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FitRule(_Strict):
    """Points for who the contact is, while ``where`` (the segment language) holds."""

    key: str = Field(pattern=_KEY)
    label: str = Field(min_length=1, max_length=120)
    points: int = Field(ge=-MAX_POINTS, le=MAX_POINTS)
    where: dict[str, Any]

    @field_validator("points")
    @classmethod
    def _not_zero(cls, points: int) -> int:
        if points == 0:
            raise ValueError("points must not be 0")
        return points


class EngagementRule(_Strict):
    """Points for what the contact does: an event (or a page view), optionally as a pattern.

    ``count``/``within``: the rule fires once the contact did it ``count`` times
    within ``within`` (then counting starts again). ``cap``: the rule's points,
    as they decay, never exceed it (a negative rule never goes below ``-cap``).
    """

    key: str = Field(pattern=_KEY)
    label: str = Field(min_length=1, max_length=120)
    event: str | None = Field(default=None, min_length=1, max_length=200)
    page: str | None = Field(
        default=None, min_length=1, max_length=200, description='a page name, or "*" for any'
    )
    where: dict[str, Any] | None = None
    points: int = Field(ge=-MAX_POINTS, le=MAX_POINTS)
    count: int = Field(default=1, ge=1, le=100)
    within: str | None = None
    cap: int | None = Field(default=None, ge=1, le=100 * MAX_POINTS)

    @field_validator("points")
    @classmethod
    def _not_zero(cls, points: int) -> int:
        if points == 0:
            raise ValueError("points must not be 0")
        return points

    @field_validator("within")
    @classmethod
    def _duration(cls, within: str | None) -> str | None:
        if within is not None:
            parse_duration(within)
        return within

    @property
    def window(self) -> timedelta | None:
        return parse_duration(self.within) if self.within else None


class Threshold(_Strict):
    """A named score; crossing it (either way) emits ``Score Changed``, upwards it may move the stage."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _-]{0,31}$")
    score: int = Field(ge=-100 * MAX_POINTS, le=100 * MAX_POINTS)
    stage: str | None = None

    @field_validator("stage")
    @classmethod
    def _stage(cls, stage: str | None) -> str | None:
        if stage is not None and stage not in THRESHOLD_STAGES:
            raise ValueError(f"a threshold moves to one of {', '.join(THRESHOLD_STAGES)}")
        return stage


class ModelDocument(_Strict):
    """A scoring model as written: fit rules, engagement rules, decay and thresholds."""

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    half_life: str | None = "30d"
    fit: list[FitRule] = Field(default_factory=list, max_length=200)
    engagement: list[EngagementRule] = Field(default_factory=list, max_length=200)
    thresholds: list[Threshold] = Field(default_factory=list, max_length=20)

    @field_validator("half_life")
    @classmethod
    def _duration(cls, half_life: str | None) -> str | None:
        if half_life is not None:
            parse_duration(half_life)
        return half_life


# -- compiled ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CompiledFit:
    rule: FitRule
    holds: Predicate


@dataclass(frozen=True)
class CompiledRule:
    rule: EngagementRule
    window: timedelta | None
    matches: PropertyTest | None

    @property
    def key(self) -> str:
        return self.rule.key


@dataclass(frozen=True)
class ScoringModel:
    """A validated model ready to score: rules indexed by the event they listen to."""

    version: int
    document: ModelDocument
    half_life: timedelta | None
    fit: tuple[CompiledFit, ...]
    engagement: tuple[CompiledRule, ...]
    thresholds: tuple[Threshold, ...]  # lowest score first

    @cached_property
    def by_event(self) -> dict[str, tuple[CompiledRule, ...]]:
        """Track events by name → the rules that listen to them (the per-event set lookup)."""
        return self._rules_by(lambda rule: rule.rule.event)

    @cached_property
    def by_page(self) -> dict[str, tuple[CompiledRule, ...]]:
        """Page (and screen) views by name, ``"*"`` for any page → the rules that listen."""
        return self._rules_by(lambda rule: rule.rule.page)

    def _rules_by(
        self, name_of: Callable[[CompiledRule], str | None]
    ) -> dict[str, tuple[CompiledRule, ...]]:
        found: dict[str, list[CompiledRule]] = {}
        for rule in self.engagement:
            if (name := name_of(rule)) is not None:
                found.setdefault(name, []).append(rule)
        return {k: tuple(v) for k, v in found.items()}

    @cached_property
    def fit_inputs(self) -> frozenset[str]:
        """What fit rules read: ``trait``, ``consent``, ``fact``, ``tag``, ``stage``.

        Ingestion re-evaluates fit only for events that may change one of them.
        """
        return frozenset(s for f in self.fit for s in _subjects(parse(f.rule.where)))

    def rules_for(self, kind: str, name: str | None) -> tuple[CompiledRule, ...]:
        """The engagement rules one event may fire (before their property conditions)."""
        if kind == "track":
            return self.by_event.get(name or "", ()) if name else ()
        if kind in ("page", "screen") and self.by_page:
            return self.by_page.get(name or "", ()) + self.by_page.get("*", ())
        return ()

    def reached(self, score: int) -> list[Threshold]:
        return [t for t in self.thresholds if t.score <= score]


def _subjects(condition: Condition) -> set[str]:
    if isinstance(condition, All | AnyOf):
        return {s for c in condition.items for s in _subjects(c)}
    if isinstance(condition, Not):
        return _subjects(condition.item)
    if isinstance(condition, Compare):
        return {condition.subject}
    if isinstance(condition, Tag):
        return {"tag"}
    if isinstance(condition, Stage):
        return {"stage"}
    return {"consent"}


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "model"


def compile_model(document: Mapping[str, Any] | ModelDocument, version: int) -> ScoringModel:
    """Validate and compile a model document; every mistake is a :class:`ScoringModelError`."""
    try:
        doc = (
            document
            if isinstance(document, ModelDocument)
            else ModelDocument.model_validate(document)
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _loc(tuple(first["loc"]))
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ScoringModelError(f"{field}: {message}", field=field) from exc
    keys: set[str] = set()
    fit: list[CompiledFit] = []
    for i, rule in enumerate(doc.fit):
        _unique(keys, rule.key, f"fit[{i}].key")
        try:
            condition = parse(rule.where, f"fit[{i}].where")
        except SegmentDefinitionError as exc:
            raise ScoringModelError(exc.message, field=exc.field) from exc
        fit.append(CompiledFit(rule, to_predicate(condition)))
    engagement: list[CompiledRule] = []
    for i, er in enumerate(doc.engagement):
        at = f"engagement[{i}]"
        _unique(keys, er.key, f"{at}.key")
        if (er.event is None) == (er.page is None):
            raise ScoringModelError(f"{at}: give exactly one of event or page", field=at)
        if er.count > 1 and er.within is None:
            raise ScoringModelError(
                f"{at}.within: a count of {er.count} needs a window, e.g. within: 2d",
                field=f"{at}.within",
            )
        if er.cap is not None and er.cap < abs(er.points):
            raise ScoringModelError(
                f"{at}.cap: {er.cap} is below the rule's own {abs(er.points)} points",
                field=f"{at}.cap",
            )
        matches = property_test(er.where, f"{at}.where") if er.where is not None else None
        engagement.append(CompiledRule(er, er.window, matches))
    names: set[str] = set()
    scores: set[int] = set()
    for i, threshold in enumerate(doc.thresholds):
        _unique(names, threshold.name, f"thresholds[{i}].name")
        if threshold.score in scores:
            at = f"thresholds[{i}].score"
            raise ScoringModelError(f"{at}: two thresholds at {threshold.score}", field=at)
        scores.add(threshold.score)
    return ScoringModel(
        version=version,
        document=doc,
        half_life=parse_duration(doc.half_life) if doc.half_life else None,
        fit=tuple(fit),
        engagement=tuple(engagement),
        thresholds=tuple(sorted(doc.thresholds, key=lambda t: t.score)),
    )


def _unique(seen: set[str], value: str, path: str) -> None:
    if value in seen:
        raise ScoringModelError(f"{path}: {value!r} is used twice", field=path)
    seen.add(value)


def load_model_text(source: str, version: int) -> ScoringModel:
    """A model from YAML (or JSON) text."""
    try:
        document = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise ScoringModelError(f"not YAML: {exc}", field="model") from exc
    if not isinstance(document, dict):
        raise ScoringModelError("a scoring model is a mapping (name, fit, …)", field="model")
    return compile_model(document, version)


def default_source() -> str:
    """The YAML text of the model shipped with Jornada (``audience/library/scoring.yaml``)."""
    return resources.files("jornada.audience").joinpath("library/scoring.yaml").read_text("utf-8")


@cache
def default_model() -> ScoringModel:
    """The model shipped with Jornada, version 0, compiled once per process."""
    return load_model_text(default_source(), DEFAULT_VERSION)
