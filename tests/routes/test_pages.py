"""The pages served (api/routes/pages.py): the offline API docs and the demo page."""

import re


def test_docs_are_served_from_this_server(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/api/docs/assets/swagger-ui-bundle.js" in html
    assert not re.search(r"(src|href)=\"https?://", html)  # no CDN: works offline
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
        with client.get(f"/api/docs/assets/{asset}") as response:  # files: close them
            assert response.status_code == 200


def test_demo_page_is_served(client):
    with client.get("/") as page:
        assert page.status_code == 200
        assert "Get token" in page.get_data(as_text=True)
    with client.get("/static/demo.js") as script:
        assert "silently" in script.get_data(as_text=True)
