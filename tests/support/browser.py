"""Headless Chromium for the console's browser tests (Debian's chromium and chromium-driver; `make install` puts
them where they are missing)."""

from __future__ import annotations

import shutil
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as shown
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
WAIT_SECONDS = 20


def chromium(downloads: Path) -> webdriver.Chrome:
    driver_path = shutil.which("chromedriver")
    binary = next((path for path in CHROMIUM if Path(path).exists()), None)
    if driver_path is None or binary is None:
        raise RuntimeError("headless Chromium is missing: run `make install` (apt-get install chromium "
                           "chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    # The page's console messages, to catch anything the Content-Security-Policy blocked.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=options)


class Page:
    """What a person does and reads on the console: find by visible text and labels, wait for it to appear."""

    def __init__(self, driver: webdriver.Chrome, url: str):
        self.driver = driver
        self.url = url

    def open(self, fragment: str = "") -> None:
        self.driver.get(f"{self.url}/console{fragment}")

    def wait_text(self, text: str, within: str = "main") -> WebElement:
        locator = (By.CSS_SELECTOR, within)
        WebDriverWait(self.driver, WAIT_SECONDS).until(shown.text_to_be_present_in_element(locator, text))
        return self.driver.find_element(*locator)

    def heading(self, text: str) -> None:
        WebDriverWait(self.driver, WAIT_SECONDS).until(
            shown.text_to_be_present_in_element((By.CSS_SELECTOR, "main h1"), text))

    def button(self, text: str) -> WebElement:
        xpath = f"//button[normalize-space()={_literal(text)}]"
        return WebDriverWait(self.driver, WAIT_SECONDS).until(shown.element_to_be_clickable((By.XPATH, xpath)))

    def link(self, text: str) -> WebElement:
        return WebDriverWait(self.driver, WAIT_SECONDS).until(shown.element_to_be_clickable((By.LINK_TEXT, text)))

    def labelled(self, label: str) -> WebElement:
        """The form control whose <label> says ``label`` (found through its for= id, as a screen reader does)."""
        xpath = f"//label[normalize-space()={_literal(label)}]"
        found = WebDriverWait(self.driver, WAIT_SECONDS).until(shown.presence_of_element_located((By.XPATH, xpath)))
        return self.driver.find_element(By.ID, found.get_attribute("for"))

    def blocked_by_policy(self) -> list[str]:
        """Messages of the browser's console since the last call that say the Content-Security-Policy refused
        something (an inline script or style, a resource from elsewhere)."""
        return [entry["message"] for entry in self.driver.get_log("browser")
                if "Content Security Policy" in entry["message"]]

    def sign_in(self, key: str) -> None:
        self.open()
        field = self.labelled("API key")
        field.clear()
        field.send_keys(key)
        self.button("Sign in").click()


def _literal(text: str) -> str:
    return f'"{text}"' if '"' not in text else f"'{text}'"


def save_screenshot(driver: webdriver.Chrome, directory: Path, name: str) -> Path:
    """The page as it is now, as a PNG; its path is printed (pytest shows it with the failure)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot of the failing page: {path}")
    return path
