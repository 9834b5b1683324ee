"""The sandbox console, driven in headless Chromium (Debian's chromium, Playwright): create a player,
open a session, send a 100HP withdrawal and deposit, and watch both rows and the new balance appear.
The forms carry the console's CSRF token, as a browser sends them (forged ones: test_attacks.py).
Screenshots at laptop and phone width are written to the test's folder, and to docs/ with
UPDATE_SCREENSHOTS=1 (how the README's pictures are made)."""
import os
import shutil
from pathlib import Path

import pytest
from conftest import HP_SECRET, ROOT, TEST_CONFIG, gunicorn, post_json, tx
from test_settings import PRODUCTION

from wallet.app import create_app
from wallet.settings import SettingsError
from conftest import init_schema

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM, reason="chromium not installed (apt-get install chromium)")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
         "--disable-background-networking", "--disable-component-update"]


@pytest.fixture
def console(tmp_path):
    url = f"sqlite:///{tmp_path}/console.db"
    init_schema(create_app({**TEST_CONFIG, "DATABASE_URL": url}).extensions["engine"])
    with gunicorn(url, workers=2, extra_env={"CONSOLE": "1"}) as base:
        yield base


def test_console_shows_the_wallet_move(console, tmp_path):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(console + "/")
        page.fill("form[action$='/console/players'] input[name=name]", "alice")
        page.fill("form[action$='/console/players'] input[name=balance]", "250")
        page.click("text=Create player")
        page.wait_for_url("**/players/*")
        player_id = page.url.rsplit("/", 1)[1]
        assert page.inner_text("#balance-USD") == "250 USD"
        page.click("text=Open a session")
        session = page.inner_text("#token")
        example = page.inner_text("pre")
        assert "/100hp/auth" in example and "$HP_SECRET" in example and HP_SECRET not in example

        page.goto(console + "/")  # the index refreshes itself: the calls below must show up there
        bet = tx()
        assert post_json(console, "/100hp/withdrawal", {"secret": HP_SECRET, "sessionId": session,
                                                        "txId": bet, "amount": "40"})[0] == 200
        assert post_json(console, "/100hp/deposit", {"secret": HP_SECRET, "txId": bet, "amount": "100"})[0] == 200
        post_json(console, "/100hp/rollback", {"secret": HP_SECRET, "txId": bet})  # a 609, shown too
        page.wait_for_function(f"document.querySelector('#ledger').innerText.includes('{bet}')", timeout=10000)
        ledger = page.inner_text("#ledger")
        assert "withdrawal" in ledger and "-40" in ledger and "deposit" in ledger and "310" in ledger
        calls = page.inner_text("#calls")
        assert "609" in calls and "withdrawal" in calls
        page.goto(console + f"/players/{player_id}")
        assert page.inner_text("#balance-USD") == "310 USD"

        shots = [tmp_path]
        if os.environ.get("UPDATE_SCREENSHOTS") == "1":
            shots.append(ROOT / "docs")
        page.goto(console + "/")
        page.wait_for_function(f"document.querySelector('#ledger').innerText.includes('{bet}')")
        for folder in shots:
            page.screenshot(path=str(Path(folder) / "console-laptop.png"), full_page=True)
        phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
        phone.goto(console + "/")
        for folder in shots:
            phone.screenshot(path=str(Path(folder) / "console-phone.png"), full_page=True)
        # readable on a phone: nothing but the tables' own scrolling areas is wider than the screen
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        browser.close()


def test_console_is_off_in_production_and_cannot_be_turned_on(tmp_path):
    settings = {**PRODUCTION, "DATABASE_URL": f"sqlite:///{tmp_path}/p.db", "WALLET_ALLOW_SQLITE": "1"}
    assert create_app(settings).test_client().get("/").status_code == 404
    with pytest.raises(SettingsError, match="CONSOLE=1 is refused in production"):
        create_app({**settings, "CONSOLE": "1"})
