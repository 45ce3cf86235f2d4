"""Predictions end to end: trained by `jornada predict` (a subprocess), served by a live `jornada serve`."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import httpx
import pytest

from jornada.db import Database
from tests.audience.test_predictions import ids_by_user, ingest, synthetic_history
from tests.conftest import Shop, make_shop
from tests.support.server import LiveServer
from tests.test_cli import jornada


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[LiveServer, Database]]:
    """A live server on each database in turn, and a direct handle on that database."""
    server: LiveServer = request.getfixturevalue(
        "live_server" if request.param == "sqlite" else "live_server_pg"
    )
    database = Database(server.database_url)
    yield server, database
    database.dispose()


def test_predictions_over_http(served: tuple[LiveServer, Database]) -> None:
    """Before training: 404s. After `predict train`: the model's evaluation and each contact's
    prediction; another workspace's key sees neither."""
    # given: the synthetic shop, and a neighbour with history of its own
    server, database = served
    shop: Shop = make_shop(database)
    neighbour = make_shop(database)
    messages, _ = synthetic_history(seed=21)
    ingest(database, shop, messages)
    ingest(database, neighbour, synthetic_history(seed=22)[0])
    ids = ids_by_user(database, shop)
    api = f"{server.url}/api/v1"
    headers = {"Authorization": f"Bearer {shop.keys.secret_key}"}
    before = httpx.get(f"{api}/predictions", headers=headers)
    before_contact = httpx.get(f"{api}/contacts/{ids['periodic-0']}/prediction", headers=headers)
    # when
    trained = jornada(server.database_url, "predict", "train", "--workspace", shop.ref.name)
    shown = jornada(
        server.database_url,
        "predict",
        "show",
        ids["periodic-0"],
        "--workspace",
        shop.ref.name,
        "--json",
    )
    model = httpx.get(f"{api}/predictions", headers=headers)
    regular = httpx.get(f"{api}/contacts/{ids['periodic-0']}/prediction", headers=headers)
    browser = httpx.get(f"{api}/contacts/{ids['browser-0']}/prediction", headers=headers)
    neighbour_headers = {"Authorization": f"Bearer {neighbour.keys.secret_key}"}
    foreign = httpx.get(f"{api}/contacts/{ids['periodic-0']}/prediction", headers=neighbour_headers)
    neighbour_model = httpx.get(f"{api}/predictions", headers=neighbour_headers)
    unauthorised = httpx.get(f"{api}/predictions")
    # then
    assert before.status_code == 404
    assert before.json()["code"] == "not_found"
    assert before_contact.status_code == 404
    assert trained.returncode == 0, trained.stderr
    assert "ROC AUC" in trained.stderr
    assert model.status_code == 200
    body = model.json()
    assert body["version"] == 1
    assert body["horizon_days"] == 30
    assert body["evaluation"]["roc_auc"] > 0.85
    assert body["evaluation"]["holdout"]["positives"] > 20
    assert regular.status_code == 200
    prediction = regular.json()
    assert prediction["contact_id"] == ids["periodic-0"]
    assert prediction["model_version"] == 1
    assert prediction["as_of"] == body["as_of"]
    assert 0 < prediction["probability"] < 1
    assert prediction["expected_next_order_at"] is not None
    assert prediction["next_order_reason"] is None
    assert {c["feature"] for c in prediction["contributions"]} == set(
        body["evaluation"]["features"]
    )
    logit = prediction["base_value"] + sum(c["contribution"] for c in prediction["contributions"])
    assert 1 / (1 + math.exp(-logit)) == pytest.approx(prediction["probability"], abs=1e-4)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == prediction
    assert browser.status_code == 200
    assert browser.json()["expected_next_order_at"] is None
    assert browser.json()["next_order_reason"] == "no orders yet"
    assert foreign.status_code == 404  # a contact of another workspace does not exist here
    assert neighbour_model.status_code == 404  # the neighbour never trained
    assert unauthorised.status_code == 401
