"""Merchant templates: safe sandbox, missing-variable reporting, pt_BR/en formatting, lint."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from babel.numbers import format_currency

from jornada.channels import Rendered, Template, TemplateError, UnsafeTemplate, lint, render
from jornada.channels import templates as templates_module
from jornada.errors import InvalidInput


def sms(body: str, template_id: str = "welcome") -> Template:
    return Template(id=template_id, channel="sms", body=body)


def body_of(source: str, variables: dict[str, Any] | None = None, **options: str) -> str:
    return render(sms(source), variables or {}, **options).body


# -- money -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1234.56"), "R$ 1.234,56"),
        (1234.56, "R$ 1.234,56"),
        ("1234.56", "R$ 1.234,56"),
        (1234, "R$ 1.234,00"),
        (-1234.56, "-R$ 1.234,56"),
        ("1234567890.12", "R$ 1.234.567.890,12"),
        (0, "R$ 0,00"),
        ("0.005", "R$ 0,01"),
        ("-0.001", "R$ 0,00"),
    ],
)
def test_money_in_pt_br(value: object, expected: str) -> None:
    """money formats Decimal, int, float and decimal strings as Brazilian reais, half up."""
    # given an amount in any of the accepted types
    # when it is rendered with the default locale
    body = body_of("{{ amount | money }}", {"amount": value})
    # then it reads as reais with Brazilian separators and a plain space
    assert body == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1234.56", "R$1,234.56"),
        (-1234.56, "-R$1,234.56"),
        (Decimal("1234567890.12"), "R$1,234,567,890.12"),
    ],
)
def test_money_in_english(value: object, expected: str) -> None:
    """money in en uses English separators and no space after the symbol."""
    # given an amount
    # when it is rendered in English
    body = body_of("{{ amount | money }}", {"amount": value}, locale="en")
    # then it has English separators
    assert body == expected


def test_money_takes_a_currency() -> None:
    """money's argument picks the currency; pt_BR writes dollars as US$."""
    # given an amount in dollars
    source = "{{ 10 | money('USD') }}"
    # when rendered in both locales
    pt, en = body_of(source), body_of(source, locale="en-US")
    # then each locale writes the dollar its own way
    assert (pt, en) == ("US$ 10,00", "$10.00")


def test_money_agrees_with_babel() -> None:
    """The fast money path prints what Babel's format_currency prints, for many amounts."""
    # given 300 amounts of every size and sign, already rounded to cents
    rng = random.Random(7)
    amounts = [Decimal(rng.randint(-(10**12), 10**12)).scaleb(-2) for _ in range(300)] + [
        Decimal("0.01"),
        Decimal("-0.01"),
        Decimal("999.99"),
        Decimal("1000"),
    ]
    for locale in ("pt_BR", "en"):
        # when both format them
        ours = [body_of("{{ a | money }}", {"a": amount}, locale=locale) for amount in amounts]
        babel = [
            format_currency(amount, "BRL", locale=locale).replace("\xa0", " ") for amount in amounts
        ]
        # then they agree exactly
        assert ours == babel


def test_money_on_a_non_number_names_the_line() -> None:
    """A value money cannot read fails the render with the template and line, not garbage."""
    # given a template whose second line formats a word as money
    template = sms("Oi\n{{ total | money }}", template_id="receipt")
    # when it is rendered
    with pytest.raises(TemplateError) as caught:
        render(template, {"total": "abc"})
    # then the error names the template, the line and the value
    assert caught.value.code == "template_invalid"
    assert caught.value.message == "template 'receipt' body, line 2: 'abc' is not a number"
    assert caught.value.data == {"template": "receipt", "line": 2}


# -- dates -----------------------------------------------------------------------------

LATE_ORDER = "2026-11-03T01:30:00Z"  # 22:30 on 2 Nov in São Paulo, 10:30 on 3 Nov in Tokyo


def test_date_uses_the_render_time_zone_across_midnight() -> None:
    """An order at 01:30 UTC is still the 2nd in São Paulo and already the 3rd in UTC."""
    # given an order placed just after midnight UTC
    variables = {"order_at": LATE_ORDER}
    # when it is rendered in the default zone and in UTC
    sao_paulo = body_of("{{ order_at | date }}", variables)
    utc = body_of("{{ order_at | date }}", variables, timezone="UTC")
    # then each shows its own calendar day, in the medium pt_BR style
    assert (sao_paulo, utc) == ("2 de nov. de 2026", "3 de nov. de 2026")


def test_date_tz_argument_uses_the_contacts_zone() -> None:
    """date(tz=contact.timezone) renders on the contact's calendar; a missing zone falls back."""
    # given an aware datetime and a contact in Tokyo
    order_at = datetime(2026, 11, 3, 1, 30, tzinfo=UTC)
    contact = {"timezone": "Asia/Tokyo"}
    # when rendered with the contact's zone, and with a zone the contact lacks
    rendered = render(
        sms("{{ order_at | date(tz=contact.timezone) }} / {{ order_at | date(tz=contact.tz) }}"),
        {"order_at": order_at, "contact": contact},
    )
    # then Tokyo's day is shown, the missing zone uses the render zone and is reported
    assert rendered.body == "3 de nov. de 2026 / 2 de nov. de 2026"
    assert rendered.missing == ("contact.tz",)


def test_datetime_shows_a_short_time_in_each_locale() -> None:
    """datetime is the medium date plus hours and minutes, never seconds."""
    # given an order just after midnight UTC
    variables = {"order_at": LATE_ORDER}
    # when rendered in Portuguese and in English
    pt = body_of("{{ order_at | datetime }}", variables)
    en = body_of("{{ order_at | datetime }}", variables, locale="en")
    # then both show São Paulo's evening of the 2nd
    assert (pt, en) == ("2 de nov. de 2026 22:30", "Nov 2, 2026, 10:30 PM")


def test_a_date_without_time_is_not_shifted() -> None:
    """A plain date (a birthday) is the same day in every time zone."""
    # given a date-only ISO string
    # when rendered in a zone west of UTC
    body = body_of("{{ birthday | date('long') }}", {"birthday": "2026-11-02"})
    # then it is the same calendar day
    assert body == "2 de novembro de 2026"


# -- plural and first_name -------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "locale", "expected"),
    [
        (0, "pt_BR", "0 itens"),
        (1, "pt_BR", "1 item"),
        (3, "pt_BR", "3 itens"),
        (1234, "pt_BR", "1.234 itens"),
        (1234, "en", "1,234 itens"),
        ("2.5", "pt_BR", "2,5 itens"),
    ],
)
def test_plural(count: object, locale: str, expected: str) -> None:
    """plural writes the number in the locale and picks the singular only for exactly one."""
    # given a count
    # when rendered with plural
    body = body_of('{{ n | plural("item", "itens") }}', {"n": count}, locale=locale)
    # then number and word agree
    assert body == expected


def test_first_name_takes_the_first_word_title_cased() -> None:
    """first_name greets with the first word of a full name, whatever its case."""
    # given names as customers type them
    names = ["  maria DA silva ", "JOÃO", "ana-paula souza"]
    # when each goes through first_name
    bodies = [body_of("{{ name | first_name }}", {"name": name}) for name in names]
    # then only the first word remains, title-cased
    assert bodies == ["Maria", "João", "Ana-Paula"]


# -- missing variables -----------------------------------------------------------------


def test_fallback_and_missing_are_reported_by_dotted_name() -> None:
    """Missing, null and blank values fall back or render empty, and each is reported once."""
    # given a contact with a null name, a blank city and no nickname
    contact = {"id": "c1", "traits": {"first_name": None, "city": "  ", "plan": "gold"}}
    template = sms(
        "Olá, {{ contact.traits.first_name | fallback('cliente') }}!"
        " [{{ contact.traits.city }}] [{{ contact.traits.nick | default('amigo') }}]"
        " [{{ contact.traits.plan }}] [{{ order.total | money }}] [{{ contact.traits.city }}]"
    )
    # when it is rendered
    rendered = render(template, {"contact": contact})
    # then nothing leaks, and every miss is named in first-seen order
    assert rendered == Rendered(
        subject=None,
        body="Olá, cliente! [] [amigo] [gold] [] []",
        text=None,
        missing=(
            "contact.traits.first_name",
            "contact.traits.city",
            "contact.traits.nick",
            "order.total",
        ),
    )


def test_missing_values_never_raise() -> None:
    """Calls, arithmetic and deep access on a missing value render empty instead of raising."""
    # given a template that does everything to a variable nobody supplied
    source = "[{{ cart.items[0].name.upper() }}][{{ cart.total + 10 }}][{% for i in cart.items %}x{% endfor %}]"
    # when it is rendered without it
    rendered = render(sms(source), {})
    # then the customer sees blanks and the merchant sees the names
    assert rendered.body == "[][][]"
    assert rendered.missing == ("cart.items[0].name.upper", "cart.total", "cart.items")


def test_an_if_test_is_not_a_miss() -> None:
    """Checking an optional value in {% if %} is a choice, not a fallback."""
    # given a template that only shows a block for VIPs
    source = "{% if contact.traits.vip %}VIP{% else %}Oi{% endif %}"
    # when a contact without the trait is rendered
    rendered = render(sms(source), {"contact": {"traits": {}}})
    # then nothing is reported
    assert (rendered.body, rendered.missing) == ("Oi", ())


def test_loop_items_are_named_by_their_list() -> None:
    """A miss inside a loop is named after the list, so lint groups it across items."""
    # given a cart whose second item has no name
    cart = {"items": [{"name": "Tênis"}, {"sku": "B"}]}
    # when the items are listed (``cart.items`` is the key, not dict.items)
    rendered = render(sms("{% for i in cart.items %}{{ i.name }};{% endfor %}"), {"cart": cart})
    # then the body lists what exists and the miss names the list
    assert (rendered.body, rendered.missing) == ("Tênis;;", ("cart.items[].name",))


# -- escaping --------------------------------------------------------------------------

SCRIPT = "<script>alert('oi')</script> & cia"


def test_html_email_escapes_traits_and_derives_text() -> None:
    """An email body escapes a trait with <script>; subject and text alternative are plain."""
    # given an email template and a contact whose name holds markup
    template = Template(
        id="welcome",
        channel="email",
        subject="Bem-vindo, {{ contact.traits.name }}",
        body=(
            "<html><head><style>p {color: red}</style></head><body>"
            "<p>Oi {{ contact.traits.name }}</p>"
            '<p><a href="https://loja.example/?a=1&amp;b=2">Ver ofertas</a></p></body></html>'
        ),
    )
    # when it is rendered
    rendered = render(template, {"contact": {"traits": {"name": SCRIPT}}})
    # then the HTML is escaped and the plain parts are not
    assert rendered.body == (
        "<html><head><style>p {color: red}</style></head><body>"
        "<p>Oi &lt;script&gt;alert(&#39;oi&#39;)&lt;/script&gt; &amp; cia</p>"
        '<p><a href="https://loja.example/?a=1&amp;b=2">Ver ofertas</a></p></body></html>'
    )
    assert rendered.subject == "Bem-vindo, " + SCRIPT
    assert rendered.text == (
        "Oi <script>alert('oi')</script> & cia\nVer ofertas (https://loja.example/?a=1&b=2)"
    )


def test_sms_is_not_escaped() -> None:
    """SMS is plain text: the customer sees & and < as typed, not &amp;."""
    # given the same markup-bearing trait
    # when an SMS template uses it
    body = body_of("Oi {{ name }}", {"name": SCRIPT})
    # then it is verbatim
    assert body == "Oi " + SCRIPT


# -- safety ----------------------------------------------------------------------------


class Probe:
    """Records whether the template ever ran."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def touch(self) -> str:
        self.calls.append("touch")
        return "ran"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (
            "{{ ''.__class__.__mro__ }}",
            "'__class__', '__mro__' reach into Python internals and are",
        ),
        (
            "{{ cycler.__init__.__globals__ }}",
            "'__init__', '__globals__' reach into Python internals and are",
        ),
        ("{{ x.__subclasses__() }}", "'__subclasses__' reaches into Python internals and is"),
        ("{{ x.mro() }}", "'mro' reaches into Python internals and is"),
        ("{{ x | attr('__class__') }}", "'__class__' reaches into Python internals and is"),
        (
            "{{ self._TemplateReference__context }}",
            "'_TemplateReference__context' reaches into Python internals and is",
        ),
    ],
)
def test_unsafe_attributes_are_refused_before_running(source: str, reason: str) -> None:
    """A template naming Python internals is refused at compile time and never executes."""
    # given a template that would first call a probe, then reach for internals
    probe = Probe()
    template = sms("{{ probe.touch() }}\n" + source, template_id="promo-black-friday")
    # when it is rendered
    with pytest.raises(UnsafeTemplate) as caught:
        render(template, {"probe": probe, "x": 1})
    # then it names the template, the line and the reason, and nothing ran
    assert caught.value.code == "template_unsafe"
    assert caught.value.message == (
        f"template 'promo-black-friday' body, line 2: {reason} not allowed in a template"
    )
    assert caught.value.data == {"template": "promo-black-friday", "line": 2}
    assert isinstance(caught.value, TemplateError)
    assert isinstance(caught.value, InvalidInput)
    assert probe.calls == []


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{% set k = '__cla' ~ 'ss__' %}{{ ''[k] }}",
            "attribute '__class__' of 'str' values is not available in templates",
        ),
        (
            "{{ '{0.__class__}'.format(1) }}",
            "attribute '__class__' of 'int' values is not available in templates",
        ),
        (
            "{{ contact.tags.append('hacked') }}",
            "attribute 'append' of 'list' values is not available in templates",
        ),
        ("{{ 'x' * 1000000 }}", "repeating a value 1000000 times is too large"),
        ("{{ 2 ** 1000 }}", "exponent 1000 is larger than 100"),
    ],
)
def test_unsafe_access_at_run_time_raises(source: str, message: str) -> None:
    """What the static check cannot see, the sandbox stops at run time with the same error."""
    # given a template that builds its way to internals, mutates the contact or blows up
    contact = {"tags": ["vip"]}
    # when it is rendered
    with pytest.raises(UnsafeTemplate) as caught:
        render(sms(source, template_id="t9"), {"contact": contact})
    # then it is refused with the reason and the contact is untouched
    assert caught.value.message == f"template 't9' body, line 1: {message}"
    assert contact == {"tags": ["vip"]}


def test_syntax_error_names_the_line() -> None:
    """A syntax error is a TemplateError naming the template, the part and the line."""
    # given a template whose third line never closes its expression
    template = Template(
        id="cart-reminder", channel="email", subject="Oi", body="<p>Oi</p>\n<p>\n{{ name </p>"
    )
    # when it is rendered
    with pytest.raises(TemplateError) as caught:
        render(template, {"name": "Ana"})
    # then the error points at line 3 of the body
    assert type(caught.value) is TemplateError
    assert caught.value.code == "template_invalid"
    assert caught.value.field == "body"
    assert caught.value.data == {"template": "cart-reminder", "line": 3}
    assert caught.value.message.startswith("template 'cart-reminder' body, line 3: ")


def test_include_is_refused() -> None:
    """A message template stands alone: include/import/extends are refused."""
    # given a template that includes another
    # when it is rendered
    with pytest.raises(TemplateError) as caught:
        render(sms("{% include 'footer' %}"), {})
    # then it is refused as invalid
    assert caught.value.message == (
        "template 'welcome' body, line 1: a message template stands alone;"
        " extends, include and import are not available"
    )


# -- lint, templates, cache ------------------------------------------------------------


def test_lint_lists_the_contacts_that_fall_back() -> None:
    """lint maps each variable to the ids of the contacts that would fall back on it."""
    # given an email and three contacts, two of them without a usable first name
    template = Template(
        id="welcome",
        channel="email",
        subject="{{ contact.traits.first_name | fallback('Oi') }}, bem-vindo",
        body="<p>{{ contact.traits.first_name | fallback('cliente') }}, {{ contact.traits.city }}"
        " {{ order.total | money }}</p>",
    )
    contacts = [
        {"id": "c1", "traits": {"first_name": "Ana", "city": "Recife"}},
        {"id": "c2", "traits": {"first_name": ""}},
        {"id": "c3", "traits": {"city": "Natal"}},
    ]
    # when it is linted with a sample order
    report = lint(template, contacts, variables={"order": {"total": "10"}})
    # then each variable lists exactly the contacts that miss it
    assert report == {"contact.traits.first_name": ["c2", "c3"], "contact.traits.city": ["c2"]}


def test_template_checks_its_channel() -> None:
    """A template for an unknown channel, or an SMS with a subject, is refused up front."""
    # given / when / then
    with pytest.raises(InvalidInput) as unknown:
        Template(id="x", channel="fax", body="oi")
    with pytest.raises(InvalidInput) as subject:
        Template(id="x", channel="sms", body="oi", subject="assunto")
    assert (unknown.value.field, subject.value.field) == ("channel", "subject")


def test_a_template_compiles_once_per_source() -> None:
    """Rendering the same template again reuses the compiled code; an edit recompiles."""
    # given a template rendered once
    template = sms("Oi {{ n }}", template_id="cache-probe")
    render(template, {"n": 1})
    before = templates_module._compile.cache_info()
    # when it is rendered again, then edited and rendered
    render(template, {"n": 2})
    render(sms("Olá {{ n }}", template_id="cache-probe"), {"n": 3})
    after = templates_module._compile.cache_info()
    # then the second render hit the cache and the edit was compiled
    assert (after.hits - before.hits, after.misses - before.misses) == (1, 1)
