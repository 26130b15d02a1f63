"""Parts that could not start (the hub file's ``notices``, written by ``kagiban demo`` when its
print server fails): the status page says which part, why, and which stations run without it,
in Japanese first and in English; with none, no box."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from hub.config import HubConfig, load
from tests.support.web_app import login, write_config

WHY = "cupsd exited with 1: Missing value for Printcap on line 9 of <cups-files.conf>"
STATIONS = [{"id": "printer-1", "site": "ward-a", "kind": "printer", "name": "Printer 1F"}]


@pytest.fixture
def notices():
    return [{"part": "print_server", "detail": WHY, "stations": ["printer-1"]}]


@pytest.fixture
def cfg(tmp_path, notices):
    return load(write_config(tmp_path / "hub", stations=STATIONS, notices=notices))


def test_the_status_page_shows_a_part_that_could_not_start(client, users):
    login(client, users["supervisor"])
    page = client.get("/").get_data(as_text=True)
    box = page[page.index('id="notices"'):page.index("</section>", page.index('id="notices"'))]
    assert 'role="alert"' in page[page.index('id="notices"') - 60:page.index('id="notices"') + 60]
    assert "起動できなかった部分" in box and "印刷サーバー (cupsd)を起動できませんでした。" in box
    assert "Printer 1F" in box
    # cupsd's own words, escaped as text.
    assert "Missing value for Printcap on line 9 of &lt;cups-files.conf&gt;" in box
    # Above the alerts: the first thing on the page.
    assert page.index('id="notices"') < page.index('id="open-alerts"')


def test_in_english_too(client, users):
    login(client, users["auditor"])  # this user reads English
    page = client.get("/").get_data(as_text=True)
    assert "Parts that could not start" in page and "The print server (cupsd) could not start." in page
    assert "These stations run without it, with less function:" in page


@pytest.mark.parametrize("notices", [[]])
def test_without_notices_there_is_no_box(client, users):
    login(client, users["supervisor"])
    page = client.get("/").get_data(as_text=True)
    assert 'id="open-alerts"' in page
    assert 'id="notices"' not in page and "起動できなかった部分" not in page


def test_a_notice_is_typed(tmp_path):
    with pytest.raises(ValidationError, match="part"):
        HubConfig.model_validate({"notices": [{"part": "toaster", "detail": "x"}]})
    with pytest.raises(ValidationError, match="extra"):
        HubConfig.model_validate({"notices": [{"part": "print_server", "colour": "red"}]})
