"""`jornada predict train` on the real Olist sample: the evaluation is reported and computed right.

Olist has few repeat buyers (52 of 8,016 people order twice or more), so a 30-day
holdout holds a handful of positives at best: the test checks that the figures
are reported and correct against an independent pandas count, not that they are
good. SQLite only; the import runs once for the module through the CLI.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from jornada.audience import train_predictions
from jornada.audience.predict import ContactPrediction, PredictionModel
from jornada.db import Database
from jornada.workspaces import get_workspace_by_name
from tests.audience.test_predictions import mann_whitney_auc
from tests.test_cli import jornada

AS_OF = datetime(2018, 9, 1, tzinfo=UTC)  # the sample's orders thin out after August 2018
NOT_COUNTED = {"canceled", "unavailable"}


@pytest.fixture(scope="module")
def olist(
    olist_sample: Path, sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Database]]:
    path = tmp_path_factory.mktemp("olist-predict") / "olist.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    assert jornada(url, "workspace", "create", "olist").returncode == 0
    imported = jornada(url, "import", "olist", str(olist_sample), "--workspace", "olist")
    assert imported.returncode == 0, imported.stderr
    database = Database(url)
    yield url, database
    database.dispose()


def utc(local: pd.Series) -> pd.Series:
    """São Paulo wall-clock times in UTC, read as Python's zoneinfo does (``fold=0``): an
    ambiguous hour is the earlier one (daylight time), a skipped one keeps the offset before."""
    parsed = pd.to_datetime(local)
    return parsed.dt.tz_localize(
        "America/Sao_Paulo",
        ambiguous=np.ones(len(parsed), dtype=bool),
        nonexistent=pd.Timedelta(hours=1),
    ).dt.tz_convert("UTC")


def first_seen(url: str) -> pd.Series:
    """Each person's (userId's) first event of any kind, read from the event log.

    Not always their first purchase: Olist has shipping and review dates before some
    purchase dates, and the import keeps them as they are.
    """
    import sqlite3

    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        events = pd.read_sql_query(
            "SELECT user_id, MIN(timestamp) AS first FROM events WHERE user_id IS NOT NULL "
            "GROUP BY user_id",
            conn,
        )
    return pd.to_datetime(events.set_index("user_id")["first"]).dt.tz_localize("UTC")


def expected_holdout(url: str, sample: Path, cutoff: datetime, days: int) -> tuple[int, int]:
    """People first seen before ``cutoff``, and how many of them placed a counted order within
    ``days`` after it (orders from the CSVs)."""
    seen = first_seen(url)
    known = set(seen[seen < pd.Timestamp(cutoff)].index)
    customers = pd.read_csv(sample / "olist_customers_dataset.csv")
    orders = pd.read_csv(sample / "olist_orders_dataset.csv").merge(customers, on="customer_id")
    orders["at"] = utc(orders["order_purchase_timestamp"])
    counted = orders[~orders["order_status"].isin(NOT_COUNTED)]
    window = counted[
        (counted["at"] >= pd.Timestamp(cutoff))
        & (counted["at"] < pd.Timestamp(cutoff + timedelta(days=days)))
    ]
    return len(known), len(set(window["customer_unique_id"]) & known)


@pytest.mark.olist
def test_predict_train_on_olist_reports_an_honest_holdout(
    olist: tuple[str, Database], olist_sample: Path
) -> None:
    """AUC, Brier and calibration are printed and stored, and match an independent recount."""
    url, database = olist
    # when
    trained = jornada(url, "predict", "train", "--workspace", "olist", "--as-of", AS_OF.isoformat())
    # then: the report
    assert trained.returncode == 0, trained.stderr
    out = trained.stderr
    for expected in ("Time-based holdout", "ROC AUC", "Brier score", "Calibration", "model v1"):
        assert expected in out, out
    with database.read() as session:
        workspace = get_workspace_by_name(session, "olist")
        model = session.scalar(select(PredictionModel).where(PredictionModel.version == 1))
        stored = session.scalar(
            select(func.count())
            .select_from(ContactPrediction)
            .where(ContactPrediction.workspace_id == workspace.id)
        )
        # the same run through the engine: training is deterministic
        again = train_predictions(session, workspace.id, now=AS_OF, as_of=AS_OF)
    assert model is not None
    ev = model.evaluation
    print(  # the figures, for the record of a run (pytest -s)
        f"\nOlist holdout: {ev['holdout']}; AUC {ev['roc_auc']} CI {ev['roc_auc_ci95']}; "
        f"recency AUC {ev['recency_auc']}; Brier {ev['brier']} vs {ev['base_rate_brier']}; "
        f"next order {ev['next_order']}"
    )
    # the holdout's population and positives, recounted from the CSVs
    contacts, positives = expected_holdout(url, olist_sample, AS_OF - timedelta(days=30), 30)
    assert ev["holdout"]["contacts"] == contacts
    assert ev["holdout"]["positives"] == positives
    assert positives > 0  # a handful: the AUC is reported with a warning about it
    assert any("mostly noise" in note for note in ev["notes"])
    assert "mostly noise" in out
    # the figures, recomputed from the holdout's own predictions
    y, p = again.holdout.y, again.holdout_probability
    assert ev["roc_auc"] == pytest.approx(mann_whitney_auc(y, p), abs=1e-9)
    assert ev["roc_auc"] == pytest.approx(again.evaluation["roc_auc"], abs=1e-12)
    assert ev["brier"] == pytest.approx(float(np.mean((p - y) ** 2)), abs=1e-12)
    assert f"{ev['roc_auc']:.3f}" in out
    assert sum(b["count"] for b in ev["calibration"]) == contacts
    assert sum(b["positives"] for b in ev["calibration"]) == positives
    # everyone known at the end of the data is scored
    assert stored == ev["final"]["scored_contacts"] == int((first_seen(url) < AS_OF).sum())


@pytest.mark.olist
def test_predict_train_on_olist_says_when_the_holdout_cannot_be_measured(
    olist: tuple[str, Database],
) -> None:
    """By default the data ends in October 2018, after Olist's orders dry up: no AUC, and a note."""
    url, _ = olist
    trained = jornada(url, "predict", "train", "--workspace", "olist")
    assert trained.returncode == 0, trained.stderr
    assert "AUC is undefined" in trained.stderr
    assert "--as-of an earlier time" in trained.stderr
