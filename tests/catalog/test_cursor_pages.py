"""Cursor pages of the adapter list: each row once, in order, while rows are added; NULL scores last; deep pages
without OFFSET; a cursor from elsewhere refused by name."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from hub.catalog.models import Repository

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture
def adapters(make_user, make_version):
    """Twelve adapters: downloads with long ties (half never downloaded), half without a score."""
    owner = make_user("alice")
    names = []
    for i in range(12):
        version = make_version(owner, f"a{i:02d}")
        Repository.objects.filter(pk=version.repository_id).update(downloads=0 if i % 2 else i // 4,
                                                                    score=None if i % 3 == 0 else i / 20)
        names.append(f"alice/a{i:02d}")
    return owner, names


def walk(client: APIClient, url: str, between=None) -> list[str]:
    seen, page_number = [], 0
    while url:
        body = client.get(url).json()
        seen += [r["full_name"] for r in body["results"]]
        url = body["next"]
        page_number += 1
        if between is not None:
            between(page_number)
    return seen


@pytest.mark.parametrize("ordering", ["downloads", "newest", "name", "score"])
def test_every_row_once_while_rows_are_added_inside_the_ties(adapters, make_user, make_version, ordering):
    owner, names = adapters
    newcomer = make_user("bob")

    def add_two(page_number: int) -> None:  # never downloaded: they sort into the longest tie
        for k in range(2):
            make_version(newcomer, f"new-{page_number}-{k}")

    seen = walk(APIClient(), f"/api/v1/adapters?page_size=3&ordering={ordering}", add_two)
    original = [name for name in seen if name.startswith("alice/")]
    assert sorted(original) == names, f"{ordering}: each of alice's adapters exactly once, got {original}"
    assert len(seen) == len(set(seen)), f"{ordering}: a row came twice: {seen}"


def test_pages_follow_the_ordering_with_null_scores_last(adapters):
    _, names = adapters
    by_score = walk(APIClient(), "/api/v1/adapters?page_size=5&ordering=score")
    repos = {f"alice/{r.name}": r for r in Repository.objects.all()}
    scores = [repos[name].score for name in by_score]
    with_score = [s for s in scores if s is not None]
    assert with_score == sorted(with_score, reverse=True) and scores[len(with_score):] == [None] * 4, scores
    by_downloads = walk(APIClient(), "/api/v1/adapters?page_size=5&ordering=downloads")
    keys = [(repos[n].downloads, repos[n].pk) for n in by_downloads]
    assert keys == sorted(keys, reverse=True)


def test_previous_links_give_back_the_same_pages(adapters):
    client = APIClient()
    url, pages = "/api/v1/adapters?page_size=5&ordering=downloads", []
    while url:
        body = client.get(url).json()
        pages.append(([r["full_name"] for r in body["results"]], body["previous"]))
        url = body["next"]
    assert len(pages) == 3
    for (earlier, _), (_, previous) in zip(pages, pages[1:], strict=False):
        assert [r["full_name"] for r in client.get(previous).json()["results"]] == earlier


def test_a_deep_page_seeks_instead_of_skipping_rows(adapters):
    client = APIClient()
    body = client.get("/api/v1/adapters?page_size=2&ordering=downloads").json()
    for _ in range(3):
        body = client.get(body["next"]).json()
    with CaptureQueriesContext(connection) as captured:
        assert client.get(body["next"]).status_code == 200
    [listing] = [q["sql"] for q in captured.captured_queries if "catalog_repository" in q["sql"]]
    assert "OFFSET" not in listing.upper() and "COUNT(" not in listing.upper(), listing


def test_a_cursor_not_made_by_the_list_is_refused_by_name(adapters):
    response = APIClient().get("/api/v1/adapters", {"cursor": "cD0xMjM="})  # p=123: a DRF offset cursor
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert "cursor" in message and "follow the `next` and `previous` links" in message, message
