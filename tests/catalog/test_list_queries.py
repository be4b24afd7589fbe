"""The adapter list's queries at any size: a fixed number per request, no COUNT over the whole catalog (the API
counts nothing, the browse page stops counting at its cap), and on PostgreSQL each way a search matches answered by
an index."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from hub.catalog import selectors, views
from hub.catalog.models import RepoKind, VersionState

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

API = ["/api/v1/adapters", "/api/v1/adapters?tag=sql", "/api/v1/adapters?license=apache-2.0&ordering=downloads",
       "/api/v1/adapters?ordering=score", "/api/v1/adapters?search=adapter", "/api/v1/adapters?search=adaptr",
       "/api/v1/adapters?search=adapter&ordering=relevance"]
PAGES = ["/adapters/", "/adapters/?tag=sql&ordering=downloads", "/adapters/?search=adapter", "/adapters/?page=2"]


def queries(client, path: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, (path, response.content[:300])
    return [q["sql"] for q in captured.captured_queries]


def test_query_counts_stay_fixed_and_nothing_counts_the_whole_list(make_user, make_version, monkeypatch,
                                                                 django_assert_max_num_queries):
    monkeypatch.setattr(views, "COUNT_CAP", 5)  # a small cap and pages, so that a few adapters pass them
    monkeypatch.setattr(views, "PER_PAGE", 2)
    for i in range(3):
        make_version(make_user(f"o{i}"), f"adapter-{i}")
    api, page = APIClient(), Client()
    small = {path: len(queries(api, path)) for path in API} | {path: len(queries(page, path)) for path in PAGES}
    for i in range(3, 40):
        make_version(make_user(f"o{i}"), f"adapter-{i}")
    for path in API:
        with django_assert_max_num_queries(small[path], info=path):
            listing = queries(api, path)
        assert not [q for q in listing if "COUNT(" in q.upper()], (path, listing)
    for path in PAGES:
        with django_assert_max_num_queries(small[path], info=path):
            listing = queries(page, path)
        counts = [q for q in listing if "COUNT(*)" in q.upper() and "catalog_repository" in q]
        assert all("LIMIT 6" in q.upper() for q in counts), (path, counts)


def test_the_page_says_when_it_stopped_counting(make_user, make_version, monkeypatch):
    monkeypatch.setattr(views, "COUNT_CAP", 5)
    monkeypatch.setattr(views, "PER_PAGE", 2)
    for i in range(8):
        make_version(make_user(f"o{i}"), f"adapter-{i}")
    body = Client().get("/adapters/", {"page": "2"}).content.decode()
    assert "5+ adapters" in body and "Counts of the first 5 adapters in this order." in body
    assert "page 2" in body and "page=3" in body and "page=1" in body
    small = Client().get("/adapters/", {"tag": "nothing-has-this"}).content.decode()
    assert "0 adapters" in small and "facet-note" not in small


def test_pages_read_by_key_and_past_the_cap_by_offset_give_the_list_in_order(make_user, make_version, monkeypatch):
    """The first COUNT_CAP + 1 ids of the list are its count, its facets' sample and the rows of the pages they
    cover; deeper pages are an OFFSET in the list's order: either way each adapter shows once, in order, and a card
    shows the newest version its visitor may see."""
    monkeypatch.setattr(views, "COUNT_CAP", 5)
    monkeypatch.setattr(views, "PER_PAGE", 2)
    names = [f"adapter-{letter}" for letter in "hgfedcba"]
    for i, name in enumerate(names):
        make_version(make_user(f"o{i}"), name)
    owner = make_user("later")
    make_version(owner, "adapter-i")
    card = "---\nlicense: mit\ntags: [hidden-tag]\n---\n\n# not public yet\n"
    make_version(owner, "adapter-i", state=VersionState.PENDING_REVIEW, files={"README.md": card.encode()})
    client, shown = Client(), []
    for page in range(1, 6):  # pages 1-2 lie inside the 6 ids found, 3-5 beyond them
        body = client.get("/adapters/", {"ordering": "name", "page": str(page)}).content.decode()
        shown += [name for _, name in sorted((body.index(f"/{name}</a>"), name) for name in [*names, "adapter-i"]
                                             if f"/{name}</a>" in body)]
        if page == 5:
            assert "hidden-tag" not in body and "apache-2.0" in body and ">mit<" not in body, body
    assert shown == sorted([*names, "adapter-i"]), shown
    facets = selectors.facets_of(None, selectors.repository_ids(
        selectors.repositories_visible(None, RepoKind.ADAPTER, selectors.RepositoryFilters(ordering="name")), 5))
    assert facets["license"] == [selectors.Facet("apache-2.0", 5)] and facets["tag"][0] == selectors.Facet("demo", 5)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's search indexes")
def test_each_way_a_search_matches_has_its_index():
    """The plans on 100,000 adapters (bench/catalog_scale.py --explain) use these; a test table is too small for the
    planner to prefer them, so here: they exist, on the very expressions the selectors compile."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'catalog_repository'")
        indexes = dict(cursor.fetchall())
    assert "gin (search_document)" in indexes["catalog_repository_search_gin"]
    for name, column in (("catalog_repository_name_upper_trgm", "name"), ("catalog_repository_summary_upper_trgm",
                                                                          "summary")):
        assert f"upper(({column})::text) gin_trgm_ops" in indexes[name], indexes[name]
    assert "score DESC NULLS LAST, id DESC" in indexes["catalog_repo_score_idx"]
    with connection.cursor() as cursor:  # the versions' listing index, which facets and visibility checks read alone
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'catalog_version_listing_idx'")
        [listing] = cursor.fetchone()
    assert "(repository_id, state) INCLUDE (id, task, license)" in listing, listing
    qs = selectors.repositories_visible(None, RepoKind.ADAPTER, selectors.RepositoryFilters(search="quokka"))
    sql = str(qs.query)
    for column in ("name", "summary"):  # what the upper-case trigram indexes hold
        assert f'UPPER("catalog_repository"."{column}"::text) LIKE' in sql, sql
    assert '"catalog_repository"."search_document" @@' in sql, sql
