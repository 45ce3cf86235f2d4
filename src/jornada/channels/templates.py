"""Merchant-editable message templates, rendered safely.

Merchants write Jinja; what they write runs against customer data, so:

* Templates run in Jinja's *immutable* sandbox and are checked before they are
  compiled: one that names ``__class__``, ``__globals__``, ``mro`` and the like,
  or that includes/imports another template, is refused with
  :class:`UnsafeTemplate` and never runs. What the static check cannot see (a
  key built at run time, ``str.format`` tricks, ``list.append`` on the contact)
  the sandbox stops at run time with the same error.
* A missing variable never fails a send and never leaks to the customer: it
  renders as an empty string (or its ``fallback``/``default``) and its dotted
  name is reported in :attr:`Rendered.missing`. A value that is ``None`` or a
  blank string counts as missing too, so "Olá, None!" cannot happen.
* ``money``, ``date``, ``datetime`` and ``plural`` format for the render's
  locale (``pt_BR`` or ``en``) and time zone, with Babel's CLDR data.
* A template is compiled once per (id, part, source) and reused, so a
  campaign to 20,000 contacts costs one compile.

Email bodies are HTML and autoescaped; subjects, plain-text alternatives and
every other channel are plain text and are not.
"""

from __future__ import annotations

import re
import traceback
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from html import unescape
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from babel import Locale
from babel.dates import format_date, format_datetime, format_time
from babel.numbers import (
    format_currency,
    format_decimal,
    get_currency_precision,
    get_currency_symbol,
    get_decimal_symbol,
    get_group_symbol,
)
from jinja2 import nodes, pass_context
from jinja2.exceptions import (
    SecurityError,
    TemplateRuntimeError,
    TemplateSyntaxError,
    UndefinedError,
)
from jinja2.filters import do_default
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing as jinja_missing

from jornada.errors import InvalidInput, JornadaError

if TYPE_CHECKING:
    from jornada.channels.whatsapp.parts import WhatsAppParts

__all__ = [
    "CHANNELS",
    "SUPPORTED_LOCALES",
    "Rendered",
    "Template",
    "TemplateError",
    "UnsafeTemplate",
    "lint",
    "render",
]

#: Every channel a template can be written for.
CHANNELS: Final = ("email", "sms", "whatsapp", "push", "voice", "webhook")
#: Locales the formatting filters know; any other locale formats as ``pt_BR``.
SUPPORTED_LOCALES: Final = ("pt_BR", "en")

MAX_SOURCE_CHARS: Final = 200_000  # a template's source; a 2 KB email is typical
_MAX_REPEAT: Final = 100_000  # longest string/list a template may build with ``*``
_MAX_EXPONENT: Final = 100  # ``10 ** 10 ** 10`` would hang the worker
_LOCATE_BUDGET: Final = 5_000  # values searched to name a missing variable's parent
_DATE_STYLES: Final = frozenset({"short", "medium", "long", "full"})
_LOCALES: Final = {name: Locale.parse(name) for name in SUPPORTED_LOCALES}

# Names that reach from a value to the interpreter; anything starting with "_" too.
_UNSAFE_NAMES: Final = frozenset(
    {
        "mro",
        "func_globals",
        "func_code",
        "func_closure",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_back",
        "f_code",
        "tb_frame",
        "tb_next",
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "cr_frame",
        "cr_code",
        "cr_await",
        "ag_frame",
        "ag_code",
        "im_func",
        "im_self",
        "im_class",
    }
)
# Filters whose string arguments name attributes of the values they get.
_ATTRIBUTE_FILTERS: Final = frozenset(
    {"attr", "map", "selectattr", "rejectattr", "sort", "groupby", "sum", "unique", "min", "max"}
)
# Attributes Jinja itself probes on values; a missing value must not pretend to have them.
_JINJA_PROBES: Final = frozenset({"jinja_pass_arg", "unsafe_callable", "alters_data"})


class TemplateError(InvalidInput):
    """A template that does not compile or fails while rendering.

    ``field`` is the part (``body``, ``subject`` or ``text``); ``data`` holds the
    template id and, when known, the line, so the editor can point at it.
    """

    code = "template_invalid"


class UnsafeTemplate(TemplateError):
    """A template that reaches for Python internals: refused, never run."""

    code = "template_unsafe"


@dataclass(frozen=True)
class Template:
    """A merchant's message template for one channel."""

    id: str
    channel: str  # email | sms | whatsapp | push | voice | webhook
    body: str  # Jinja source; for email the HTML body
    subject: str | None = None  # email; push: the notification's title
    text: str | None = None  # email plain-text alternative (derived from HTML if None)
    approved: bool = (
        False  # WhatsApp: registered with Meta, so it may go outside the 24-hour window
    )
    # WhatsApp: reply buttons, a list, an audio or products (channels/whatsapp/parts.py)
    whatsapp: WhatsAppParts | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise InvalidInput("a template needs an id", field="id")
        if self.channel not in CHANNELS:
            raise InvalidInput(
                f"channel must be one of {', '.join(CHANNELS)}, not {self.channel!r}",
                field="channel",
            )
        if self.whatsapp is not None and self.channel != "whatsapp":
            raise InvalidInput(
                f"only WhatsApp templates have {self.whatsapp.kind.replace('_', ' ')};"
                f" this one is for {self.channel}",
                field=self.whatsapp.kind,
            )
        if self.channel != "email":
            for name in ("subject", "text"):
                if name == "subject" and self.channel == "push":
                    continue  # a push notification's title
                if getattr(self, name) is not None:
                    raise InvalidInput(
                        f"only email templates have a {name}; this one is for {self.channel}",
                        field=name,
                    )


@dataclass(frozen=True)
class Rendered:
    """A template rendered for one recipient, with what it had to leave out."""

    subject: str | None
    body: str
    text: str | None
    missing: tuple[str, ...]  # dotted names that fell back or rendered empty
    whatsapp: dict[str, Any] | None = None  # WhatsApp: the parts rendered (WhatsAppParts.render)


# -- the state of the render in progress ----------------------------------------------


@dataclass
class _Render:
    roots: Mapping[str, Any]
    locale: Locale
    tz: ZoneInfo
    missing: dict[str, None] = field(default_factory=dict)  # an ordered set


_STATE: ContextVar[_Render | None] = ContextVar("jornada_template_render", default=None)


def _state() -> _Render:
    state = _STATE.get()
    if state is None:  # pragma: no cover - filters only run inside render()
        raise RuntimeError("a template filter ran outside render()")
    return state


def _join(parent: str, key: Any) -> str:
    return f"{parent}[{key}]" if isinstance(key, int) else f"{parent}.{key}"


def _locate(roots: Mapping[str, Any], target: object) -> str | None:
    """The dotted path of ``target`` among the variables (by identity), breadth first.

    Only runs when a variable is missing, so the happy path pays nothing for
    the readable names in :attr:`Rendered.missing`. List items are named
    ``items[]`` so that lint groups a loop's misses under one name.
    """
    queue: deque[tuple[str, Any]] = deque(roots.items())
    for _ in range(_LOCATE_BUDGET):
        if not queue:
            break
        path, value = queue.popleft()
        if value is target:
            return path
        if isinstance(value, Mapping):
            queue.extend((f"{path}.{key}", item) for key, item in value.items())
        elif isinstance(value, list | tuple):
            queue.extend((f"{path}[]", item) for item in value)
    return None


def _blank(value: Any) -> bool:
    return value is None or (type(value) is str and not value.strip())


class _Missing(Undefined):
    """An undefined value that renders empty, never raises, and reports its dotted name.

    Attribute access, calls and arithmetic on it give more missing values, so
    ``contact.traits.first_name.upper()`` is as harmless as the name alone.
    It is recorded when it is *used*: rendered, iterated, or replaced by
    ``fallback``/``default``; testing it in ``{% if %}`` is not a miss.
    """

    __slots__ = ("_parent",)

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = jinja_missing,
        name: str | None = None,
        exc: type[TemplateRuntimeError] = UndefinedError,
        *,
        parent: _Missing | None = None,
    ) -> None:
        super().__init__(hint, obj, name, exc)
        self._parent = parent

    def dotted_name(self) -> str | None:
        """``contact.traits.first_name``; None for Jinja's own unnamed ones (``loop.nextitem``)."""
        name = self._undefined_name
        if self._parent is not None:
            parent = self._parent.dotted_name()
            return None if parent is None else _join(parent, name)
        if name is None:
            return None
        if self._undefined_obj is jinja_missing:
            return str(name)
        state = _STATE.get()
        found = _locate(state.roots, self._undefined_obj) if state is not None else None
        return str(name) if found is None else _join(found, name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in _JINJA_PROBES:
            raise AttributeError(name)
        return _Missing(name=name, parent=self)

    def __getitem__(self, key: Any) -> Any:
        return _Missing(name=key, parent=self)

    def _chain(self, *args: Any, **kwargs: Any) -> Any:
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = _chain
    __mul__ = __rmul__ = __div__ = __rdiv__ = _chain
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _chain
    __mod__ = __rmod__ = __pos__ = __neg__ = __pow__ = __rpow__ = _chain
    __call__ = __lt__ = __le__ = __gt__ = __ge__ = _chain

    def __int__(self, *args: Any, **kwargs: Any) -> Any:
        _record(self)
        return 0

    def __float__(self, *args: Any, **kwargs: Any) -> Any:
        _record(self)
        return 0.0

    def __complex__(self, *args: Any, **kwargs: Any) -> Any:
        _record(self)
        return 0j

    def __str__(self) -> str:
        _record(self)
        return ""

    def __iter__(self) -> Iterator[Any]:
        _record(self)
        return iter(())

    def __repr__(self) -> str:
        return f"<missing {self.dotted_name()}>"


def _record(value: _Missing) -> None:
    state = _STATE.get()
    name = value.dotted_name() if state is not None else None
    if state is not None and name is not None:
        state.missing.setdefault(name, None)


# -- the sandbox -----------------------------------------------------------------------


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, plus: keys before methods on mappings, blank values as missing,
    unsafe access raising instead of rendering empty, and bounded ``*``/``**``."""

    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        # ``cart.items`` is the cart's items, not dict.items: merchant data is JSON.
        if type(obj) is dict or isinstance(obj, Mapping):
            try:
                value = obj[attribute]
            except (KeyError, TypeError):
                value = super().getattr(obj, attribute)
        else:
            value = super().getattr(obj, attribute)
        return self.undefined(obj=obj, name=attribute) if _blank(value) else value

    def getitem(self, obj: Any, argument: Any) -> Any:
        value = super().getitem(obj, argument)
        return self.undefined(obj=obj, name=argument) if _blank(value) else value

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        # The stock sandbox returns an Undefined that raises when used; ours
        # renders empty when used, so a forbidden access must raise right here.
        raise SecurityError(
            f"attribute {attribute!r} of {type(obj).__name__!r} values is not available in templates"
        )

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
            raise SecurityError(f"exponent {right} is larger than {_MAX_EXPONENT}")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > _MAX_REPEAT
                ):
                    raise SecurityError(f"repeating a value {times} times is too large")
        return super().call_binop(context, operator, left, right)


def _finalize(value: Any) -> Any:
    return "" if value is None else value


# -- filters ---------------------------------------------------------------------------


def _plain(text: str) -> str:
    # CLDR puts (narrow) no-break spaces in "R$ 1,00" and "10:30 PM"; outside
    # GSM-7 they turn a 160-character SMS into a 70-character one.
    return text.replace("\xa0", " ").replace("\u202f", " ")


def _fallback(value: Any, default: Any = "") -> Any:
    """``default`` when the value is missing, ``None`` or blank; records the miss."""
    if isinstance(value, _Missing):
        _record(value)
        return default
    return default if _blank(value) else value


def _default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """Jinja's ``default``, recording the miss like ``fallback`` does."""
    if isinstance(value, _Missing):
        _record(value)
    return do_default(value, default_value, boolean)


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float | str):
        try:
            number = Decimal(str(value).strip())  # str(float): 0.1 stays 0.1
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a number") from None
    else:
        raise ValueError(f"a {type(value).__name__} is not a number")
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return number


@pass_context
def _money(context: Context, value: Any, currency: Any = "BRL") -> Any:
    """``1234.56 | money`` → ``R$ 1.234,56`` (pt_BR); rounds half up to the currency's cents."""
    if isinstance(value, _Missing):
        return value
    if isinstance(currency, _Missing):
        _record(currency)
        currency = "BRL"
    elif _blank(currency):
        currency = "BRL"
    code = str(currency).strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise ValueError(f"currency must be a 3-letter ISO 4217 code, not {currency!r}")
    return _format_money(_to_decimal(value), code, _state().locale)


@lru_cache(maxsize=256)
def _money_style(
    locale: Locale, code: str
) -> tuple[int, str, str, tuple[str, str], tuple[str, str]]:
    """What ``format_currency`` would look up on every call, looked up once."""
    pattern = locale.currency_formats["standard"]
    symbol = get_currency_symbol(code, locale)
    return (
        get_currency_precision(code),
        get_decimal_symbol(locale),
        get_group_symbol(locale),
        (
            _plain(pattern.prefix[0].replace("¤", symbol)),
            _plain(pattern.prefix[1].replace("¤", symbol)),
        ),
        (
            _plain(pattern.suffix[0].replace("¤", symbol)),
            _plain(pattern.suffix[1].replace("¤", symbol)),
        ),
    )


def _format_money(amount: Decimal, code: str, locale: Locale) -> str:
    """Babel's standard currency format, rounded half up, ~10x faster than ``format_currency``.

    Babel spends ~20 µs a call re-reading CLDR data; three amounts in an
    email were a third of its render time. Locales whose pattern is not the
    plain ``#,##0.00`` with groups of three go through Babel.
    """
    pattern = locale.currency_formats["standard"]
    precision, decimal_symbol, group_symbol, prefix, suffix = _money_style(locale, code)
    amount = amount.quantize(Decimal(1).scaleb(-precision), rounding=ROUND_HALF_UP)
    if amount == 0:
        amount = abs(amount)  # no "-R$ 0,00"
    if pattern.grouping != (3, 3) or "¤¤" in pattern.pattern or pattern.exp_prec:
        return _plain(format_currency(amount, code, locale=locale))
    digits = f"{abs(amount):,.{precision}f}".translate(
        {ord(","): group_symbol, ord("."): decimal_symbol}
    )
    negative = int(amount < 0)
    return f"{prefix[negative]}{digits}{suffix[negative]}"


def _zone(tz: Any, state: _Render) -> ZoneInfo:
    if isinstance(tz, _Missing):
        _record(tz)
        return state.tz
    if _blank(tz):
        return state.tz
    try:
        return _zone_named(str(tz))
    except InvalidInput:
        return state.tz  # a bad time zone in the data should not stop the message


def _moment(value: Any, zone: ZoneInfo) -> date:
    """A date, or an aware datetime in ``zone``; naive values are UTC, as Jornada stores them."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date or datetime") from None
    if isinstance(value, datetime):
        moment: datetime = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(zone)
    if isinstance(value, date):
        return value
    raise ValueError(f"a {type(value).__name__} is not a date")


@pass_context
def _date(context: Context, value: Any, format: str = "medium", tz: Any = None) -> Any:
    """``order_at | date`` → ``2 de nov. de 2026``, on the calendar of the contact's time zone."""
    if isinstance(value, _Missing):
        return value
    state = _state()
    moment = _moment(value, _zone(tz, state))
    day = moment.date() if isinstance(moment, datetime) else moment
    return _plain(format_date(day, format, locale=state.locale))


@pass_context
def _datetime(context: Context, value: Any, format: str = "medium", tz: Any = None) -> Any:
    """``order_at | datetime`` → ``2 de nov. de 2026 22:30``: date style plus a short time."""
    if isinstance(value, _Missing):
        return value
    state = _state()
    moment = _moment(value, _zone(tz, state))
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=state.tz)
    if format not in _DATE_STYLES:  # a CLDR pattern such as "dd/MM HH'h'"
        return _plain(format_datetime(moment, format, locale=state.locale))
    pattern = str(state.locale.datetime_formats[format]).replace("'", "")
    text = pattern.replace("{0}", format_time(moment, "short", locale=state.locale))
    return _plain(text.replace("{1}", format_date(moment.date(), format, locale=state.locale)))


@pass_context
def _plural(context: Context, value: Any, singular: str, plural: str) -> Any:
    """``n | plural("item", "itens")`` → ``1 item`` / ``3 itens``, the number in the locale."""
    if isinstance(value, _Missing):
        return value
    number = _to_decimal(value)
    word = singular if abs(number) == 1 else plural
    locale = _state().locale
    if number == number.to_integral_value() and locale.decimal_formats[None].grouping == (3, 3):
        shown = f"{int(number):,}".replace(",", get_group_symbol(locale))  # Babel is ~7 µs
    else:
        shown = _plain(format_decimal(number, locale=locale))
    return f"{shown} {word}"


def _first_name(value: Any) -> Any:
    """``"maria da silva" | first_name`` → ``Maria``: greetings use the first word only."""
    if isinstance(value, _Missing):
        return value
    words = str(value).split()
    return words[0].title() if words else ""


def _environment(autoescape: bool) -> _Environment:
    env = _Environment(
        autoescape=autoescape,
        undefined=_Missing,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(
        fallback=_fallback,
        default=_default,
        d=_default,
        money=_money,
        date=_date,
        datetime=_datetime,
        plural=_plural,
        first_name=_first_name,
    )
    return env


_HTML_ENV: Final = _environment(autoescape=True)
_TEXT_ENV: Final = _environment(autoescape=False)


# -- compiling ---------------------------------------------------------------------------


def _where(template_id: str, part: str, line: int | None) -> str:
    return f"template {template_id!r} {part}" + (f", line {line}" if line else "")


def _unsafe_name(name: str) -> bool:
    return any(seg.startswith("_") or seg in _UNSAFE_NAMES for seg in name.split("."))


def _reading_order(node: nodes.Node) -> Iterator[nodes.Node]:
    """Children before parents: ``a.__class__.__mro__`` yields ``__class__`` first."""
    for child in node.iter_child_nodes():
        yield from _reading_order(child)
    yield node


def _check(tree: nodes.Template, template_id: str, part: str) -> None:
    """Refuse, before anything runs, templates that name Python internals or other templates."""
    unsafe: list[tuple[int, str]] = []
    for node in _reading_order(tree):
        if isinstance(node, nodes.Extends | nodes.Include | nodes.Import | nodes.FromImport):
            raise TemplateError(
                f"{_where(template_id, part, node.lineno)}: a message template stands alone;"
                " extends, include and import are not available",
                field=part,
                template=template_id,
                line=node.lineno,
            )
        names: list[str] = []
        if isinstance(node, nodes.Getattr):
            names.append(node.attr)
        elif isinstance(node, nodes.Getitem):
            if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                names.append(node.arg.value)
        elif isinstance(node, nodes.Filter) and node.name in _ATTRIBUTE_FILTERS:
            args = [*node.args, *(kw.value for kw in node.kwargs)]
            names.extend(
                arg.value
                for arg in args
                if isinstance(arg, nodes.Const) and isinstance(arg.value, str)
            )
        unsafe.extend((node.lineno, name) for name in names if _unsafe_name(name))
    if unsafe:
        line = min(lineno for lineno, _ in unsafe)
        names = list(dict.fromkeys(name for lineno, name in unsafe if lineno == line))
        listed = ", ".join(repr(name) for name in names)
        verb = (
            "reaches into Python internals and is"
            if len(names) == 1
            else "reach into Python internals and are"
        )
        raise UnsafeTemplate(
            f"{_where(template_id, part, line)}: {listed} {verb} not allowed in a template",
            field=part,
            template=template_id,
            line=line,
        )


@lru_cache(maxsize=2048)
def _compile(template_id: str, part: str, autoescape: bool, source: str) -> jinja2.Template:
    """Parse, check and compile one part once; the cache key holds the whole source."""
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateError(
            f"{_where(template_id, part, None)} is {len(source)} characters;"
            f" the limit is {MAX_SOURCE_CHARS}",
            field=part,
            template=template_id,
        )
    env = _HTML_ENV if autoescape else _TEXT_ENV
    name = f"{template_id}:{part}"
    try:
        tree = env.parse(source, name=name, filename=name)
        _check(tree, template_id, part)
        code = env.compile(tree, name=name, filename=name)
    except TemplateSyntaxError as exc:
        raise TemplateError(
            f"{_where(template_id, part, exc.lineno)}: {exc.message or 'syntax error'}",
            field=part,
            template=template_id,
            line=exc.lineno,
        ) from None
    except RecursionError:  # Jinja's parser and compiler recurse: ~500 nested operators
        raise TemplateError(
            f"{_where(template_id, part, None)}: expressions are nested too deeply",
            field=part,
            template=template_id,
        ) from None
    # The globals as a plain dict, not Jinja's live ChainMap over the environment's: every
    # render copies them into its context, and copying a ChainMap took a fifth of a short
    # email's render. Same names and values: these environments' globals never change.
    return env.template_class.from_code(env, code, dict(env.make_globals(None)))


# -- rendering ---------------------------------------------------------------------------


def _template_line(exc: BaseException, name: str) -> int | None:
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == name]
    return lines[-1] if lines else None


def _render_part(template: Template, part: str, source: str, roots: Mapping[str, Any]) -> str:
    autoescape = part == "body" and template.channel == "email"
    compiled = _compile(template.id, part, autoescape, source)
    try:
        return compiled.render(roots)
    except JornadaError:
        raise
    except SecurityError as exc:
        line = _template_line(exc, f"{template.id}:{part}")
        raise UnsafeTemplate(
            f"{_where(template.id, part, line)}: {exc}",
            field=part,
            template=template.id,
            line=line,
        ) from None
    except Exception as exc:  # a filter given bad data, 1/0, ...: the merchant must see which line
        line = _template_line(exc, f"{template.id}:{part}")
        raise TemplateError(
            f"{_where(template.id, part, line)}: {exc}",
            field=part,
            template=template.id,
            line=line,
        ) from exc


@lru_cache(maxsize=1024)
def _zone_named(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"{name!r} is not an IANA time zone", field="timezone") from None


def _locale(name: str) -> Locale:
    return _LOCALES["en" if name.lower().startswith("en") else "pt_BR"]


_BLOCKS_DROPPED = re.compile(r"<(script|style|head|title)\b.*?</\1\s*>|<!--.*?-->", re.S | re.I)
_LINK = re.compile(
    r"""<a\b[^>]*?\bhref\s*=\s*(["'])(https?://.*?)\1[^>]*>(.*?)</a\s*>""", re.S | re.I
)
_BREAK = re.compile(
    r"<(?:br|/?(?:p|div|h[1-6]|li|ul|ol|tr|table|blockquote|section|article|header|footer))\b[^>]*>",
    re.I,
)
_TAG = re.compile(r"<[^>]*>")


def _link_text(match: re.Match[str]) -> str:
    url, label = match.group(2), match.group(3)
    shown = " ".join(unescape(_TAG.sub("", label)).split())
    return label if shown == unescape(url) else f"{label} ({url})"


def _html_to_text(html: str) -> str:
    """The plain-text alternative of an HTML email: tags out, links kept as ``label (url)``."""
    text = _BLOCKS_DROPPED.sub("", html)
    text = _LINK.sub(_link_text, text)
    text = _TAG.sub("", _BREAK.sub("\n", text))
    lines = (" ".join(line.split()) for line in unescape(text).splitlines())
    return "\n".join(line for line in lines if line)


def render(
    template: Template,
    variables: Mapping[str, Any],
    *,
    locale: str = "pt_BR",
    timezone: str = "America/Sao_Paulo",
) -> Rendered:
    """Render every part of ``template`` for one recipient.

    ``locale`` picks number and date formats (``en*`` → English, anything
    else → Brazilian Portuguese, the language the store writes in anyway);
    ``timezone`` is the recipient's, for ``date``/``datetime``. Raises
    :class:`TemplateError` (or :class:`UnsafeTemplate`) naming the template,
    the part and the line; a missing variable is never an error.
    """
    roots = {key: value for key, value in variables.items() if not _blank(value)}
    state = _Render(roots=roots, locale=_locale(locale), tz=_zone_named(timezone))
    token = _STATE.set(state)
    try:
        subject = text = None
        if template.subject is not None:
            subject = " ".join(_render_part(template, "subject", template.subject, roots).split())
        body = _render_part(template, "body", template.body, roots)
        if template.text is not None:
            text = _render_part(template, "text", template.text, roots)
        elif template.channel == "email":
            text = _html_to_text(body)
        whatsapp = None
        if template.whatsapp is not None:
            whatsapp = _render_whatsapp(template, template.whatsapp, body, roots)
    finally:
        _STATE.reset(token)
    return Rendered(
        subject=subject, body=body, text=text, missing=tuple(state.missing), whatsapp=whatsapp
    )


def _render_whatsapp(
    template: Template, parts: WhatsAppParts, body: str, roots: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The template's WhatsApp parts for this recipient; a broken limit names its field."""
    try:
        return parts.render(
            lambda field, source: _render_part(template, field, source, roots), body
        )
    except TemplateError:
        raise
    except InvalidInput as exc:
        raise TemplateError(
            f"template {template.id!r} {exc.field}: {exc.message}",
            field=exc.field,
            template=template.id,
        ) from None


def lint(
    template: Template,
    contacts: Iterable[Mapping[str, Any]],
    *,
    locale: str = "pt_BR",
    variables: Mapping[str, Any] | None = None,
) -> dict[str, list[str]]:
    """Which contacts would get a fallback or a blank, variable by variable.

    Each contact (the shape of ``contact_view``, with its ``id``) is rendered
    as ``contact``; ``variables`` gives sample values for what a send supplies
    besides the contact (an order, a cart); names it lacks are reported for
    every contact. Returns ``{dotted name: [contact ids]}`` in first-seen order.
    """
    found: dict[str, list[str]] = {}
    for contact in contacts:
        contact_id = contact.get("id")
        if contact_id is None:
            raise InvalidInput("every contact to lint against needs an 'id'", field="contacts")
        rendered = render(template, {**(variables or {}), "contact": contact}, locale=locale)
        for name in rendered.missing:
            found.setdefault(name, []).append(str(contact_id))
    return found
