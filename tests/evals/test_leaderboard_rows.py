"""The leaderboard page of a long board: the first rows in the board's order, how many there are, a link to all of
them, and the chart over every row; and a run shared by an identical later upload, named by the version it ran on.
Results are recorded through the evals services as a worker records them (made-up figures)."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from hub.evals import views
from tests.catalog.test_page_queries import count
from tests.evals.test_page_queries import evaluated

pytestmark = pytest.mark.django_db

BOARD = "/leaderboards/nomoat/tiny-llama"


def rows_of(html: str) -> list[str]:
    """The names in the board's table, in order."""
    table = html.split('<table id="leaderboard">', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr class="kind-[a-z]+">\s*<td>\d+</td>\s*<td><a href="[^"]+">([^<]+)</a>', table)


def test_a_long_board_shows_its_first_rows_says_how_many_and_links_to_all(make_user, make_version, tiny_base_model,
                                                                          monkeypatch):
    monkeypatch.setattr(views, "BOARD_ROWS_SHOWN", 3)
    for i in range(5):
        evaluated(make_version(make_user(f"owner{i}"), f"a{i}", base_model=tiny_base_model), 1 + i / 10)
    ranked = [row["name"] for row in APIClient().get(f"/api/v1{BOARD}").json()["results"]]
    assert len(ranked) == 6  # the base model and five adapters: the API lists every row

    page = Client().get(BOARD).content.decode()
    assert rows_of(page) == ranked[:3]
    assert "Showing the first 3 of 6 rows" in page and "?rows=all" in page
    assert page.count('r="5"') == 6  # the chart plots every row, not only those listed

    everything = Client().get(f"{BOARD}?rows=all&sort=name").content.decode()
    assert rows_of(everything) == sorted(ranked)
    assert "6 rows." in everything and "Showing the first" not in everything


def test_a_run_shared_by_an_identical_later_upload_names_the_version_it_ran_on(make_user, make_version,
                                                                              tiny_base_model):
    def shared(owner_name: str) -> None:
        owner = make_user(owner_name)
        files = {"README.md": b"---\nlicense: mit\n---\n# same\n", "adapter_model.safetensors": owner_name.encode() * 99}
        evaluated(make_version(owner, "same", base_model=tiny_base_model, files=files), 1.2)
        make_version(owner, "same", base_model=tiny_base_model, files=files)  # v2: the same bytes, not run again

    shared("first")
    api, client = f"/api/v1{BOARD}", Client()
    one = count(client, api)
    row = next(r for r in client.get(api).json()["results"] if r["kind"] == "adapter")
    assert (row["name"], row["run"]["subject"]) == ("first/same v2", "first/same@1")

    shared("second")
    shared("third")
    assert count(client, api) <= one  # the versions the runs ran on load in one query, not one per row
    subjects = {r["name"]: r["run"]["subject"] for r in client.get(api).json()["results"] if r["kind"] == "adapter"}
    assert subjects == {f"{o}/same v2": f"{o}/same@1" for o in ("first", "second", "third")}


def test_a_board_with_no_finished_run_says_so_and_offers_no_empty_filters(tiny_base_model):
    page = Client().get(BOARD).content.decode()
    assert "No finished evaluations for this suite yet" in page
    assert "ranked by" not in page and 'class="filters card"' not in page  # no "ranked by  (higher is better)"
