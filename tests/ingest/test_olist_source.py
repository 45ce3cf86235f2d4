"""The Olist reader: an export in Olist's CSV layout becomes the Segment messages a shop sends."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import os
from collections import Counter
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from jornada.ingest.sources.olist import RowProblem, count_orders, read_olist

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT.parent / "shared" / "data" / "olist" / "consistent_sample"

CUSTOMERS = """\
customer_id,customer_unique_id,customer_zip_code_prefix,customer_city,customer_state
c1,u1,02983,sao paulo,SP
c2,u2,20231,rio de janeiro,RJ
c3a,u3,35182,timoteo,MG
c3b,u3,35182,timoteo,MG
"""
ORDERS = "\n".join(
    (
        "order_id,customer_id,order_status,order_purchase_timestamp,order_approved_at,order_delivered_carrier_date,order_delivered_customer_date,order_estimated_delivery_date",
        "o1,c1,delivered,2018-02-15 10:15:00,2018-02-16 09:00:00,"
        "2018-02-17 14:00:00,2018-02-21 16:30:00,2018-03-05 00:00:00",
        "o2,c2,canceled,2017-07-09 21:57:05,,,,2017-08-01 00:00:00",
        "o3,c3a,shipped,2018-03-01 08:00:00,2018-03-01 08:10:00,"
        "2018-03-02 09:00:00,,2018-03-20 00:00:00",
        "o4,c3b,delivered,2018-05-02 12:00:00,2018-05-02 12:05:00,"
        "2018-05-03 10:00:00,2018-05-09 15:00:00,2018-05-25 00:00:00",
        "",
    )
)
ITEMS = """\
order_id,order_item_id,product_id,seller_id,shipping_limit_date,price,freight_value
o1,1,p-shampoo,s1,2018-02-21 10:15:00,49.90,8.72
o1,2,p-shampoo,s1,2018-02-21 10:15:00,49.90,8.72
o3,1,p-mouse,s2,2018-03-07 08:10:00,79.9,10.0
o4,1,p-gamer,s2,2018-05-08 12:05:00,50.00,10.50
"""
PAYMENTS = """\
order_id,payment_sequential,payment_type,payment_installments,payment_value
o1,1,boleto,1,117.24
o2,1,boleto,1,35.0
o3,1,credit_card,3,89.9
o4,2,credit_card,1,40.5
o4,1,voucher,1,20.00
"""
REVIEWS = """\
review_id,order_id,review_score,review_comment_title,review_comment_message,review_creation_date,review_answer_timestamp
r1,o1,4,,"Chegou certinho,
recomendo",2018-02-22 00:00:00,2018-02-23 11:02:33
r3,o4,5,Ótimo ,,2018-05-10 00:00:00,
"""
PRODUCTS = """\
product_id,product_category_name,product_name_lenght,product_description_lenght,product_photos_qty,product_weight_g,product_length_cm,product_height_cm,product_width_cm
p-shampoo,beleza_saude,40,287,1,225,16,10,14
p-mouse,informatica_acessorios,44,276,1,100,10,5,6
p-gamer,pc_gamer,30,500,2,900,30,10,20
"""
TRANSLATION = """\
product_category_name,product_category_name_english
beleza_saude,health_beauty
informatica_acessorios,computers_accessories
"""
TABLES = {
    "olist_customers_dataset": CUSTOMERS,
    "olist_orders_dataset": ORDERS,
    "olist_order_items_dataset": ITEMS,
    "olist_order_payments_dataset": PAYMENTS,
    "olist_order_reviews_dataset": REVIEWS,
    "olist_products_dataset": PRODUCTS,
    "product_category_name_translation": TRANSLATION,
}


def write_export(directory: Path, tables: dict[str, str], *, gz: bool = False) -> Path:
    """Write each table as ``name.csv`` (or ``name.csv.gz``) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        if gz:
            with gzip.open(directory / f"{name}.csv.gz", "wt", encoding="utf-8", newline="") as f:
                f.write(text)
        else:
            (directory / f"{name}.csv").write_text(text, encoding="utf-8", newline="")
    return directory


def read_all(directory: Path) -> tuple[list[dict[str, Any]], list[RowProblem]]:
    problems: list[RowProblem] = []
    return list(read_olist(directory, problems)), problems


def of_order(
    messages: list[dict[str, Any]], order_id: str
) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (m["event"], m["timestamp"], m["properties"])
        for m in messages
        if m["type"] == "track" and m["properties"]["order_id"] == order_id
    ]


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("olist_gen", ROOT / "bench" / "olist_gen.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_boleto_order_with_two_units_yields_exact_events_in_time_order(tmp_path: Path) -> None:
    """Identify, then the order's events earliest first, with São Paulo offsets across DST's end."""
    # given: o1 bought in summer time (-02:00) on 2018-02-15, delivered after DST ended (-03:00)
    export = write_export(tmp_path, TABLES)
    # when
    messages, problems = read_all(export)
    # then
    assert problems == []
    assert messages[:7] == [
        {
            "type": "identify",
            "messageId": "olist:identify:u1",
            "userId": "u1",
            "timestamp": "2018-02-15T10:15:00-02:00",
            "traits": {"city": "sao paulo", "state": "SP", "zip_prefix": "02983", "country": "BR"},
        },
        {
            "type": "track",
            "messageId": "olist:o1:completed",
            "userId": "u1",
            "event": "Order Completed",
            "timestamp": "2018-02-15T10:15:00-02:00",
            "properties": {
                "order_id": "o1",
                "total": "117.24",
                "currency": "BRL",
                "products": [
                    {
                        "product_id": "p-shampoo",
                        "quantity": 2,
                        "price": "49.90",
                        "freight": "17.44",
                        "category": "beleza_saude",
                        "category_en": "health_beauty",
                        "seller_id": "s1",
                    }
                ],
                "payments": [
                    {"type": "boleto", "installments": 1, "value": "117.24", "sequential": 1}
                ],
                "payment_method": "boleto",
                "status": "delivered",
            },
        },
        {
            "type": "track",
            "messageId": "olist:o1:boleto-issued:1",
            "userId": "u1",
            "event": "Boleto Issued",
            "timestamp": "2018-02-15T10:15:00-02:00",
            "properties": {
                "order_id": "o1",
                "amount": "117.24",
                "due_date": "2018-02-18",
                "url": None,
            },
        },
        {
            "type": "track",
            "messageId": "olist:o1:boleto-paid:1",
            "userId": "u1",
            "event": "Boleto Paid",
            "timestamp": "2018-02-16T09:00:00-02:00",
            "properties": {"order_id": "o1", "amount": "117.24"},
        },
        {
            "type": "track",
            "messageId": "olist:o1:shipped",
            "userId": "u1",
            "event": "Order Shipped",
            "timestamp": "2018-02-17T14:00:00-02:00",
            "properties": {"order_id": "o1"},
        },
        {
            "type": "track",
            "messageId": "olist:o1:delivered",
            "userId": "u1",
            "event": "Order Delivered",
            "timestamp": "2018-02-21T16:30:00-03:00",
            "properties": {"order_id": "o1"},
        },
        {
            "type": "track",
            "messageId": "olist:review:r1:o1",
            "userId": "u1",
            "event": "Survey Answered",
            "timestamp": "2018-02-23T11:02:33-03:00",
            "properties": {
                "kind": "csat",
                "score": 4,
                "order_id": "o1",
                "review_id": "r1",
                "title": None,
                "comment": "Chegou certinho,\nrecomendo",
            },
        },
    ]


def test_canceled_unapproved_boleto_order_is_cancelled_and_its_boleto_expires(
    tmp_path: Path,
) -> None:
    """Canceled, never approved: cancelled 1 s after purchase, boleto expires at due day's end."""
    # given: o2 canceled, no approval, one boleto of 35.0, no items, no review
    export = write_export(tmp_path, TABLES)
    # when
    messages, _ = read_all(export)
    # then
    assert of_order(messages, "o2") == [
        (
            "Order Completed",
            "2017-07-09T21:57:05-03:00",
            {
                "order_id": "o2",
                "total": "35.00",
                "currency": "BRL",
                "products": [],
                "payments": [
                    {"type": "boleto", "installments": 1, "value": "35.00", "sequential": 1}
                ],
                "payment_method": "boleto",
                "status": "canceled",
            },
        ),
        (
            "Boleto Issued",
            "2017-07-09T21:57:05-03:00",
            {"order_id": "o2", "amount": "35.00", "due_date": "2017-07-12", "url": None},
        ),
        (
            "Order Cancelled",
            "2017-07-09T21:57:06-03:00",
            {"order_id": "o2", "total": "35.00", "reason": "canceled"},
        ),
        ("Boleto Expired", "2017-07-12T23:59:59-03:00", {"order_id": "o2", "amount": "35.00"}),
    ]
    assert [
        m["messageId"] for m in messages if m.get("properties", {}).get("order_id") == "o2"
    ] == [
        "olist:o2:completed",
        "olist:o2:boleto-issued:1",
        "olist:o2:cancelled",
        "olist:o2:boleto-expired:1",
    ]


def test_repeat_buyer_across_two_customer_ids_is_identified_once(tmp_path: Path) -> None:
    """Two customer_ids of one customer_unique_id: one identify, before their first order."""
    # given: c3a and c3b are both u3; o3 is c3a's, o4 is c3b's
    export = write_export(tmp_path, TABLES)
    # when
    messages, _ = read_all(export)
    # then
    identifies = [m for m in messages if m["type"] == "identify"]
    assert [m["userId"] for m in identifies] == ["u1", "u2", "u3"]
    first_o3 = next(i for i, m in enumerate(messages) if m.get("messageId") == "olist:o3:completed")
    assert messages[first_o3 - 1]["messageId"] == "olist:identify:u3"
    assert messages[first_o3 - 1]["timestamp"] == "2018-03-01T08:00:00-03:00"
    completed = {
        m["properties"]["order_id"]: m for m in messages if m.get("event") == "Order Completed"
    }
    assert completed["o3"]["userId"] == completed["o4"]["userId"] == "u3"
    # and: o4's payments in sequence order, its uncategorised-in-English product, its review
    assert completed["o4"]["properties"]["total"] == "60.50"
    assert completed["o4"]["properties"]["payment_method"] == "voucher"
    assert [p["sequential"] for p in completed["o4"]["properties"]["payments"]] == [1, 2]
    assert completed["o4"]["properties"]["products"][0]["category_en"] is None
    assert of_order(messages, "o4")[-1] == (
        "Survey Answered",
        "2018-05-10T00:00:00-03:00",
        {
            "kind": "csat",
            "score": 5,
            "order_id": "o4",
            "review_id": "r3",
            "title": "Ótimo",
            "comment": None,
        },
    )


def test_unreadable_rows_are_reported_with_file_line_and_column_and_the_rest_is_read(
    tmp_path: Path,
) -> None:
    """Unreadable rows are reported by file, physical line and column; the rest still comes out."""
    # given: a bad payment value, a bad score after a two-line comment, unknown customer, bad date
    tables = {
        **TABLES,
        "olist_order_payments_dataset": PAYMENTS + "o3,2,voucher,1,abc\n",
        "olist_order_reviews_dataset": REVIEWS + "r9,o3,9,,,2018-03-10 00:00:00,\n",
        "olist_orders_dataset": ORDERS
        + "o5,c-nobody,delivered,2018-01-01 10:00:00,,,,2018-01-20 00:00:00\n"
        + "o6,c1,delivered,2018-02-30 10:00:00,,,,2018-03-20 00:00:00\n",
    }
    export = write_export(tmp_path, tables)
    # when
    messages, problems = read_all(export)
    # then
    assert problems == [
        RowProblem("olist_order_payments_dataset.csv", 7, "payment_value: 'abc' is not a number"),
        RowProblem("olist_order_reviews_dataset.csv", 5, "review_score: 9 is not 1 to 5"),
        RowProblem(
            "olist_orders_dataset.csv",
            6,
            "customer_id: 'c-nobody' has no readable row in olist_customers_dataset.csv",
        ),
        RowProblem(
            "olist_orders_dataset.csv",
            7,
            "order_purchase_timestamp: '2018-02-30 10:00:00' is not a timestamp"
            " (YYYY-MM-DD HH:MM:SS)",
        ),
    ]
    completed = [m for m in messages if m.get("event") == "Order Completed"]
    assert [m["properties"]["order_id"] for m in completed] == ["o1", "o2", "o3", "o4"]
    assert completed[2]["properties"]["total"] == "89.90"
    assert Counter(m.get("event") for m in messages)["Survey Answered"] == 2


def test_gzipped_tables_read_the_same_as_plain_ones(tmp_path: Path) -> None:
    """``name.csv.gz`` tables give exactly the messages of ``name.csv`` tables."""
    # given
    plain = write_export(tmp_path / "plain", TABLES)
    gzipped = write_export(tmp_path / "gz", TABLES, gz=True)
    # when
    from_plain, plain_problems = read_all(plain)
    from_gzip, gzip_problems = read_all(gzipped)
    # then
    assert sorted(p.name for p in gzipped.iterdir())[0] == "olist_customers_dataset.csv.gz"
    assert from_gzip == from_plain
    assert len(from_gzip) == 19  # 3 identifies, 6 + 4 + 2 + 4 order events
    assert plain_problems == gzip_problems == []
    assert count_orders(gzipped) == count_orders(plain) == 4


def test_missing_orders_table_names_the_directory_and_the_expected_files(tmp_path: Path) -> None:
    """Without an orders table both functions fail at once, naming directory and expected files."""
    # given
    export = write_export(tmp_path, {"olist_customers_dataset": CUSTOMERS})
    # when / then
    with pytest.raises(FileNotFoundError) as raised:
        read_olist(export, [])
    assert str(raised.value) == (
        f"{export} is not a complete Olist export: expected olist_orders_dataset.csv "
        "(or olist_orders_dataset.csv.gz)"
    )
    with pytest.raises(FileNotFoundError, match=r"olist_orders_dataset\.csv"):
        count_orders(export)


def test_optional_tables_may_be_missing(tmp_path: Path) -> None:
    """With only orders and customers, orders come out without products, payments or reviews."""
    # given
    export = write_export(
        tmp_path, {"olist_customers_dataset": CUSTOMERS, "olist_orders_dataset": ORDERS}
    )
    # when
    messages, problems = read_all(export)
    # then
    assert problems == []
    assert Counter(m.get("event", m["type"]) for m in messages) == {
        "identify": 3,
        "Order Completed": 4,
        "Order Cancelled": 1,
        "Order Shipped": 3,
        "Order Delivered": 2,
    }
    first = messages[1]["properties"]
    assert (first["total"], first["products"], first["payments"], first["payment_method"]) == (
        "0.00",
        [],
        [],
        None,
    )


@pytest.mark.olist
def test_real_olist_sample_reads_completely() -> None:
    """The real 8,135-order sample: all orders, one identify per person, totals = payments."""
    # given
    if not SAMPLE.exists():
        message = f"Olist sample not found at {SAMPLE}: the real-data reader test cannot run"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message + " (CI must run it)")
        pytest.skip(message)
    with (SAMPLE / "olist_order_payments_dataset.csv").open(encoding="utf-8", newline="") as f:
        paid = sum((Decimal(row["payment_value"]) for row in csv.DictReader(f)), Decimal(0))
    # when
    messages, problems = read_all(SAMPLE)
    # then
    assert problems == []
    counts = Counter(m.get("event", m["type"]) for m in messages)
    assert counts["Order Completed"] == 8135
    assert counts["identify"] == 8016
    assert counts["Survey Answered"] == 8225
    totals = sum(
        (
            Decimal(m["properties"]["total"])
            for m in messages
            if m.get("event") == "Order Completed"
        ),
        Decimal(0),
    )
    assert totals == paid
    assert len({m["messageId"] for m in messages}) == len(messages)
    assert count_orders(SAMPLE) == 8135


def test_generated_layout_reads_without_problems(tmp_path: Path) -> None:
    """bench/olist_gen.py writes an Olist layout the reader takes whole, with the orders asked."""
    # given
    generator = load_generator()
    generator.generate(tmp_path / "plain", 300, seed=3)
    generator.generate(tmp_path / "gz", 300, seed=3, gzip_output=True)
    # when
    plain, plain_problems = read_all(tmp_path / "plain")
    gzipped, gzip_problems = read_all(tmp_path / "gz")
    # then
    assert plain_problems == gzip_problems == []
    assert Counter(m.get("event") for m in plain)["Order Completed"] == 300
    assert count_orders(tmp_path / "plain") == count_orders(tmp_path / "gz") == 300
    assert gzipped == plain
    assert len({m["messageId"] for m in plain}) == len(plain)
    header = (tmp_path / "plain" / "olist_orders_dataset.csv").read_text(encoding="utf-8")
    assert header.startswith(ORDERS.splitlines()[0] + "\n")


def test_generator_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    """The same seed writes the same bytes, so benchmark runs compare like with like."""
    # given
    generator = load_generator()
    # when
    generator.generate(tmp_path / "a", 50, seed=11)
    generator.generate(tmp_path / "b", 50, seed=11)
    # then
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert len(names) == 8
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
