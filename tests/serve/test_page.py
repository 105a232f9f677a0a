"""The search page in a real headless Chromium (Debian's chromium, driven by Playwright)."""

from __future__ import annotations

import pytest
from browser import chromium_page, needs_chromium
from serving import RunningServer

pytestmark = needs_chromium


@pytest.fixture
def page():
    with chromium_page() as opened:
        yield opened


def test_search_page_shows_ranked_highlighted_results(server: RunningServer, page) -> None:
    page.goto(server.url + "/")
    page.wait_for_selector("#collection option[value=docs]", state="attached")
    options = page.locator("#pipeline option").all_text_contents()
    assert options[0] == "hybrid (default)" and "bm25" in options
    page.fill("#query", "vitamin bones")
    page.click("#go")
    page.wait_for_selector("li.hit")
    titles = page.locator("li.hit .title").all_text_contents()
    assert titles[:2] == ["Bones", "Vitamin D"]
    marked = {text.lower() for text in page.locator("li.hit mark").all_text_contents()}
    assert marked == {"vitamin", "bones", "bone"}  # "bone fractures": the same stem
    status = page.text_content("#status") or ""
    assert "results" in status and "ms" in status and "hybrid" in status
    assert "score" in (page.text_content("li.hit .meta") or "")


def test_search_page_picks_a_retriever_and_escapes_documents(server: RunningServer, page) -> None:
    import httpx
    from serving import API_KEY

    hostile = {"id": "x1", "title": "<img src=x onerror=alert(1)>", "text": "<b>salmon</b> run"}
    httpx.post(
        server.url + "/collections/docs/documents",
        json={"documents": [hostile]},
        headers={"Authorization": f"Bearer {API_KEY}"},
    ).raise_for_status()
    page.goto(server.url + "/")
    page.wait_for_selector("#collection option[value=docs]", state="attached")
    page.select_option("#pipeline", "retriever:bm25")
    page.fill("#query", "salmon")
    page.click("#go")
    page.wait_for_selector("li.hit")
    assert "bm25" in (page.text_content("#status") or "")
    assert page.locator("li.hit img").count() == 0  # shown as text, never as markup
    assert "<img src=x" in page.locator("li.hit .title").all_text_contents()[0]


def test_search_page_shows_server_errors(server: RunningServer, page) -> None:
    page.goto(server.url + "/")
    page.wait_for_selector("#collection option[value=docs]", state="attached")
    page.fill("#query", "vitamin " * 600)  # past the API's query length cap
    page.click("#go")
    page.wait_for_selector("#status.error")
    assert (page.text_content("#status") or "").startswith("error 422")
    assert page.locator("li.hit").count() == 0


def test_a_search_lives_in_the_address_bar_and_the_back_button(server: RunningServer, page) -> None:
    page.goto(server.url + "/?q=salmon&collection=docs&using=retriever:bm25")
    page.wait_for_selector("li.hit")
    assert page.input_value("#query") == "salmon"
    assert page.input_value("#pipeline") == "retriever:bm25"
    assert page.locator("li.hit .title").all_text_contents()[0] == "Fish"
    page.fill("#query", "cats")
    page.click("#go")
    page.wait_for_function("document.querySelector('li.hit .title').textContent === 'Cats'")
    assert "q=cats" in page.url
    page.go_back()
    page.wait_for_function("document.querySelector('li.hit .title').textContent === 'Fish'")
    assert page.input_value("#query") == "salmon"
