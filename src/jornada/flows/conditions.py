"""Pure: the condition language used by triggers, entry filters, branches and goals.

A condition is a small JSON/YAML object::

    {"all": [c, …]}  {"any": [c, …]}  {"not": c}
    {"prop": "value", "gt": 500}              a property of the event at hand
    {"trait": "lead_type", "eq": "b2b"}       a contact trait
    {"fact": "total_spent", "gte": 300}       a commerce fact (orders_count, total_spent,
                                              average_order_value, last_order_at, …)
    {"var": "score", "lte": 6}                a value the run captured (e.g. a survey answer)
    {"tag": "vip"}  {"stage": "Engaged"}  {"consent": "email_marketing"}
    {"performed": "Message Opened"}           the contact did it since entering the flow
    {"performed": ["Message Opened", "Message Clicked"]}   any of them

Comparison operators: eq, ne, gt, gte, lt, lte, in, not_in, exists, contains.
Numbers given as strings ("300.00") compare as numbers.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "exists", "contains")
SUBJECTS = ("prop", "trait", "fact", "var")


@dataclass(frozen=True)
class Facts:
    """What a condition may look at: the contact, the event at hand and the run's variables."""

    traits: Mapping[str, Any] = field(default_factory=dict)
    facts: Mapping[str, Any] = field(default_factory=dict)
    tags: Container[str] = frozenset()
    stage: str = "New"
    consent: Mapping[str, bool] = field(default_factory=dict)
    properties: Mapping[str, Any] = field(default_factory=dict)
    vars: Mapping[str, Any] = field(default_factory=dict)
    performed: Container[str] = frozenset()


class ConditionError(ValueError):
    """A condition that does not follow the grammar; the message says where."""


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if op == "exists":
        return (actual is not None) == bool(expected)
    if op == "in":
        return actual in expected
    if op == "not_in":
        return actual not in expected
    if op == "contains":
        return actual is not None and expected in actual
    left, right = _number(actual), _number(expected)
    if left is not None and right is not None:
        a, b = left, right
    else:
        a, b = actual, expected
    if op == "eq":
        return bool(a == b)
    if op == "ne":
        return bool(a != b)
    if actual is None or expected is None:
        return False
    try:
        if op == "gt":
            return bool(a > b)
        if op == "gte":
            return bool(a >= b)
        if op == "lt":
            return bool(a < b)
        if op == "lte":
            return bool(a <= b)
    except TypeError:
        return False
    raise ConditionError(f"unknown operator {op!r}; use one of {', '.join(OPERATORS)}")


def _lookup(source: Mapping[str, Any], path: str) -> Any:
    value: Any = source
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def evaluate(condition: Mapping[str, Any] | None, facts: Facts) -> bool:
    """True when the condition holds; ``None`` (no condition) always holds."""
    if condition is None:
        return True
    if "all" in condition:
        return all(evaluate(c, facts) for c in condition["all"])
    if "any" in condition:
        return any(evaluate(c, facts) for c in condition["any"])
    if "not" in condition:
        return not evaluate(condition["not"], facts)
    if "tag" in condition:
        return str(condition["tag"]) in facts.tags
    if "performed" in condition:
        names = condition["performed"]
        return any(n in facts.performed for n in ([names] if isinstance(names, str) else names))
    if "consent" in condition:
        return bool(facts.consent.get(condition["consent"], False))
    if "stage" in condition and not any(op in condition for op in OPERATORS):
        return bool(facts.stage == condition["stage"])
    for subject in SUBJECTS:
        if subject in condition:
            source = {
                "prop": facts.properties,
                "trait": facts.traits,
                "fact": facts.facts,
                "var": facts.vars,
            }[subject]
            actual = _lookup(source, str(condition[subject]))
            ops = [op for op in OPERATORS if op in condition]
            if not ops:
                return actual is not None and actual is not False
            return all(_compare(actual, op, condition[op]) for op in ops)
    raise ConditionError(f"unknown condition {dict(condition)!r}")


def check(condition: Mapping[str, Any] | None, where: str) -> None:
    """Refuse a malformed condition when a flow is loaded, not when a contact meets it."""
    if condition is None:
        return
    if not isinstance(condition, Mapping):
        raise ConditionError(f"{where}: a condition is an object, not {condition!r}")
    for key in ("all", "any"):
        if key in condition:
            if not isinstance(condition[key], list):
                raise ConditionError(f"{where}.{key}: must be a list of conditions")
            for i, c in enumerate(condition[key]):
                check(c, f"{where}.{key}[{i}]")
            return
    if "not" in condition:
        check(condition["not"], f"{where}.not")
        return
    if any(k in condition for k in ("tag", "consent", "stage", "performed", *SUBJECTS)):
        unknown = set(condition) - {"tag", "consent", "stage", "performed", *SUBJECTS, *OPERATORS}
        if unknown:
            raise ConditionError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        return
    raise ConditionError(
        f"{where}: a condition starts with all, any, not, tag, consent, stage, performed, prop, trait, "
        "fact or var"
    )
