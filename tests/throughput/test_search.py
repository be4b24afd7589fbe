"""Catalog search: PostgreSQL full-text search ranked (names before summaries before cards), typo-tolerant on
names through trigrams, indexed; the substring search on SQLite; never matching text only a signed-in caller may
see."""

from __future__ import annotations

import pytest
from django.db import connection
from rest_framework.test import APIClient

from hub.accounts.services import api_token_create
from hub.catalog.models import VersionState

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]
postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL full-text search")


def found(client: APIClient, query: str, **params: str) -> list[str]:
    response = client.get("/api/v1/adapters", {"search": query, **params})
    assert response.status_code == 200, response.content
    return [r["full_name"] for r in response.json()["results"]]


@pytest.fixture
def catalog(make_user, make_version):
    alice, bob = make_user("alice"), make_user("bob")
    make_version(alice, "quokka-helper", summary="Writes queries", body="Trained on questions about databases.")
    make_version(bob, "poet", summary="Rhymes", body="Sometimes writes about a quokka in verse.")
    make_version(bob, "chef", summary="Recipes", body="Cooking only.")
    return alice, bob


def test_words_anywhere_find_the_adapter(catalog):
    anonymous = APIClient()
    assert sorted(found(anonymous, "quokka")) == ["alice/quokka-helper", "bob/poet"]
    assert found(anonymous, "cooking") == ["bob/chef"]
    assert found(anonymous, "nothing-like-this") == []


def test_a_card_only_its_owner_may_see_is_not_searched_for_others(catalog, make_version):
    alice, _ = catalog
    make_version(alice, "quokka-helper", state=VersionState.PENDING_REVIEW, body="A secret zeppelin roadmap.")
    assert found(APIClient(), "zeppelin") == []
    owner = APIClient(headers={"Authorization": f"Bearer {api_token_create(user=alice, name='r').raw}"})
    assert found(owner, "zeppelin") == ["alice/quokka-helper"]


@postgresql_only
def test_relevance_ranks_names_above_cards(catalog):
    assert found(APIClient(), "quokka", ordering="relevance") == ["alice/quokka-helper", "bob/poet"]
    assert found(APIClient(), "quokka", ordering="name") == ["bob/poet", "alice/quokka-helper"]


@postgresql_only
def test_a_typo_in_a_name_still_finds_it(catalog):
    assert found(APIClient(), "quoka") == ["alice/quokka-helper"]
    assert found(APIClient(), "helpr") == ["alice/quokka-helper"]


@postgresql_only
def test_search_is_indexed():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE indexname IN "
                       "('catalog_version_card_fts', 'catalog_repository_name_trgm')")
        indexes = dict(cursor.fetchall())
    assert "gin_trgm_ops" in indexes["catalog_repository_name_trgm"]
    assert "to_tsvector('english'" in indexes["catalog_version_card_fts"]


@postgresql_only
def test_relevance_ranks_a_bounded_set_the_most_downloaded_and_every_name_match(catalog, make_user, make_version,
                                                                               monkeypatch):
    from hub.catalog import selectors
    from hub.catalog.models import Repository

    carol = make_user("carol")
    for name, downloads in (("tutor", 100), ("coach", 50), ("lyricist", 10)):
        make_version(carol, name, summary="Poems", body="Mentions a quokka once.")
        Repository.objects.filter(name=name).update(downloads=downloads)
    monkeypatch.setattr(selectors, "RANKED_CANDIDATES", 2)
    # quokka-helper has no downloads, but its name matches; bob/poet's card is outside the two most downloaded
    assert found(APIClient(), "quokka", ordering="relevance")[0] == "alice/quokka-helper"
    assert sorted(found(APIClient(), "quokka", ordering="relevance")) == [
        "alice/quokka-helper", "carol/coach", "carol/tutor"]
    assert len(found(APIClient(), "quokka", ordering="downloads")) == 5  # other orderings list every match


@postgresql_only
def test_the_browse_page_lists_a_search_best_match_first(catalog, client):
    page = client.get("/adapters/", {"search": "quokka"}).content.decode()
    assert '<strong aria-current="true">Best match</strong>' in page
    assert page.index(">alice/quokka-helper</a>") < page.index(">bob/poet</a>")  # the name above the card
    newest = client.get("/adapters/", {"search": "quokka", "ordering": "newest"}).content.decode()
    assert '<strong aria-current="true">Newest</strong>' in newest
    assert 'name="ordering" value="newest"' in newest  # a chosen sort is kept by the next search
