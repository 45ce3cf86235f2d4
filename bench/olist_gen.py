"""A synthetic store history in Olist's exact CSV layout, for import benchmarks at any size.

The real Olist sample here has 8,135 orders and the full orders table could
not be obtained, so a 100k-order import is measured on this look-alike: same
file names, headers and value formats (``2017-07-09 21:57:05`` local times,
zip prefixes with leading zeros, ``58.90`` money), and roughly Olist's shape:
~97% delivered, ~3% repeat buyers, boleto on ~19% of orders, vouchers and
split payments, 1-3 items, reviews on ~99% of orders (some multi-line), dates
2016-09 to 2018-10. The same seed writes the same bytes.

Rows are written as they are made, so memory stays flat whatever the size.

    python bench/olist_gen.py DIR --orders 100000 --seed 7 [--gzip]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import random
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
START = datetime(2016, 9, 4, tzinfo=SAO_PAULO)
SPAN_SECONDS = int((datetime(2018, 10, 17, tzinfo=SAO_PAULO) - START).total_seconds())

HEADERS = {
    "olist_customers_dataset": (
        "customer_id,customer_unique_id,customer_zip_code_prefix,customer_city,customer_state"
    ),
    "olist_orders_dataset": (
        "order_id,customer_id,order_status,order_purchase_timestamp,order_approved_at,"
        "order_delivered_carrier_date,order_delivered_customer_date,order_estimated_delivery_date"
    ),
    "olist_order_items_dataset": (
        "order_id,order_item_id,product_id,seller_id,shipping_limit_date,price,freight_value"
    ),
    "olist_order_payments_dataset": (
        "order_id,payment_sequential,payment_type,payment_installments,payment_value"
    ),
    "olist_order_reviews_dataset": (
        "review_id,order_id,review_score,review_comment_title,review_comment_message,"
        "review_creation_date,review_answer_timestamp"
    ),
    "olist_products_dataset": (
        "product_id,product_category_name,product_name_lenght,product_description_lenght,"
        "product_photos_qty,product_weight_g,product_length_cm,product_height_cm,product_width_cm"
    ),
    "olist_sellers_dataset": "seller_id,seller_zip_code_prefix,seller_city,seller_state",
    "product_category_name_translation": ("product_category_name,product_category_name_english"),
}

# Olist's own category vocabulary (a subset), most frequent first
CATEGORIES = (
    ("cama_mesa_banho", "bed_bath_table"),
    ("beleza_saude", "health_beauty"),
    ("esporte_lazer", "sports_leisure"),
    ("moveis_decoracao", "furniture_decor"),
    ("informatica_acessorios", "computers_accessories"),
    ("utilidades_domesticas", "housewares"),
    ("relogios_presentes", "watches_gifts"),
    ("telefonia", "telephony"),
    ("ferramentas_jardim", "garden_tools"),
    ("automotivo", "auto"),
    ("brinquedos", "toys"),
    ("cool_stuff", "cool_stuff"),
    ("perfumaria", "perfumery"),
    ("bebes", "baby"),
    ("eletronicos", "electronics"),
    ("papelaria", "stationery"),
    ("fashion_bolsas_e_acessorios", "fashion_bags_accessories"),
    ("pet_shop", "pet_shop"),
    ("moveis_escritorio", "office_furniture"),
    ("consoles_games", "consoles_games"),
)
CATEGORY_WEIGHTS = [20 - i for i in range(len(CATEGORIES))]

# (city, state, first zip prefix, last zip prefix, weight): São Paulo state leads, as in Olist
PLACES = (
    ("sao paulo", "SP", 1000, 5999, 16),
    ("rio de janeiro", "RJ", 20000, 23799, 7),
    ("belo horizonte", "MG", 30000, 31999, 3),
    ("brasilia", "DF", 70000, 72799, 2),
    ("curitiba", "PR", 80000, 82999, 2),
    ("campinas", "SP", 13000, 13139, 2),
    ("porto alegre", "RS", 90000, 91999, 2),
    ("salvador", "BA", 40000, 42499, 2),
    ("guarulhos", "SP", 7000, 7399, 1),
    ("sao bernardo do campo", "SP", 9600, 9899, 1),
    ("niteroi", "RJ", 24000, 24399, 1),
    ("santo andre", "SP", 9000, 9299, 1),
    ("osasco", "SP", 6000, 6299, 1),
    ("goiania", "GO", 74000, 74899, 1),
    ("recife", "PE", 50000, 52999, 1),
    ("fortaleza", "CE", 60000, 61599, 1),
    ("florianopolis", "SC", 88000, 88099, 1),
    ("manaus", "AM", 69000, 69099, 1),
)
PLACE_WEIGHTS = [p[4] for p in PLACES]

# order_status shares of Olist's full orders table
STATUSES = ("delivered", "shipped", "canceled", "unavailable", "invoiced", "processing", "created")
STATUS_WEIGHTS = (9702, 111, 63, 61, 31, 30, 2)

# Brazilians shop in the evening more than at dawn
HOURS = (2, 1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 7, 7, 8, 8, 8, 7, 7, 8, 9, 9, 8, 5)


SCORES = (5, 4, 3, 2, 1)
SCORE_WEIGHTS = (58, 19, 8, 3, 12)
TITLES = ("Recomendo", "Muito bom", "Ótimo produto", "Não recebi", "Péssimo", "Bom")
COMMENTS = (
    "Recebi bem antes do prazo estipulado.",
    "Produto muito bom, recomendo!",
    "Não chegou meu produto",
    "Entrega rápida, produto de qualidade, vendedor atencioso.",
    "Veio errado, solicitei a troca e até agora nada",
    "Gostei muito.\nChegou antes do prazo e bem embalado",
    'O produto é "original" mas a caixa veio amassada',
)
REPEAT_SHARE = 0.03  # customer_unique_ids that buy again under a new customer_id
RECENT_PEOPLE = 20_000  # repeat buyers are drawn from the people seen most recently


def _open(path: Path, gzip_output: bool) -> IO[str]:
    if gzip_output:
        return gzip.open(
            path.with_name(path.name + ".gz"), "wt", encoding="utf-8", newline="", compresslevel=6
        )
    return path.open("w", encoding="utf-8", newline="")


def _stamp(moment: datetime) -> str:
    """Olist's format: local wall time, no offset."""
    return moment.isoformat(" ")[:19]


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _id(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def generate(directory: Path, orders: int, seed: int = 7, gzip_output: bool = False) -> None:
    """Write ``orders`` orders with their people, items, payments and reviews into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    with ExitStack() as stack:
        out: dict[str, Any] = {}
        for name, header in HEADERS.items():
            handle = stack.enter_context(_open(directory / f"{name}.csv", gzip_output))
            handle.write(header + "\n")
            out[name] = csv.writer(handle, lineterminator="\n")
        out["product_category_name_translation"].writerows(CATEGORIES)
        sellers = _write_sellers(out["olist_sellers_dataset"], rng, max(10, orders // 32))
        products = _write_products(
            out["olist_products_dataset"], rng, max(30, orders // 3), sellers
        )
        for row in _orders(rng, orders, products):
            kind, values = row
            out[kind].writerow(values)


def _write_sellers(writer: Any, rng: random.Random, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        city, state, low, high, _weight = rng.choices(PLACES, PLACE_WEIGHTS)[0]
        seller_id = _id(rng)
        ids.append(seller_id)
        writer.writerow((seller_id, f"{rng.randint(low, high):05d}", city, state))
    return ids


def _write_products(
    writer: Any, rng: random.Random, count: int, sellers: list[str]
) -> list[tuple[str, str, int]]:
    """Products as (product_id, seller_id, price in cents); Olist prices centre near R$ 75."""
    products = []
    for _ in range(count):
        product_id = _id(rng)
        # Olist leaves ~2% of products without a category
        category = "" if rng.random() < 0.02 else rng.choices(CATEGORIES, CATEGORY_WEIGHTS)[0][0]
        cents = max(85, round(rng.lognormvariate(4.3, 0.9) * 100 / 10) * 10)
        products.append((product_id, rng.choice(sellers), cents))
        writer.writerow(
            (
                product_id,
                category,
                rng.randint(20, 64),
                rng.randint(100, 2000),
                rng.randint(1, 6),
                rng.randint(100, 15000),
                rng.randint(16, 80),
                rng.randint(2, 60),
                rng.randint(11, 60),
            )
        )
    return products


def _payments(rng: random.Random, total: int) -> list[tuple[str, int, int]]:
    """(payment_type, installments, cents) rows whose sum is ``total``, mixed as in Olist."""
    roll = rng.random()
    if roll < 0.19:
        return [("boleto", 1, total)]
    if roll < 0.205:
        return [("debit_card", 1, total)]
    if roll < 0.23 and total > 200:  # vouchers first, the card pays the rest
        rows: list[tuple[str, int, int]] = []
        left = total
        for _ in range(rng.randint(1, 3)):
            part = rng.randint(1, left // 3)
            rows.append(("voucher", 1, part))
            left -= part
        rows.append(("credit_card", rng.randint(1, 6), left))
        return rows
    if roll < 0.255:
        return [("voucher", 1, total)]
    if roll < 0.25503:
        return [("not_defined", 1, total)]
    installments = rng.choices((1, 2, 3, 4, 5, 6, 8, 10), (50, 12, 10, 7, 5, 5, 4, 7))[0]
    return [("credit_card", installments, total)]


def _orders(
    rng: random.Random, count: int, products: list[tuple[str, str, int]]
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """(file, row) for every row of every order, one order at a time."""
    people: list[tuple[str, str, str, str]] = []
    previous_review = ""
    for n in range(count):
        if people and rng.random() < REPEAT_SHARE:
            person = rng.choice(people)
        else:
            city, state, low, high, _weight = rng.choices(PLACES, PLACE_WEIGHTS)[0]
            person = (_id(rng), f"{rng.randint(low, high):05d}", city, state)
            if len(people) < RECENT_PEOPLE:
                people.append(person)
            else:
                people[n % RECENT_PEOPLE] = person
        order_id, customer_id = _id(rng), _id(rng)
        yield "olist_customers_dataset", (customer_id, *person)

        status = rng.choices(STATUSES, STATUS_WEIGHTS)[0]
        # volume grows over the two years, as Olist's did
        purchased = START + timedelta(seconds=int(SPAN_SECONDS * rng.random() ** 0.5))
        purchased = purchased.replace(hour=rng.choices(range(24), HOURS)[0])

        lines: list[tuple[str, str, int, int]] = []
        if status != "unavailable":  # Olist's unavailable orders have no items
            for _ in range(rng.choices((1, 2, 3), (88, 9, 3))[0]):
                if lines and rng.random() < 0.5:
                    product_id, seller_id, price, _f = lines[-1]  # more units of the same product
                else:
                    product_id, seller_id, price = rng.choice(products)
                lines.append((product_id, seller_id, price, rng.randint(700, 4000)))
        total = sum(p + f for _a, _b, p, f in lines) or rng.randint(1500, 30000)
        payments = _payments(rng, total)
        boleto = payments[0][0] == "boleto"

        approved = carrier = delivered = None
        if status != "created" and not (status == "canceled" and rng.random() < 0.2):
            wait = rng.randint(3600, 3 * 86400) if boleto else rng.randint(60, 7200)
            approved = purchased + timedelta(seconds=wait)
        if approved is not None and status in ("delivered", "shipped"):
            carrier = approved + timedelta(seconds=rng.randint(6 * 3600, 6 * 86400))
        if carrier is not None and status == "delivered" and rng.random() < 0.998:
            delivered = carrier + timedelta(seconds=rng.randint(86400, 25 * 86400))
        estimated = (purchased + timedelta(days=rng.randint(10, 45))).replace(
            hour=0, minute=0, second=0
        )
        yield (
            "olist_orders_dataset",
            (
                order_id,
                customer_id,
                status,
                _stamp(purchased),
                _stamp(approved) if approved else "",
                _stamp(carrier) if carrier else "",
                _stamp(delivered) if delivered else "",
                _stamp(estimated),
            ),
        )
        limit = _stamp((approved or purchased) + timedelta(days=6))
        for number, (product_id, seller_id, price, freight) in enumerate(lines, 1):
            yield (
                "olist_order_items_dataset",
                (
                    order_id,
                    number,
                    product_id,
                    seller_id,
                    limit,
                    _money(price),
                    _money(freight),
                ),
            )
        for sequential, (kind, installments, cents) in enumerate(payments, 1):
            yield (
                "olist_order_payments_dataset",
                (
                    order_id,
                    sequential,
                    kind,
                    installments,
                    _money(cents),
                ),
            )

        if rng.random() < 0.992:
            for k in range(2 if rng.random() < 0.005 else 1):
                # a few review ids are reused for the next order, as in Olist (never twice in one)
                reuse = k == 0 and previous_review and rng.random() < 0.008
                review_id = previous_review if reuse else _id(rng)
                previous_review = review_id
                happy = delivered is not None
                score = rng.choices(SCORES, SCORE_WEIGHTS if happy else (10, 5, 10, 10, 65))[0]
                base = delivered or estimated
                created = (base + timedelta(days=1)).replace(hour=0, minute=0, second=0)
                answered = created + timedelta(seconds=rng.randint(3600, 5 * 86400))
                yield (
                    "olist_order_reviews_dataset",
                    (
                        review_id,
                        order_id,
                        score,
                        rng.choice(TITLES) if rng.random() < 0.12 else "",
                        rng.choice(COMMENTS) if rng.random() < 0.41 else "",
                        _stamp(created),
                        _stamp(answered),
                    ),
                )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("directory", type=Path)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--gzip", action="store_true", help="write name.csv.gz instead of name.csv")
    args = parser.parse_args()
    started = time.perf_counter()
    generate(args.directory, args.orders, seed=args.seed, gzip_output=args.gzip)
    print(
        f"wrote {args.orders:,} orders to {args.directory} in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
