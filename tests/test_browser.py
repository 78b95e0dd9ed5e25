"""The browser simulator played by a tester in a real headless Chromium (Debian's ``chromium``
and ``chromium-driver``, driven by selenium; ``.ci/run`` installs them).

One dialogue per dialect, as the issue's "Done when" asks: dial ``#121#``, choose Tigre or
Aigle (the keypad for one input, the keyboard for the next), the session dropped at the
confirmation (Time out: the gateway reports it), a redial offered to resume, resumed, and
the migration confirmed. Then the English subscriber switches to French from the menu. A
move refused (an input too long, one input too many) is told, and the session goes on as it
was; the number, gateway and code cannot change during a session. The app (its embedded store
with the demo subscribers) is served on a loopback port by the test.

Screenshots are kept as test artefacts in ``tests/artifacts/`` (ignored by git): one per
dialect at the migration's success screen (``simulator-<dialect>.png``) and one at the resume
screen (``simulator-resume.png``).
"""

from __future__ import annotations

import shutil
import urllib.parse
from pathlib import Path

import pytest
from handsets import serving

from ussd.months import month_of
from ussd.settings import Settings
from ussd.web import create_app

webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
WAIT = 15  # seconds for a screen to show: a hop is milliseconds, a cold browser less quick
POLL = 0.02  # seconds between looks: a hop is milliseconds
MAIN = ("Orange #121#\n1. Changer de profil\n2. Mon profil\n3. Conditions de migration\n"
        "4. Language / Langue")
SETUP = ("msisdn", "gateway", "code")  # what every hop of a session carries


@pytest.fixture(scope="module")
def site():
    """The app as ``ussd serve --demo`` builds it (embedded store, demo subscribers, the
    simulator on), on a free loopback port."""
    app = create_app(Settings(key_prefix="browser", demo=True, simulator=True))
    with serving(app) as url:
        yield url, app.extensions["ussd"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run", "--window-size=1280,960",
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


class Person:
    """A tester at the simulator page, using its ``data-testid`` hooks only."""

    def __init__(self, driver, url: str):
        self.driver = driver
        driver.get(f"{url}/simulator/")
        self.wait_for_options()

    def find(self, hook: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, f'[data-testid="{hook}"]')

    def wait_for_options(self) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.driver, WAIT, poll_frequency=POLL).until(
            lambda _: len(self.find("gateway").find_elements("tag name", "option")) == 3)

    def set(self, hook: str, value: str) -> None:
        field = self.find(hook)
        field.clear()
        field.send_keys(value)

    def choose(self, gateway: str) -> None:
        from selenium.webdriver.support.ui import Select

        Select(self.find("gateway")).select_by_value(gateway)

    def screen_shows(self, text: str) -> str:
        """Wait until the screen shows ``text``; the whole screen."""
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.driver, WAIT, poll_frequency=POLL).until(
            lambda _: text in self.find("screen").text, f"the screen never showed {text!r}")
        return self.find("screen").text

    def error_shows(self, text: str) -> None:
        """Wait until the page's error line reads ``text``."""
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.driver, WAIT, poll_frequency=POLL).until(
            lambda _: self.find("error").text == text, f"the error never read {text!r}")

    def dial(self) -> None:
        self.find("dial").click()

    def dials_main_menu(self, msisdn: str, gateway: str) -> None:
        """As ``msisdn`` through ``gateway``: dial the code shown, and wait for the main menu."""
        self.set("msisdn", msisdn)
        self.choose(gateway)
        self.dial()
        self.screen_shows("4. Language / Langue")

    def type_on_keypad(self, keys: str) -> None:
        for key in keys:
            self.find(f"key-{ {'*': 'star', '#': 'hash'}.get(key, key)}").click()
        self.find("send").click()

    def type_on_keyboard(self, text: str) -> None:
        self.find("input").send_keys(text + "\n")

    def send_each(self, texts: list[str]) -> str:
        """Send each text in turn once the one before is answered (a line in the transcript),
        as the keypad does (the field filled, Send clicked), in the page: some 25 ms a move,
        not the 130 ms of WebDriver commands. The error line if one shows (and the texts left
        are not sent), else ``""``."""
        return self.driver.execute_async_script("""
            const [texts, done] = [arguments[0], arguments[arguments.length - 1]];
            const hook = (name) => document.querySelector(`[data-testid="${name}"]`);
            const next = (index) => {
              if (index === texts.length || hook("error").textContent) {
                done(hook("error").textContent);
                return;
              }
              const lines = hook("log").children.length;
              hook("input").value = texts[index];
              hook("send").click();
              const answered = () => (hook("log").children.length > lines
                || hook("error").textContent ? next(index + 1) : setTimeout(answered, 5));
              answered();
            };
            next(0);
        """, texts)


DIALOGUES = [  # dialect, demo number, choice, its confirmation, its success
    ("africastalking", "0700000001", "2", "Migration vers Tigre: gratuite.",
     "Votre profil est désormais Tigre."),
    ("hubtel", "0700000002", "4", "Migration vers Aigle: gratuite.",
     "Votre profil est désormais Aigle."),
    ("flares", "0700000003", "3", "Migration vers Dauphin: gratuite.",
     "Votre profil est désormais Dauphin."),
]


@pytest.mark.parametrize(("gateway", "number", "choice", "confirm", "success"), DIALOGUES,
                         ids=[dialogue[0] for dialogue in DIALOGUES])
def test_a_migration_dropped_at_the_confirmation_is_resumed_on_redial(
        site, browser, gateway, number, choice, confirm, success):
    url, service = site
    tester = Person(browser, url)
    tester.set("msisdn", number)
    tester.choose(gateway)
    tester.set("code", "#121#")
    tester.dial()
    assert tester.screen_shows("4. Language / Langue") == MAIN
    assert tester.find("kind").text == "CON"
    assert tester.find("meta").text == "95/182 · GSM 03.38"
    assert tester.find("ttl").text.startswith("TTL 1")
    tester.type_on_keypad("1")
    tester.screen_shows("Choisissez votre nouveau profil:")
    tester.type_on_keyboard(choice)
    assert tester.screen_shows(confirm).endswith("1. Confirmer\n2. Annuler\n0 Retour | 00 Accueil")
    tester.find("timeout").click()  # dropped at the confirmation
    tester.screen_shows("(timed out)")
    tester.dial()  # the same number dials again
    tester.screen_shows("Reprendre où vous en étiez ?")
    if gateway == "hubtel":
        browser.save_screenshot(str(ARTIFACTS / "simulator-resume.png"))
    tester.type_on_keyboard("1")
    assert tester.screen_shows(confirm).startswith(confirm)
    tester.type_on_keypad("1")
    assert tester.screen_shows(success).startswith(success)
    assert tester.find("kind").text == "END"
    assert tester.find("send").get_attribute("disabled") == "true"
    browser.save_screenshot(str(ARTIFACTS / f"simulator-{gateway}.png"))
    record = service.store.admin.describe("+225" + number, month_of(service.clock(),
                                                                         service.zone))
    assert record["profile"] == success.rsplit(" ", 1)[1].rstrip(".").lower()
    assert record["history"][-1]["gateway"] == gateway
    # The transcript, downloaded as `ussd sim` commands: the dropped session, then the other.
    href = tester.find("transcript").get_attribute("href")
    script = urllib.parse.unquote(href.split(",", 1)[1]).splitlines()
    assert script[-2:] == [
        f"ussd sim --url {url} --gateway {gateway} --msisdn {number} --dial '#121#' --input 1 "
        f"--input {choice} --time-out",
        f"ussd sim --url {url} --gateway {gateway} --msisdn {number} --dial '#121#' --input 1 "
        "--input 1",
    ]


def test_a_subscriber_switches_to_french_from_the_menu(site, browser):
    url, service = site
    tester = Person(browser, url)
    tester.set("msisdn", "0700000005")  # the English demo subscriber
    tester.choose("hubtel")
    tester.dial()
    tester.screen_shows("1. Change profile")
    tester.type_on_keyboard("4")
    tester.screen_shows("Language / Langue:\n1. Francais\n2. English")
    tester.type_on_keypad("1")
    tester.screen_shows("Langue enregistrée: Francais.")
    tester.type_on_keyboard("00")
    tester.screen_shows("1. Changer de profil")
    assert service.store.admin.describe("+2250700000005", "2000-01")["language"] == "fr"


def test_a_refused_input_is_told_and_the_session_goes_on(site, browser):
    """An input longer than a handset sends was kept in the page's inputs: every later move,
    Hang up too, was refused as "inputs must be a list of texts (64 at most)", and the
    session left open offered to resume on the next dial."""
    url, _ = site
    tester = Person(browser, url)
    tester.dials_main_menu("0700000006", "flares")
    tester.type_on_keyboard("1" * 183)
    tester.error_shows("Send refused: an input is 182 characters at most: no handset sends "
                       "more in one USSD message")
    assert (tester.find("screen").text, tester.find("kind").text) == (MAIN, "CON")
    tester.type_on_keypad("1")  # the same session goes on, from where it was
    tester.screen_shows("Choisissez votre nouveau profil:")
    assert tester.find("error").text == ""
    tester.find("hangup").click()
    tester.screen_shows("(hung up)")
    tester.dial()  # hung up, not left open: no offer to resume
    assert tester.screen_shows("4. Language / Langue") == MAIN
    tester.find("hangup").click()
    tester.screen_shows("(hung up)")
    script = urllib.parse.unquote(tester.find("transcript").get_attribute("href"))
    assert script.splitlines()[-2].endswith("--dial '#121#' --input 1 --hang-up")


def test_past_the_inputs_a_session_takes_hang_up_still_works(site, browser):
    """The 65th input of a session is refused as such, and the session can be hung up."""
    url, _ = site
    tester = Person(browser, url)
    tester.dials_main_menu("0700000006", "hubtel")
    assert tester.send_each(["1", "0"] * 32) == ""  # to the profiles and back: 64 inputs
    assert tester.find("screen").text == MAIN
    tester.type_on_keyboard("2")
    tester.error_shows("Send refused: a session takes 64 inputs at most")
    assert tester.find("screen").text == MAIN
    tester.find("hangup").click()
    tester.screen_shows("(hung up)")
    assert tester.find("error").text == ""


def test_the_number_gateway_and_code_are_locked_during_a_session(site, browser):
    """Switched mid-session, the dialect (or the number, or the code) went out on the same
    session id: to Flares, "Demande non reconnue"."""
    url, _ = site
    tester = Person(browser, url)
    tester.set("msisdn", "0700000004")
    tester.choose("flares")

    def locked() -> list[bool]:
        return [not tester.find(hook).is_enabled() for hook in SETUP]

    assert locked() == [False] * 3
    for ending in ("END", "hangup", "timeout"):
        tester.dial()
        tester.screen_shows("4. Language / Langue")
        assert locked() == [True] * 3, ending
        if ending == "END":  # the month's 3 migrations are used: refused, the session over
            tester.type_on_keyboard("1")
            tester.screen_shows("Choisissez votre nouveau profil:")
            tester.type_on_keyboard("2")
            tester.screen_shows("Vous avez déjà effectué vos 3 migrations de ce mois.")
        else:
            tester.find(ending).click()
            tester.screen_shows("(hung up)" if ending == "hangup" else "(timed out)")
        assert locked() == [False] * 3, ending
    tester.choose("hubtel")  # another gateway, once the session is over
    tester.dial()
    tester.screen_shows("4. Language / Langue")
    assert "POST /ussd/hubtel" in tester.find("request-text").text
    tester.find("hangup").click()
    tester.screen_shows("(hung up)")
