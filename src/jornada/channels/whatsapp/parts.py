"""What a WhatsApp template may carry besides its text: reply buttons, a list, an audio, products.

A template declares at most one of ``buttons``, ``list``, ``audio``,
``product`` and ``product_list`` (plus an optional ``header`` and ``footer``
text for the interactive kinds). Every string may use Jinja like the body; it
is rendered with the same variables when the message is rendered.

The limits are Meta's (Cloud API "Interactive reply buttons messages",
"Interactive list messages", "Single-product messages", "Multi-product
messages"); a definition that breaks one is refused with the field named
(``buttons[3]``, ``list.sections[0].rows[2].title``). Lengths of texts that
use Jinja are checked again once rendered: a rendering over a limit fails that
message with the same field named, never sends a request Meta would refuse.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from jornada.errors import InvalidInput

#: The template keys this module reads; any one of KINDS makes a template "rich".
KINDS: Final = ("buttons", "list", "audio", "product", "product_list")
KEYS: Final = (*KINDS, "header", "footer")

MAX_BUTTONS: Final = 3  # reply buttons in one message
BUTTON_TITLE: Final = 20  # characters of a reply button's title
BUTTON_ID: Final = 256  # characters of a reply button's id
LIST_BUTTON: Final = 20  # the label of the button that opens a list
MAX_SECTIONS: Final = 10  # sections of a list or a product list
MAX_ROWS: Final = 10  # rows of a list, all sections together
ROW_TITLE: Final = 24
ROW_ID: Final = 200
ROW_DESCRIPTION: Final = 72
SECTION_TITLE: Final = 24
MAX_PRODUCTS: Final = 30  # products of a product list, all sections together
HEADER: Final = 60  # a text header
FOOTER: Final = 60
BODY: Final = {"buttons": 1024, "list": 4096, "product": 1024, "product_list": 1024}
_SPLIT = re.compile(r"[,\n]")


def _templated(text: str) -> bool:
    return "{{" in text or "{%" in text


def _text(
    raw: Any, field: str, limit: int | None, *, required: bool = True, rendered: bool = False
) -> str | None:
    """A string field: present when required, at most ``limit`` characters once rendered."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            raise InvalidInput(f"{field} is required", field=field)
        return None
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        raise InvalidInput(f"{field} must be text, not {type(raw).__name__}", field=field)
    text = str(raw).strip() if rendered else str(raw)
    if limit is not None and (rendered or not _templated(text)) and len(text) > limit:
        raise InvalidInput(
            f"{field} is {len(text)} characters; WhatsApp allows {limit}: {text!r}", field=field
        )
    return text


def _list(raw: Any, field: str) -> list[Any]:
    if not isinstance(raw, list) or not raw:
        raise InvalidInput(f"{field} must be a non-empty list", field=field)
    return raw


def _mapping(raw: Any, field: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{field} must be a mapping", field=field)
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise InvalidInput(
            f"{field} has no {unknown[0]!r}; it takes {', '.join(allowed)}",
            field=f"{field}.{unknown[0]}",
        )
    return raw


def _unique(values: list[tuple[str, str | None]], what: str) -> None:
    seen: dict[str, str] = {}
    for field, value in values:
        if value is None or _templated(value):
            continue
        if value in seen:
            raise InvalidInput(f"{field} repeats {what} {value!r} of {seen[value]}", field=field)
        seen[value] = field


def _buttons(spec: Mapping[str, Any], r: bool) -> dict[str, Any]:
    buttons = _list(spec.get("buttons"), "buttons")
    if len(buttons) > MAX_BUTTONS:
        raise InvalidInput(
            f"buttons has {len(buttons)} buttons; WhatsApp allows {MAX_BUTTONS}",
            field=f"buttons[{MAX_BUTTONS}]",
        )
    out: list[dict[str, str | None]] = []
    for i, raw in enumerate(buttons):
        item = _mapping(raw, f"buttons[{i}]", ("id", "title"))
        out.append(
            {
                "id": _text(item.get("id"), f"buttons[{i}].id", BUTTON_ID, rendered=r),
                "title": _text(item.get("title"), f"buttons[{i}].title", BUTTON_TITLE, rendered=r),
            }
        )
    _unique([(f"buttons[{i}].id", b["id"]) for i, b in enumerate(out)], "the id")
    _unique([(f"buttons[{i}].title", b["title"]) for i, b in enumerate(out)], "the title")
    return {"buttons": out}


def _menu(spec: Mapping[str, Any], r: bool) -> dict[str, Any]:
    menu = _mapping(spec.get("list"), "list", ("button", "sections"))
    sections = _list(menu.get("sections"), "list.sections")
    if len(sections) > MAX_SECTIONS:
        raise InvalidInput(
            f"list.sections has {len(sections)} sections; WhatsApp allows {MAX_SECTIONS}",
            field=f"list.sections[{MAX_SECTIONS}]",
        )
    out: list[dict[str, Any]] = []
    ids: list[tuple[str, str | None]] = []
    count = 0
    for s, raw in enumerate(sections):
        where = f"list.sections[{s}]"
        section = _mapping(raw, where, ("title", "rows"))
        rows: list[dict[str, str | None]] = []
        for i, row_raw in enumerate(_list(section.get("rows"), f"{where}.rows")):
            at = f"{where}.rows[{i}]"
            row = _mapping(row_raw, at, ("id", "title", "description"))
            count += 1
            if count > MAX_ROWS:
                raise InvalidInput(
                    f"{at} is row {count}; WhatsApp allows {MAX_ROWS} rows in all sections",
                    field=at,
                )
            clean = {
                "id": _text(row.get("id"), f"{at}.id", ROW_ID, rendered=r),
                "title": _text(row.get("title"), f"{at}.title", ROW_TITLE, rendered=r),
            }
            description = _text(
                row.get("description"),
                f"{at}.description",
                ROW_DESCRIPTION,
                required=False,
                rendered=r,
            )
            if description is not None:
                clean["description"] = description
            ids.append((f"{at}.id", clean["id"]))
            rows.append(clean)
        title = _text(
            section.get("title"),
            f"{where}.title",
            SECTION_TITLE,
            required=len(sections) > 1,  # Meta: required when there is more than one section
            rendered=r,
        )
        out.append({"title": title, "rows": rows} if title else {"rows": rows})
    _unique(ids, "the row id")
    return {
        "button": _text(menu.get("button"), "list.button", LIST_BUTTON, rendered=r),
        "sections": out,
    }


def _audio(spec: Mapping[str, Any], r: bool) -> dict[str, Any]:
    audio = _mapping(spec.get("audio"), "audio", ("link", "id"))
    given = [k for k in ("link", "id") if audio.get(k) not in (None, "")]
    if len(given) != 1:
        raise InvalidInput("audio takes either a link or an id (a media id)", field="audio")
    return {given[0]: _text(audio[given[0]], f"audio.{given[0]}", None, rendered=r)}


def _product(spec: Mapping[str, Any], r: bool) -> dict[str, Any]:
    product = _mapping(spec.get("product"), "product", ("catalog_id", "product_retailer_id"))
    out: dict[str, Any] = {
        "product_retailer_id": _text(
            product.get("product_retailer_id"), "product.product_retailer_id", None, rendered=r
        )
    }
    catalog = _text(
        product.get("catalog_id"), "product.catalog_id", None, required=False, rendered=r
    )
    if catalog:
        out["catalog_id"] = catalog
    return out


def _products(spec: Mapping[str, Any], r: bool) -> dict[str, Any]:
    products = _mapping(spec.get("product_list"), "product_list", ("catalog_id", "sections"))
    sections = _list(products.get("sections"), "product_list.sections")
    if len(sections) > MAX_SECTIONS:
        raise InvalidInput(
            f"product_list.sections has {len(sections)} sections; WhatsApp allows {MAX_SECTIONS}",
            field=f"product_list.sections[{MAX_SECTIONS}]",
        )
    out: list[dict[str, Any]] = []
    count = 0
    for s, raw in enumerate(sections):
        where = f"product_list.sections[{s}]"
        section = _mapping(raw, where, ("title", "products"))
        items = [
            _text(p, f"{where}.products[{i}]", None, rendered=r)
            for i, p in enumerate(_list(section.get("products"), f"{where}.products"))
        ]
        count += len(items)
        if count > MAX_PRODUCTS:
            raise InvalidInput(
                f"{where}.products brings the list to {count} products;"
                f" WhatsApp allows {MAX_PRODUCTS}",
                field=f"{where}.products",
            )
        title = _text(section.get("title"), f"{where}.title", SECTION_TITLE, rendered=r)
        out.append({"title": title, "products": items})
    result: dict[str, Any] = {"sections": out}
    catalog = _text(
        products.get("catalog_id"), "product_list.catalog_id", None, required=False, rendered=r
    )
    if catalog:
        result["catalog_id"] = catalog
    return result


_CHECKS: Final[dict[str, Callable[[Mapping[str, Any], bool], dict[str, Any]]]] = {
    "buttons": _buttons,
    "list": _menu,
    "audio": _audio,
    "product": _product,
    "product_list": _products,
}


def _check(kind: str, spec: Mapping[str, Any], *, rendered: bool = False) -> dict[str, Any]:
    """The ``kind`` part of a template, checked and normalised (Jinja sources, or a rendering)."""
    return _CHECKS[kind](spec, rendered)


@dataclass(frozen=True, eq=False)
class WhatsAppParts:
    """A WhatsApp template's non-text part, as written (Jinja sources), already checked.

    ``kind`` is one of :data:`KINDS`; ``spec`` its normalised definition;
    ``header`` and ``footer`` the texts around an interactive message.
    """

    kind: str
    spec: Mapping[str, Any]
    header: str | None = None
    footer: str | None = None

    @classmethod
    def parse(cls, definition: Mapping[str, Any]) -> WhatsAppParts | None:
        """The parts a template definition declares (None if it declares none).

        Raises :class:`InvalidInput` naming the field: more than one kind, more
        than 3 buttons, a title over 20 characters, a repeated id, more than 10
        list rows, an audio with neither link nor id, and so on.
        """
        kinds = [k for k in KINDS if definition.get(k) is not None]
        has_frame = any(definition.get(k) is not None for k in ("header", "footer"))
        if not kinds:
            if has_frame:
                field = "header" if definition.get("header") is not None else "footer"
                raise InvalidInput(
                    f"{field} belongs to an interactive message: add buttons, a list or products",
                    field=field,
                )
            return None
        if len(kinds) > 1:
            raise InvalidInput(
                f"a WhatsApp message is one kind: {' and '.join(kinds)} cannot go together",
                field=kinds[1],
            )
        kind = kinds[0]
        if kind == "audio" and has_frame:
            raise InvalidInput("an audio message has no header or footer", field="header")
        header = _text(definition.get("header"), "header", HEADER, required=False)
        if kind == "product" and header is not None:
            raise InvalidInput("a single-product message has no header", field="header")
        if kind == "product_list" and header is None:
            raise InvalidInput("a product list needs a header text", field="header")
        footer = _text(definition.get("footer"), "footer", FOOTER, required=False)
        return cls(kind=kind, spec=_check(kind, definition), header=header, footer=footer)

    def sources(self) -> Iterator[tuple[str, str]]:
        """Every text of the parts as (field, Jinja source), in order."""
        yield from _leaves("" if self.kind == "buttons" else self.kind, self.spec)
        if self.header is not None:
            yield "header", self.header
        if self.footer is not None:
            yield "footer", self.footer

    def render(self, text: Callable[[str, str], str], body: str) -> dict[str, Any] | None:
        """The parts for one recipient (``text(field, source)`` renders one string), checked.

        What the WhatsApp transport sends: ``{"kind": …, …}`` in Meta's terms.
        None when what the parts need rendered empty (no product to show, an
        audio without a link): the message then goes as its text, as a missing
        personalisation falls back. Raises :class:`InvalidInput` naming the field
        when a rendering breaks one of WhatsApp's limits.
        """
        kind = self.kind
        rendered = _render_tree(self.spec, "" if kind == "buttons" else kind, text)
        if kind == "audio":
            link = str(rendered.get("link") or "").strip()
            if "link" in rendered and not re.match(r"^https?://\S+$", link):
                return None  # no audio to play: the text goes
            if "id" in rendered and not str(rendered["id"]).strip():
                return None
        if kind == "product" and not str(rendered["product_retailer_id"]).strip():
            return None  # no product to show: the text goes
        if kind == "product_list":
            # each entry renders to one or more retailer ids, separated by commas or lines
            sections = []
            for section in rendered["sections"]:
                ids = [i.strip() for p in section["products"] for i in _SPLIT.split(p)]
                if ids := list(dict.fromkeys(i for i in ids if i)):
                    sections.append({**section, "products": ids})
            if not sections:
                return None
            rendered = {**rendered, "sections": sections}
        checked = _check(kind, rendered if kind == "buttons" else {kind: rendered}, rendered=True)
        limit = BODY.get(kind)
        if limit is not None and len(body.strip()) > limit:
            raise InvalidInput(
                f"the body is {len(body.strip())} characters; WhatsApp allows {limit}"
                f" with {kind.replace('_', ' ')}",
                field="body",
            )
        out: dict[str, Any] = {"kind": kind, **checked}
        for name, limit in (("header", HEADER), ("footer", FOOTER)):
            source = getattr(self, name)
            if source is None:
                continue
            required = name == "header" and kind == "product_list"
            value = _text(text(name, source), name, limit, required=required, rendered=True)
            if value:
                out[name] = value
        return out


def _leaves(prefix: str, node: Any) -> Iterator[tuple[str, str]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _leaves(f"{prefix}.{key}" if prefix else str(key), value)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(f"{prefix}[{i}]", value)
    elif isinstance(node, str):
        yield prefix, node


def _render_tree(node: Any, prefix: str, text: Callable[[str, str], str]) -> Any:
    if isinstance(node, Mapping):
        return {
            key: _render_tree(value, f"{prefix}.{key}" if prefix else str(key), text)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_render_tree(value, f"{prefix}[{i}]", text) for i, value in enumerate(node)]
    if isinstance(node, str):
        return text(prefix, node) if _templated(node) else node
    return node
