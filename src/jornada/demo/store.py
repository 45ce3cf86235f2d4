"""A deterministic synthetic Brazilian online store: the demo workspace's history.

:func:`demo_messages` is a pure generator of Segment HTTP Tracking API messages
(plain dicts, exactly what a client would POST in ``/v1/batch``) for a store
called *Loja Demo*: ~60 products in 7 categories, ``contacts`` identified
people from a dozen states, and the anonymous visitors who never sign up.

What the history holds, so that segments, flows and the contact timeline have
something to show:

- web sessions that start anonymous (page views, ``Product Viewed``), then a
  ``Signed Up`` or ``Form Submitted`` and an ``identify`` that links the
  ``anonymousId`` to the ``userId``; some visitors stay anonymous forever;
- carts (``Product Added``, some ``Product Removed``) and checkouts
  (``Checkout Started`` with a ``checkout_url``), about a quarter abandoned;
- orders paid by credit card (~55%), PIX (~25%) or boleto (~20%), with
  ``Pix Issued``/``Pix Paid`` and ``Boleto Issued`` (due three days after the
  purchase) then ``Boleto Paid``; a third of boletos are never paid: most of
  those ``Boleto Expired``, and a few are still open, due after ``now``;
- ``Order Shipped`` and ``Order Delivered``, ``Survey Answered`` (CSAT, NPS),
  repeat buyers, customers gone quiet for two to five months, a few
  ``Order Cancelled``;
- ~8% B2B buyers with a company and a CNPJ.

The same ``(now, seed, contacts)`` always gives the same messages: all the
randomness comes from one ``random.Random(seed)``, drawn in a fixed order.
"""

from __future__ import annotations

import random
import unicodedata
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import accumulate
from typing import Any, Final
from urllib.parse import quote_plus

from jornada.events import canonical as ev

BASE_URL: Final = "https://loja-demo.jornada.dev"
STORE_NAME: Final = "Loja Demo Jornada"
CURRENCY: Final = "BRL"
HISTORY_DAYS: Final = 180
BOLETO_DAYS: Final = 3

MINUTE: Final = 60
HOUR: Final = 3600
DAY: Final = 86400

BRASILIA: Final = timezone(timedelta(hours=-3))
AMAZONAS: Final = timezone(timedelta(hours=-4))

PAYMENT_METHODS: Final = ("credit_card", "pix", "boleto")
PAYMENT_WEIGHTS: Final = (55, 25, 20)


# --------------------------------------------------------------------------- catalogue


@dataclass(frozen=True, slots=True)
class Product:
    """One item of the catalogue; ``price`` in centavos."""

    product_id: str
    name: str
    category: str
    price: int
    slug: str

    @property
    def url(self) -> str:
        return f"{BASE_URL}/produto/{self.slug}"

    @property
    def path(self) -> str:
        return f"/produto/{self.slug}"

    @property
    def image_url(self) -> str:
        return f"{BASE_URL}/img/produtos/{self.slug}.jpg"


def slugify(text: str, sep: str = "-") -> str:
    """Lower-case ASCII words of ``text`` joined by ``sep`` (accents dropped: "Ração" → "racao")."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = "".join(c if c.isalnum() else " " for c in ascii_text.lower()).split()
    return sep.join(words)


_CATALOGUE: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "Eletrônicos": (
        ("Fone de Ouvido Bluetooth Onda Pro", "189.90"),
        ("Smartwatch Pulso Fit 2", "449.00"),
        ("Caixa de Som Portátil Batuque", "279.90"),
        ("Carregador Turbo USB-C 30W", "89.90"),
        ("Smartphone Aurora X 128GB", "1899.00"),
        ("Notebook Lúmen 14 8GB SSD 256GB", "2499.00"),
        ("Tablet Infantil 8 Polegadas", "749.00"),
        ("Mouse Sem Fio Silencioso", "59.90"),
        ("Teclado Mecânico Compacto", "329.90"),
    ),
    "Casa e Cozinha": (
        ("Air Fryer Crocante 4L", "429.90"),
        ("Cafeteira Expresso Manhã", "599.00"),
        ("Jogo de Panelas Antiaderente 5 Peças", "389.90"),
        ("Liquidificador Turbo 900W", "179.90"),
        ("Garrafa Térmica Inox 1L", "99.90"),
        ("Jogo de Cama Casal Algodão 200 Fios", "239.90"),
        ("Toalha de Banho Felpuda", "49.90"),
        ("Kit Potes Herméticos 10 Peças", "79.90"),
        ("Aspirador Robô Faxina", "1299.00"),
    ),
    "Moda": (
        ("Camiseta Básica Algodão Pima", "59.90"),
        ("Calça Jeans Reta", "169.90"),
        ("Vestido Midi Floral", "199.90"),
        ("Tênis Casual Couro", "289.90"),
        ("Jaqueta Corta-Vento", "249.90"),
        ("Bolsa Transversal Couro", "219.90"),
        ("Chinelo Praia Tropical", "39.90"),
        ("Óculos de Sol Polarizado", "149.90"),
        ("Relógio Analógico Clássico", "349.00"),
    ),
    "Beleza e Perfumaria": (
        ("Perfume Floral Ipê 100ml", "259.90"),
        ("Kit Skincare Vitamina C", "139.90"),
        ("Protetor Solar FPS 50 200ml", "69.90"),
        ("Secador de Cabelo Íon 2000W", "229.90"),
        ("Prancha Alisadora Cerâmica", "189.90"),
        ("Shampoo Açaí e Cupuaçu 300ml", "34.90"),
        ("Paleta de Sombras Pôr do Sol", "89.90"),
        ("Barbeador Elétrico 3 Lâminas", "199.90"),
    ),
    "Esporte e Lazer": (
        ("Tênis de Corrida Passada Leve", "399.90"),
        ("Bicicleta Aro 29 21 Marchas", "1599.00"),
        ("Tapete de Yoga Antiderrapante", "89.90"),
        ("Kit Halteres 10kg", "159.90"),
        ("Bola de Futebol de Campo Oficial", "129.90"),
        ("Garrafa Squeeze 750ml", "29.90"),
        ("Barraca de Camping 4 Pessoas", "459.90"),
        ("Mochila de Trilha 40L", "279.00"),
        ("Patinete Dobrável Adulto", "549.00"),
    ),
    "Brinquedos e Bebês": (
        ("Blocos de Montar 500 Peças", "149.90"),
        ("Boneca Bebê Reborn", "329.90"),
        ("Carrinho de Bebê Passeio", "899.00"),
        ("Quebra-Cabeça 1000 Peças Paisagens", "69.90"),
        ("Jogo de Tabuleiro Banco Brasileiro", "119.90"),
        ("Pelúcia Capivara 40cm", "79.90"),
        ("Cadeirinha Auto 0 a 25kg", "699.00"),
        ("Kit Massinha Criativa", "39.90"),
    ),
    "Pet Shop": (
        ("Ração Premium Cães Adultos 15kg", "249.90"),
        ("Arranhador Torre para Gatos", "189.90"),
        ("Cama Pet Redonda M", "119.90"),
        ("Coleira Peitoral Ajustável", "49.90"),
        ("Areia Higiênica Sílica 1,8kg", "44.90"),
        ("Comedouro Automático Wi-Fi", "379.00"),
        ("Brinquedo Mordedor Resistente", "29.90"),
        ("Caixa de Transporte Pet N3", "159.90"),
    ),
}


def _cents(text: str) -> int:
    reais, _, centavos = text.partition(".")
    return int(reais) * 100 + int(centavos.ljust(2, "0"))


def money(cents: int) -> str:
    """Centavos as a decimal string: ``18990`` → ``"189.90"``."""
    return f"{cents // 100}.{cents % 100:02d}"


PRODUCTS: Final[tuple[Product, ...]] = tuple(
    Product(f"SKU-{1001 + i}", name, category, _cents(price), slugify(name))
    for i, (category, name, price) in enumerate(
        (category, name, price) for category, items in _CATALOGUE.items() for name, price in items
    )
)
CATEGORIES: Final[tuple[str, ...]] = tuple(_CATALOGUE)
_BY_CATEGORY: Final[dict[str, tuple[Product, ...]]] = {
    c: tuple(p for p in PRODUCTS if p.category == c) for c in CATEGORIES
}


def _popularity(products: Sequence[Product]) -> list[float]:
    """Cumulative weights: cheaper products sell more (weight ∝ 1/√price)."""
    return list(accumulate(1.0 / (p.price**0.5) for p in products))


_CUM_ALL: Final = _popularity(PRODUCTS)
_CUM_BY_CATEGORY: Final = {c: _popularity(ps) for c, ps in _BY_CATEGORY.items()}

# --------------------------------------------------------------------------- people

_FIRST_NAMES: Final = (
    "Maria", "Ana", "Francisca", "Antônia", "Adriana", "Juliana", "Márcia", "Fernanda",
    "Patrícia", "Aline", "Letícia", "Beatriz", "Camila", "Larissa", "Gabriela", "Luíza",
    "Júlia", "Mariana", "Bianca", "Vitória", "Isabela", "Lúcia", "Débora", "Cláudia",
    "Sônia", "Tânia", "Natália", "Priscila", "Raíssa", "Yasmin", "Maria Eduarda",
    "Ana Clara", "Lívia", "Helena", "Cecília", "Valéria", "Rosângela", "Simone", "Thaís",
    "Jéssica", "Conceição", "Iara", "José", "João", "Antônio", "Francisco", "Carlos",
    "Paulo", "Pedro", "Lucas", "Luiz", "Marcos", "Luís", "Gabriel", "Rafael", "Daniel",
    "Marcelo", "Bruno", "Eduardo", "Felipe", "Raimundo", "Rodrigo", "Matheus", "Thiago",
    "Vinícius", "Caio", "Otávio", "Álvaro", "Sérgio", "Fábio", "Márcio", "Gustavo",
    "Leonardo", "Henrique", "Enzo", "Davi", "Heitor", "Arthur", "João Pedro",
    "Luiz Fernando", "Cauã", "Ícaro", "Benedito", "Joaquim",
)  # fmt: skip

_LAST_NAMES: Final = (
    "Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira",
    "Lima", "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes",
    "Soares", "Fernandes", "Vieira", "Barbosa", "Rocha", "Dias", "Nascimento", "Andrade",
    "Moreira", "Nunes", "Marques", "Machado", "Mendes", "Freitas", "Cardoso", "Ramos",
    "Gonçalves", "Santana", "Teixeira", "Araújo", "Conceição", "Magalhães", "Falcão",
    "Brandão", "Guimarães", "Simões", "Romão", "Damião", "Sá", "Brito", "Cavalcanti",
    "Figueiredo", "Sampaio", "Mourão", "Assunção", "Bezerra", "Xavier", "Queiroz",
)  # fmt: skip

_PROVIDERS: Final = ("gmail.com", "hotmail.com", "outlook.com", "yahoo.com.br", "uol.com.br")
_CUM_PROVIDERS: Final = list(accumulate((55, 18, 12, 8, 7)))

#: (city, UF, DDD, weight)
_CITIES: Final = (
    ("São Paulo", "SP", 11, 30.0), ("Campinas", "SP", 19, 6.0), ("Santos", "SP", 13, 3.0),
    ("Ribeirão Preto", "SP", 16, 3.0), ("São José dos Campos", "SP", 12, 3.0),
    ("Rio de Janeiro", "RJ", 21, 14.0), ("Niterói", "RJ", 21, 3.0), ("Petrópolis", "RJ", 24, 1.5),
    ("Belo Horizonte", "MG", 31, 8.0), ("Uberlândia", "MG", 34, 2.5),
    ("Juiz de Fora", "MG", 32, 2.0),
    ("Porto Alegre", "RS", 51, 5.0), ("Caxias do Sul", "RS", 54, 1.5),
    ("Curitiba", "PR", 41, 6.0), ("Londrina", "PR", 43, 2.0), ("Maringá", "PR", 44, 1.5),
    ("Salvador", "BA", 71, 5.0), ("Feira de Santana", "BA", 75, 1.5),
    ("Recife", "PE", 81, 4.0), ("Olinda", "PE", 81, 1.0), ("Caruaru", "PE", 81, 1.0),
    ("Fortaleza", "CE", 85, 4.0), ("Juazeiro do Norte", "CE", 88, 1.0),
    ("Manaus", "AM", 92, 3.0),
    ("Brasília", "DF", 61, 5.0),
    ("Florianópolis", "SC", 48, 3.0), ("Joinville", "SC", 47, 2.0), ("Blumenau", "SC", 47, 1.5),
    ("Goiânia", "GO", 62, 4.0), ("Anápolis", "GO", 62, 1.0),
)  # fmt: skip
_CUM_CITIES: Final = list(accumulate(c[3] for c in _CITIES))

_COMPANY_KINDS: Final = (
    "Papelaria", "Mercadinho", "Clínica", "Escritório Contábil", "Pet Center", "Academia",
    "Restaurante", "Escola", "Padaria", "Salão de Beleza", "Oficina", "Pousada",
)  # fmt: skip
_COMPANY_NAMES: Final = (
    "Aurora", "Bom Preço", "Vida Plena", "Horizonte", "Amigo Fiel", "Corpo em Movimento",
    "Sabor da Terra", "Pequeno Saber", "Pão Quente", "Estrela do Norte", "São Jorge",
    "Ipê Amarelo", "Maré Alta", "Serra Azul", "Girassol", "Boa Vista",
)  # fmt: skip
_COMPANY_SUFFIXES: Final = ("Ltda", "ME", "EPP", "Ltda")

#: How likely a session starts at each local hour (evenings busiest).
_CUM_HOURS: Final = list(
    accumulate((1, .5, .3, .2, .2, .3, 1, 2, 3, 4, 5, 5, 6, 5, 5, 5, 5, 6, 7, 9, 10, 10, 8, 4))
)  # fmt: skip

_CARRIERS: Final = ("Correios", "Correios", "Jadlog", "Loggi", "Total Express")
_REFERRERS: Final = (
    "https://www.google.com/",
    "https://www.instagram.com/",
    "https://www.facebook.com/",
    "https://www.tiktok.com/",
)
_COMMENTS_GOOD: Final = (
    "Entrega super rápida, recomendo!",
    "Produto excelente, igual ao anúncio.",
    "Chegou antes do prazo, muito bem embalado.",
    "Atendimento nota 10.",
    "",
)
_COMMENTS_MEH: Final = (
    "Bom produto, mas a entrega atrasou um pouco.",
    "A embalagem poderia ser melhor.",
    "Cumpriu o que prometeu.",
    "",
)
_COMMENTS_BAD: Final = (
    "Produto chegou com defeito.",
    "Demorou demais para chegar.",
    "A caixa veio amassada e faltou o manual.",
    "Atendimento demorado, não gostei.",
)


def cnpj_check_digits(base12: str) -> str:
    """The two check digits of a CNPJ whose first 12 digits are ``base12``."""
    digits = [int(c) for c in base12]
    for weights in ((5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2), (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)):
        rest = sum(w * d for w, d in zip(weights, digits, strict=True)) % 11
        digits.append(0 if rest < 2 else 11 - rest)
    return f"{digits[-2]}{digits[-1]}"


def format_cnpj(digits14: str) -> str:
    """``12345678000195`` → ``12.345.678/0001-95``."""
    d = digits14
    return f"{d[:2]}.{d[2:5]}.{d[5:8]}/{d[8:12]}-{d[12:]}"


@dataclass(slots=True)
class _Person:
    user_id: str
    traits: dict[str, Any]
    tz: timezone
    b2b: bool
    buyer: bool
    orders: int
    inactive: bool
    start: int  # first visit (epoch seconds)
    end: int  # last possible activity
    favourite: str  # category
    anonymous_id: str | None  # the browser they first came with, if they came anonymous
    open_boleto: bool = False
    devices: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- generator


class _Store:
    def __init__(self, now: datetime, seed: int, contacts: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.contacts = contacts
        self.now = int(now.timestamp())
        self.begin = self.now - HISTORY_DAYS * DAY
        self.out: list[tuple[int, int, dict[str, Any]]] = []
        self.carts = 0
        self.orders = 0
        self.emails: set[str] = set()
        self.phones: set[str] = set()

    # ------------------------------------------------------------------ emitting

    def _emit(self, at: int, body: dict[str, Any]) -> None:
        if at <= self.now:
            self.out.append((at, len(self.out), body))

    def track(
        self, at: int, who: dict[str, str], tz: timezone | None, event: str, props: dict[str, Any]
    ) -> None:
        self._emit(
            at,
            {"type": "track", **who, "event": event, "timestamp": _ts(at, tz), "properties": props},
        )

    def page(
        self,
        at: int,
        who: dict[str, str],
        tz: timezone,
        name: str,
        path: str,
        title: str,
        referrer: str | None = None,
    ) -> None:
        path_only, _, query = path.partition("?")
        props: dict[str, Any] = {"url": BASE_URL + path, "path": path_only, "title": title}
        if query:
            props["search"] = f"?{query}"
        if referrer:
            props["referrer"] = referrer
        self._emit(
            at,
            {"type": "page", **who, "name": name, "timestamp": _ts(at, tz), "properties": props},
        )

    def identify(self, at: int, who: dict[str, str], tz: timezone, traits: dict[str, Any]) -> None:
        self._emit(at, {"type": "identify", **who, "timestamp": _ts(at, tz), "traits": traits})

    # ------------------------------------------------------------------ drawing

    def new_uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def moment(self, lo: int, hi: int, tz: timezone) -> int:
        """A time in ``[lo, hi]``, at an hour people shop (local evenings busiest)."""
        rng = self.rng
        if hi <= lo:
            return lo
        t = rng.randint(lo, hi)
        offset = int(tz.utcoffset(None).total_seconds())
        midnight = (t + offset) // DAY * DAY - offset
        hour = rng.choices(range(24), cum_weights=_CUM_HOURS)[0]
        candidate = midnight + hour * HOUR + rng.randrange(HOUR)
        return candidate if lo <= candidate <= hi else t

    def product(self, category: str | None = None) -> Product:
        if category is None:
            return self.rng.choices(PRODUCTS, cum_weights=_CUM_ALL)[0]
        return self.rng.choices(_BY_CATEGORY[category], cum_weights=_CUM_BY_CATEGORY[category])[0]

    # ------------------------------------------------------------------ people

    def person(self, n: int) -> _Person:
        rng = self.rng
        first = rng.choice(_FIRST_NAMES)
        last = rng.choice(_LAST_NAMES)
        if rng.random() < 0.4:
            other = rng.choice(_LAST_NAMES)
            if other != last:
                last = f"{last} {other}"
        city, uf, ddd, _ = rng.choices(_CITIES, cum_weights=_CUM_CITIES)[0]
        b2b = rng.random() < 0.08
        traits: dict[str, Any] = {
            "email": self._email(first, last),
            "phone": self._phone(ddd),
            "first_name": first,
            "last_name": last,
            "name": f"{first} {last}",
            "city": city,
            "state": uf,
            "consent": {
                "email_marketing": rng.random() < 0.72,
                "whatsapp_marketing": rng.random() < 0.55,
                "sms_marketing": rng.random() < 0.25,
                "push_marketing": rng.random() < 0.30,
            },
        }
        if b2b:
            kind = rng.choice(_COMPANY_KINDS)
            traits["company"] = (
                f"{kind} {rng.choice(_COMPANY_NAMES)} {rng.choice(_COMPANY_SUFFIXES)}"
            )
            base = f"{rng.randrange(10**8):08d}0001"
            traits["company_tax_id"] = format_cnpj(base + cnpj_check_digits(base))
            traits["lead_type"] = "b2b"
        tz = AMAZONAS if uf == "AM" else BRASILIA
        buyer = rng.random() < (0.65 if b2b else 0.45)
        orders = (rng.randint(2, 6) if rng.random() < 0.15 else 1) if buyer else 0
        inactive = rng.random() < 0.2
        if inactive:
            end = self.now - rng.randint(60 * DAY, 150 * DAY)
            start = self.moment(self.begin, end - DAY, tz)
        else:
            end = self.now - HOUR
            latest = self.now - (20 * DAY if orders > 1 else 3 * HOUR)
            start = self.moment(self.begin, latest, tz)
        return _Person(
            user_id=f"cliente-{n + 1:05d}",
            traits=traits,
            tz=tz,
            b2b=b2b,
            buyer=buyer,
            orders=orders,
            inactive=inactive,
            start=start,
            end=end,
            favourite=rng.choice(CATEGORIES),
            anonymous_id=self.new_uuid() if rng.random() < 0.85 else None,
        )

    def _email(self, first: str, last: str) -> str:
        rng = self.rng
        given = slugify(first.split()[0], "")
        family = slugify(last.split()[-1], "")
        while True:
            number = rng.randint(1960, 2006) if rng.random() < 0.4 else rng.randint(1, 999)
            local = rng.choice(
                (
                    f"{given}.{family}{number}",
                    f"{given}{family}{number}",
                    f"{given}_{family}{number}",
                    f"{given[0]}{family}{number}",
                    f"{given}{number}",
                )
            )
            email = f"{local}@{rng.choices(_PROVIDERS, cum_weights=_CUM_PROVIDERS)[0]}"
            if email not in self.emails:
                self.emails.add(email)
                return email

    def _phone(self, ddd: int) -> str:
        rng = self.rng
        while True:
            phone = f"+55{ddd}9{rng.randint(6, 9)}{rng.randrange(10**7):07d}"
            if phone not in self.phones:
                self.phones.add(phone)
                return phone

    # ------------------------------------------------------------------ sessions

    def browse(
        self,
        at: int,
        who: dict[str, str],
        tz: timezone,
        *,
        views: int,
        favourite: str | None,
    ) -> tuple[int, list[Product]]:
        """A visit: a landing page, then product pages with ``Product Viewed``."""
        rng = self.rng
        seen: list[Product] = []
        referrer = rng.choice(_REFERRERS) if rng.random() < 0.5 else None
        category = favourite if favourite and rng.random() < 0.6 else rng.choice(CATEGORIES)
        from_ad = rng.random() < 0.25  # an ad straight to a product page
        if not from_ad:
            if rng.random() < 0.6:
                self.page(at, who, tz, "Início", "/", STORE_NAME, referrer)
            else:
                self._category_page(at, who, tz, category, referrer)
        for i in range(views):
            landing = from_ad and i == 0
            if not landing:
                at += rng.randint(15, 150)
                roll = rng.random()
                if roll < 0.08:
                    product = self.product(category)
                    words = slugify(product.name, " ").split()
                    query = " ".join(words[:2]) if len(words[0]) < 4 else words[0]
                    path = f"/busca?q={quote_plus(query)}"
                    self.page(at, who, tz, "Busca", path, f"Busca: {query} | {STORE_NAME}")
                    self.track(at + 1, who, tz, ev.PRODUCTS_SEARCHED, {"query": query})
                    at += rng.randint(10, 60)
                elif roll < 0.18:
                    if rng.random() < 0.3:
                        category = rng.choice(CATEGORIES)
                    self._category_page(at, who, tz, category, None)
                    at += rng.randint(10, 60)
            product = self.product(category if rng.random() < 0.8 else None)
            self.page(
                at,
                who,
                tz,
                "Produto",
                product.path,
                f"{product.name} | {STORE_NAME}",
                referrer if landing else None,
            )
            self.track(at + 1, who, tz, ev.PRODUCT_VIEWED, _viewed(product))
            at += 1
            seen.append(product)
        return at, seen

    def _category_page(
        self, at: int, who: dict[str, str], tz: timezone, category: str, referrer: str | None
    ) -> None:
        slug = slugify(category)
        self.page(
            at, who, tz, "Categoria", f"/categoria/{slug}", f"{category} | {STORE_NAME}", referrer
        )
        self.track(at + 1, who, tz, ev.PRODUCT_LIST_VIEWED, {"list_id": slug, "category": category})

    def cart(
        self, at: int, who: dict[str, str], tz: timezone, seen: list[Product], *, b2b: bool
    ) -> tuple[int, str, list[tuple[Product, int]]]:
        """``Product Added`` for some products seen, now and then a ``Product Removed``."""
        rng = self.rng
        self.carts += 1
        cart_id = f"carrinho-{self.seed}-{self.carts:06d}"
        distinct = list(dict.fromkeys(seen))
        chosen = rng.sample(distinct, k=min(len(distinct), rng.choices((1, 2, 3), (60, 28, 12))[0]))
        items: list[tuple[Product, int]] = []
        for product in chosen:
            at += rng.randint(10, 90)
            quantity = rng.randint(2, 10) if b2b else (2 if rng.random() < 0.1 else 1)
            self.track(at, who, tz, ev.PRODUCT_ADDED, _line(product, quantity, cart_id))
            items.append((product, quantity))
        if rng.random() < 0.2:
            if len(items) > 1:
                product, quantity = items.pop(rng.randrange(len(items)))
            else:  # put a second one in, then think better of it
                product, quantity = self.product(chosen[0].category), 1
                if product == chosen[0]:
                    product = PRODUCTS[(PRODUCTS.index(product) + 1) % len(PRODUCTS)]
                at += rng.randint(30, 120)
                self.page(at, who, tz, "Produto", product.path, f"{product.name} | {STORE_NAME}")
                self.track(at + 1, who, tz, ev.PRODUCT_VIEWED, _viewed(product))
                at += rng.randint(10, 60)
                self.track(at, who, tz, ev.PRODUCT_ADDED, _line(product, quantity, cart_id))
            at += rng.randint(20, 120)
            self.track(at, who, tz, ev.PRODUCT_REMOVED, _line(product, quantity, cart_id))
        return at, cart_id, items

    def checkout(
        self,
        at: int,
        who: dict[str, str],
        tz: timezone,
        cart_id: str,
        items: list[tuple[Product, int]],
    ) -> tuple[int, str, int]:
        """Cart and checkout pages, ``Checkout Started``; returns the time, order id and total."""
        rng = self.rng
        self.orders += 1
        order_id = f"PED-{self.seed}-{self.orders:06d}"
        at += rng.randint(10, 60)
        self.page(at, who, tz, "Carrinho", "/carrinho", f"Carrinho | {STORE_NAME}")
        at += rng.randint(15, 90)
        checkout_path = f"/checkout/{cart_id}"
        self.page(at, who, tz, "Checkout", checkout_path, f"Finalizar compra | {STORE_NAME}")
        subtotal = sum(p.price * q for p, q in items)
        shipping = 0 if subtotal >= 29900 else rng.choice((1490, 1990, 2490, 2990))
        total = subtotal + shipping
        self.track(
            at + 1,
            who,
            tz,
            ev.CHECKOUT_STARTED,
            {
                "cart_id": cart_id,
                "order_id": order_id,
                "value": money(total),
                "shipping": money(shipping),
                "currency": CURRENCY,
                "checkout_url": BASE_URL + checkout_path,
                "products": [
                    {
                        "product_id": p.product_id,
                        "name": p.name,
                        "price": money(p.price),
                        "quantity": q,
                    }
                    for p, q in items
                ],
            },
        )
        return at + 1, order_id, total

    # ------------------------------------------------------------------ orders

    def order(
        self,
        at: int,
        person: _Person,
        who: dict[str, str],
        order_id: str,
        items: list[tuple[Product, int]],
        total: int,
        *,
        force_open_boleto: bool = False,
    ) -> None:
        """``Order Completed`` and what follows it: payment, shipping, delivery, surveys."""
        rng = self.rng
        tz = person.tz
        server = {"userId": person.user_id}
        method = (
            "boleto"
            if force_open_boleto
            else rng.choices(PAYMENT_METHODS, weights=PAYMENT_WEIGHTS)[0]
        )
        installments = 1
        if method == "credit_card" and total >= 20000:
            installments = rng.choice(range(1, min(10, total // 5000) + 1))
        at += rng.randint(60, 400)
        self.track(
            at,
            who,
            tz,
            ev.ORDER_COMPLETED,
            {
                "order_id": order_id,
                "total": money(total),
                "currency": CURRENCY,
                "products": [
                    {
                        "product_id": p.product_id,
                        "name": p.name,
                        "category": p.category,
                        "price": money(p.price),
                        "quantity": q,
                    }
                    for p, q in items
                ],
                "payments": [{"type": method, "installments": installments, "value": money(total)}],
                "payment_method": method,
            },
        )
        amount = {"order_id": order_id, "amount": money(total)}
        paid_at: int | None = None
        if method == "credit_card":
            if rng.random() < 0.02:
                self._cancel(
                    at + rng.randint(HOUR, 20 * HOUR), server, order_id, total, "cliente_desistiu"
                )
                return
            paid_at = at
        elif method == "pix":
            self.track(at + 3, server, None, ev.PIX_ISSUED, dict(amount))
            if rng.random() < 0.05:
                self._cancel(
                    at + rng.randint(35 * MINUTE, 2 * HOUR), server, order_id, total, "pix_expirado"
                )
                return
            paid_at = at + rng.randint(40, 25 * MINUTE)
            self.track(paid_at, server, None, ev.PIX_PAID, dict(amount))
        else:
            due = datetime.fromtimestamp(at, tz).date() + timedelta(days=BOLETO_DAYS)
            self.track(
                at + 4,
                server,
                None,
                ev.BOLETO_ISSUED,
                {**amount, "due_date": due.isoformat(), "url": f"{BASE_URL}/boleto/{order_id}.pdf"},
            )
            if force_open_boleto:
                return
            if rng.random() < 2 / 3:
                paid_at = at + rng.randint(HOUR, BOLETO_DAYS * DAY)
                self.track(paid_at, server, None, ev.BOLETO_PAID, dict(amount))
            else:
                expired_at = _local_instant(due + timedelta(days=1), tz) + rng.randint(
                    6 * HOUR, 10 * HOUR
                )
                if rng.random() < 0.8:
                    self.track(expired_at, server, None, ev.BOLETO_EXPIRED, dict(amount))
                    if rng.random() < 0.3:
                        self._cancel(
                            expired_at + rng.randint(MINUTE, HOUR),
                            server,
                            order_id,
                            total,
                            "boleto_vencido",
                        )
                return
        self._fulfil(paid_at, person, server, order_id)

    def _cancel(self, at: int, who: dict[str, str], order_id: str, total: int, reason: str) -> None:
        props = {
            "order_id": order_id,
            "total": money(total),
            "currency": CURRENCY,
            "reason": reason,
        }
        self.track(at, who, None, ev.ORDER_CANCELLED, props)

    def _fulfil(self, paid_at: int, person: _Person, who: dict[str, str], order_id: str) -> None:
        rng = self.rng
        if paid_at > self.now:
            return
        shipped_at = paid_at + rng.randint(DAY, 3 * DAY)
        delivered_at = max(paid_at + rng.randint(3 * DAY, 12 * DAY), shipped_at + 20 * HOUR)
        carrier = rng.choice(_CARRIERS)
        tracking = (
            f"{rng.choice('ABNOQP')}{rng.choice('ABCDEFGHIJKLMNOPQRSTUVWXYZ')}"
            f"{rng.randrange(10**9):09d}BR"
        )
        self.track(
            shipped_at,
            who,
            None,
            ev.ORDER_SHIPPED,
            {"order_id": order_id, "carrier": carrier, "tracking_code": tracking},
        )
        self.track(delivered_at, who, None, ev.ORDER_DELIVERED, {"order_id": order_id})
        if rng.random() < 0.4:
            score = rng.choices((1, 2, 3, 4, 5), (5, 5, 12, 30, 48))[0]
            comments = (
                _COMMENTS_GOOD if score >= 4 else _COMMENTS_MEH if score == 3 else _COMMENTS_BAD
            )
            self._survey(
                delivered_at + rng.randint(2 * HOUR, 4 * DAY),
                person,
                "csat",
                score,
                order_id,
                comments,
            )
        if rng.random() < 0.3:
            score = rng.choices(range(11), (3, 1, 1, 2, 2, 4, 5, 10, 18, 24, 30))[0]
            comments = (
                _COMMENTS_GOOD if score >= 9 else _COMMENTS_MEH if score >= 7 else _COMMENTS_BAD
            )
            self._survey(
                delivered_at + rng.randint(5 * DAY, 20 * DAY),
                person,
                "nps",
                score,
                order_id,
                comments,
            )

    def _survey(
        self,
        at: int,
        person: _Person,
        kind: str,
        score: int,
        order_id: str,
        comments: tuple[str, ...],
    ) -> None:
        comment = self.rng.choice(comments)
        if at <= person.end:  # people gone quiet answer no surveys
            props = {"kind": kind, "score": score, "order_id": order_id, "comment": comment}
            self.track(at, {"userId": person.user_id}, person.tz, ev.SURVEY_ANSWERED, props)

    # ------------------------------------------------------------------ lives

    def live(self, person: _Person) -> None:
        """Everything one identified person does, from the first visit on."""
        rng = self.rng
        tz = person.tz
        uid = person.user_id
        at = person.start
        seen: list[Product] = []
        if person.anonymous_id is not None:
            anon = {"anonymousId": person.anonymous_id}
            if rng.random() < 0.25 and at - self.begin > 2 * HOUR:  # an earlier visit
                earlier = self.moment(max(self.begin, at - 14 * DAY), at - HOUR, tz)
                self.browse(earlier, anon, tz, views=rng.randint(1, 2), favourite=person.favourite)
            at, seen = self.browse(
                at, anon, tz, views=rng.choice((1, 1, 2, 3)), favourite=person.favourite
            )
            who = {"userId": uid, "anonymousId": person.anonymous_id}
            person.devices.append(person.anonymous_id)
        else:
            who = {"userId": uid}
        at += rng.randint(20, 120)
        self.identify(at, who, tz, person.traits)
        self._signed_up(at + 1, who, person)
        signed_up = at + 1

        order_times = self._order_times(person, signed_up)
        same_session = person.orders >= 1 and seen != [] and rng.random() < 0.4
        if same_session:
            order_times[0] = signed_up + 30
        for i, when in enumerate(order_times):
            force = person.open_boleto and i == len(order_times) - 1
            if rng.random() < 0.2 and not (same_session and i == 0):
                abandoned = when - rng.randint(2 * HOUR, 72 * HOUR)
                if abandoned > signed_up:
                    self._shop(abandoned, person, "checkout")
            if same_session and i == 0:
                at, cart_id, items = self.cart(when, who, tz, seen, b2b=person.b2b)
                at, order_id, total = self.checkout(at, who, tz, cart_id, items)
                self.order(at, person, who, order_id, items, total, force_open_boleto=force)
            else:
                self._shop(when, person, "order", force_open_boleto=force)

        for _ in range(rng.choices((0, 1, 2, 3), (55, 28, 12, 5))[0]):
            if person.end - signed_up < 2 * HOUR:
                break
            when = self.moment(signed_up + HOUR, person.end, tz)
            outcome = rng.choices(("browse", "cart", "checkout"), (80, 13, 7))[0]
            self._shop(when, person, outcome)

        if not person.buyer and rng.random() < 0.15 and person.end - signed_up > 2 * HOUR:
            self._shop(self.moment(signed_up + HOUR, person.end, tz), person, "checkout")

        if rng.random() < 0.1 and person.end - signed_up > DAY:  # consent changed later
            consent = dict(person.traits["consent"])
            key = rng.choice(sorted(consent))
            consent[key] = not consent[key]
            when = self.moment(signed_up + DAY, person.end, tz)
            self.identify(when, {"userId": uid}, tz, {**person.traits, "consent": consent})

    def _signed_up(self, at: int, who: dict[str, str], person: _Person) -> None:
        rng = self.rng
        email = person.traits["email"]
        if person.b2b and rng.random() < 0.7:
            form = ("orcamento-b2b", "Orçamento para empresas")
        elif rng.random() < 0.75:
            method = rng.choices(("email", "google", "facebook"), (70, 22, 8))[0]
            self.track(at, who, person.tz, ev.SIGNED_UP, {"method": method, "email": email})
            return
        else:
            form = rng.choice((("newsletter", "Newsletter"), ("contato", "Fale conosco")))
        self.track(
            at,
            who,
            person.tz,
            ev.FORM_SUBMITTED,
            {"form_id": form[0], "form_name": form[1], "email": email},
        )

    def _order_times(self, person: _Person, signed_up: int) -> list[int]:
        rng = self.rng
        lo, hi = signed_up + 10 * MINUTE, person.end - 2 * HOUR
        if person.open_boleto:
            hi = self.now - 36 * HOUR
        times = sorted(self.moment(lo, hi, person.tz) for _ in range(person.orders))
        if person.open_boleto:
            times.append(self.now - rng.randint(2 * HOUR, 20 * HOUR))
        return times

    def _shop(
        self, at: int, person: _Person, outcome: str, *, force_open_boleto: bool = False
    ) -> None:
        """A return visit: browse, and maybe a cart, a checkout, an order."""
        rng = self.rng
        tz = person.tz
        if not person.devices or rng.random() < 0.3:
            person.devices.append(self.new_uuid())
        device = person.devices[-1] if rng.random() < 0.7 else rng.choice(person.devices)
        who = {"userId": person.user_id, "anonymousId": device}
        at, seen = self.browse(
            at, who, tz, views=rng.choice((1, 1, 2, 3)), favourite=person.favourite
        )
        if outcome == "browse":
            return
        at, cart_id, items = self.cart(at, who, tz, seen, b2b=person.b2b)
        if outcome == "cart":
            return
        at, order_id, total = self.checkout(at, who, tz, cart_id, items)
        if outcome == "order":
            self.order(at, person, who, order_id, items, total, force_open_boleto=force_open_boleto)

    def visitor(self) -> None:
        """Someone who browses, maybe fills a cart, and never tells us who they are."""
        rng = self.rng
        tz = AMAZONAS if rng.random() < 0.03 else BRASILIA
        who = {"anonymousId": self.new_uuid()}
        for _ in range(rng.choices((1, 2), (80, 20))[0]):
            at = self.moment(self.begin, self.now - HOUR, tz)
            at, seen = self.browse(at, who, tz, views=rng.choice((1, 1, 2, 3)), favourite=None)
            if rng.random() < 0.1:
                self.cart(at, who, tz, seen, b2b=False)

    def run(self) -> Iterator[dict[str, Any]]:
        people = [self.person(n) for n in range(self.contacts)]
        eligible = [
            p for p in people if not p.inactive and p.start < self.now - 3 * DAY and p.orders <= 1
        ]
        planted = min(len(eligible), max(2, self.contacts // 300))
        for p in self.rng.sample(eligible, planted):
            p.open_boleto = True
            p.buyer = True
        for p in people:
            self.live(p)
        for _ in range(round(self.contacts * 0.25)):
            self.visitor()
        self.out.sort(key=lambda item: (item[0], item[1]))
        for n, (_, _, body) in enumerate(self.out, start=1):
            yield {"type": body["type"], "messageId": f"demo-{self.seed}-{n:06d}", **body}


def _viewed(product: Product) -> dict[str, Any]:
    return {
        "product_id": product.product_id,
        "name": product.name,
        "category": product.category,
        "price": money(product.price),
        "currency": CURRENCY,
        "url": product.url,
        "image_url": product.image_url,
    }


def _line(product: Product, quantity: int, cart_id: str) -> dict[str, Any]:
    return {
        "product_id": product.product_id,
        "name": product.name,
        "price": money(product.price),
        "currency": CURRENCY,
        "quantity": quantity,
        "cart_id": cart_id,
        "url": product.url,
        "image_url": product.image_url,
    }


def _ts(at: int, tz: timezone | None) -> str:
    """ISO 8601 with the local offset (``-03:00``), or UTC as ``Z`` for server-side events."""
    if tz is None:
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return datetime.fromtimestamp(at, tz).isoformat()


def _local_instant(day: date, tz: timezone) -> int:
    """Local midnight of ``day`` in epoch seconds."""
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


def demo_messages(
    now: datetime, *, seed: int = 42, contacts: int = 2000
) -> Iterator[dict[str, Any]]:
    """Segment messages of a synthetic Brazilian store's last 180 days, oldest first.

    Messages are sorted by ``timestamp`` and none is later than ``now``; only
    boleto due dates point past it.

    ``now`` must be timezone-aware. Deterministic: the same ``(now, seed, contacts)``
    gives the same messages, ``messageId`` included (``demo-<seed>-<n>``).
    Exactly ``contacts`` distinct ``userId`` are identified; anonymous visitors
    (about a third as many) come on top.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("demo_messages needs an aware datetime for now")
    if contacts < 0:
        raise ValueError("contacts must be zero or more")
    return _Store(now, seed, contacts).run()
