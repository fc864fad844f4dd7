"""The explorer: the lake's SQLite export (links, search, rejections, refresh) and `synthq view`
in a real browser (Debian's headless Chromium, driven by Selenium)."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request

import pytest

from synthq.tasks.core import records
from synthq.tasks.core.lake import StageResult
from synthq.tasks.publish.explorer import refresh
from tests.publish.explorer_lake import build_lake


def test_export_links_searches_and_keeps_every_rejection(tmp_path):
    lake = build_lake(str(tmp_path / "lake"))
    path, rebuilt = refresh(lake)
    assert rebuilt and path == tmp_path / "lake" / "explorer" / "synthq.db"
    db = sqlite3.connect(path)
    fks = {(r[3], r[2], r[4]) for r in db.execute("SELECT * FROM pragma_foreign_key_list('release_rows')")}
    assert ("document_id", "documents", "id") in fks and ("release", "releases", "key") in fks
    row = db.execute(
        "SELECT d.title, s.prompt FROM release_rows r JOIN documents d ON d.id = r.document_id "
        "JOIN instruction_demonstrations l ON l.instruction_id = r.id JOIN demonstrations m ON m.id = l.demonstration_id "
        "JOIN seeds s ON s.id = m.seed_id WHERE r.release = 'bakery/v1' AND r.id = 'q0' ORDER BY s.id").fetchall()
    assert row == [("Keeping a sourdough starter alive", "How do I revive a sleepy sourdough starter?"),
                   ("Keeping a sourdough starter alive", "What hydration suits a rye loaf?")]
    assert db.execute("SELECT title FROM documents_fts WHERE documents_fts MATCH 'hydration'").fetchall() == [("Rye bread hydration",)]
    assert db.execute("SELECT count(*) FROM release_rows_fts WHERE release_rows_fts MATCH 'feeding'").fetchone() == (1,)
    pair = db.execute(
        "SELECT i.query, c.answer, r.answer, p.chosen FROM pairs p JOIN instructions i ON i.id = p.query_id "
        "JOIN responses c ON c.id = p.chosen_id JOIN responses r ON r.id = p.rejected_id").fetchall()
    assert pair == [(
        "Plan a feeding schedule for my sourdough starter while I travel for ten days.",
        "Feed it once before you leave, then refrigerate.", "Leave it out.",
        '[{"role": "assistant", "content": "Feed it once before you leave, then refrigerate."}]')]
    assert sorted(db.execute("SELECT dataset, stage, reason FROM rejections").fetchall()) == [
        ("curated", "curate", "low_score"), ("curated", "curate", "near_duplicate"), ("documents", "ingest", "too_short")]
    db.close()

    assert refresh(lake) == (path, False)  # nothing changed: the export is reused
    more = records.table([records.rejection("ingest", "not_english", "language de", "doc8", {})], records.REJECTED)
    lake.write_shard("documents", "00001", StageResult(records.table([], records.DOCUMENTS), more), input_id="t", config="t")
    assert refresh(lake) == (path, True)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM rejections WHERE reason = 'not_english'").fetchone() == (1,)


# -- in the browser ----------------------------------------------------------------------

def _chromium() -> tuple[str, str]:
    """Debian's Chromium and its driver, installed with apt when missing and we are root."""
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if all(found):
        return found
    if not shutil.which("apt-get") or os.geteuid() != 0:
        pytest.skip("no Chromium here and no way to install it: as root on Debian/Ubuntu, "
                    "`apt-get install -y chromium chromium-driver` enables this test")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium", "chromium-driver"]
    done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=1200)
    if done.returncode:  # stale package lists on a fresh machine
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=1200)
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if not all(found):
        pytest.skip(f"apt-get could not install Chromium: {done.stderr.strip()[-300:]}")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def explorer(tmp_path):
    """`synthq view` on a test lake, as a user starts it; yields its base URL."""
    build_lake(str(tmp_path / "lake"))
    port = _free_port()
    log = open(tmp_path / "view.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "synthq.flows.cli", "view", "bakery", "--lake", str(tmp_path / "lake"),
                             "--no-open", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(base + "/synthq", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "view.log").read_text()
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    assert "explorer at http://127.0.0.1:" in (tmp_path / "view.log").read_text()


@pytest.fixture
def browser(tmp_path):
    chromium, driver_path = _chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def test_a_released_row_leads_to_its_document_demonstrations_and_seeds(explorer, browser, tmp_path):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    def text() -> str:
        return browser.find_element(By.TAG_NAME, "body").text

    def navigate(action) -> None:
        """Do what leaves the page, then wait until the next one has loaded."""
        old = browser.find_element(By.TAG_NAME, "html")
        action()
        wait = WebDriverWait(browser, 30)
        wait.until(expected_conditions.staleness_of(old))
        wait.until(lambda b: b.execute_script("return document.readyState") == "complete")

    def found(by: str, what: str):
        """The element, once the page shows it; else what the page shows instead."""
        try:
            return WebDriverWait(browser, 30).until(expected_conditions.presence_of_element_located((by, what)))
        except TimeoutException:
            raise AssertionError(f"no {what} on {browser.current_url} after 30 s; the page says: {text()[:2000]!r}") from None

    def click(link_text: str, partial: bool = False) -> None:
        navigate(found(By.PARTIAL_LINK_TEXT if partial else By.LINK_TEXT, link_text).click)

    browser.get(explorer + "/synthq/release_rows?release=bakery%2Fv1")  # where `synthq view bakery` opens
    assert '2 rows where release = "bakery/v1"' in text()
    assert "Plan a feeding schedule for my sourdough starter" in text()
    click("bakery/v1,q0")  # the row's own page
    assert "/synthq/release_rows/bakery~2Fv1,q0" in browser.current_url
    page = text()
    assert "Keeping a sourdough starter alive" in page and "demo0" in page and "demo1" in page
    browser.save_screenshot(str(tmp_path / "explorer-release-row.png"))

    click("Keeping a sourdough starter alive")
    assert browser.current_url.endswith("/synthq/documents/doc0")
    assert "a cold fridge slows it down for a week" in text()
    navigate(browser.back)
    click("demo1")
    assert browser.current_url.endswith("/synthq/demonstrations/demo1")
    assert "A home baker (scene 1)." in text()
    click("What hydration suits a rye loaf?")  # the demonstration's seed, by its prompt
    assert browser.current_url.endswith("/synthq/seeds/seed1")
    assert "What hydration suits a rye loaf?" in text()

    browser.get(explorer + "/synthq/pairs")  # a preference pair leads to both of its answers
    click("q0-direct")
    click("Leave it out.")  # the rejected answer, by its text
    assert browser.current_url.endswith("/synthq/responses/q0-direct-1") and "llm:m" in text()

    browser.get(explorer + "/synthq/rejections")
    facets = found(By.CLASS_NAME, "facet-results").text
    assert "stage" in facets and "reason" in facets and "near_duplicate" in facets and "too_short" in facets
    click("low_score", partial=True)
    assert '1 row where reason = "low_score"' in text() and "below curate.min_score=3" in text()

    browser.get(explorer + "/synthq/documents?_search=hydration")
    assert "Rye bread hydration" in text() and "Keeping a sourdough" not in text()
    shot = tmp_path / "explorer-release-row.png"
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


def test_view_names_an_unknown_release_instead_of_serving(tmp_path):
    from typer.testing import CliRunner

    from synthq.flows.cli import app

    build_lake(str(tmp_path / "lake"))
    result = CliRunner().invoke(app, ["view", "bakery/v9", "--lake", str(tmp_path / "lake"), "--no-open"])
    assert result.exit_code == 2 and "Release 'bakery/v9' does not exist; 'bakery' has v1" in result.output
