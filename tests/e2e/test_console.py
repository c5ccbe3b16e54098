"""The web console in a real browser (headless Chromium), against the stack running as processes.

The world is set up over the public API (tests/support/world.py). A client signs in with its key, opens its
awarded posting, reads the shortlist's score components and reasons, asks why an unverified provider is not on it,
opens the contract's SLA chart with last week's breached window, the invoice with its credit line, balance and
PDF, and the cost report's charts. The provider signs in, accepts the waiting invitation and sends a proposal. The
operator reads the outbox backlog and dead-letter counts and verifies the waiting provider. A wrong key and a
refused page are explained in words.
"""

import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests.support import world
from tests.support.browser import Page, chromium, save_screenshot
from tests.support.stack import OPERATOR_KEY

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture(scope="module", autouse=True)
def short_sla_timers():
    """Set before the module's stack starts (it copies the environment)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in world.SETTINGS.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(scope="module")
def deal(stack, mongo_uri):
    return world.build(stack.url, mongo_uri, stack.database_name("billing"))


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads):
    driver = chromium(downloads)
    yield driver
    driver.quit()


@pytest.fixture
def page(browser, stack, request, tmp_path_factory):
    browser.get(f"{stack.url}/console")
    browser.execute_script("sessionStorage.clear()")
    console = Page(browser, stack.url)
    yield console
    outcome = getattr(request.node, "outcome_of_call", None)
    if outcome is not None and outcome.failed:
        save_screenshot(browser, tmp_path_factory.getbasetemp() / "screenshots", request.node.name)
    assert console.blocked_by_policy() == []


def test_a_key_the_platform_does_not_know_is_refused_in_words_using_the_keyboard_alone(page):
    page.open()
    field = page.labelled("API key")
    assert page.driver.switch_to.active_element == field  # the page starts in the key's field
    field.send_keys("tlk_not-a-real-key", Keys.ENTER)
    alert = page.wait_text("The key was not accepted", within="[role=alert]")
    assert alert.is_displayed()
    assert page.driver.switch_to.active_element == field  # back in the field, to type it again
    assert field.get_attribute("type") == "password"


def test_a_page_whose_data_the_api_refuses_says_why_instead_of_staying_blank(page, deal):
    page.sign_in(deal["client_key"])
    page.heading("Postings")
    page.open("#/invoices/inv_0000000000000000000000000000000")
    page.heading("Something went wrong")
    assert page.wait_text("Not found", within="[role=alert]").is_displayed()


def test_a_client_reads_the_shortlist_a_why_not_the_sla_chart_and_the_invoice(page, deal, downloads):
    page.sign_in(deal["client_key"])
    page.heading("Postings")
    page.wait_text(deal["waiting"]["title"])
    page.link(deal["awarded"]["title"]).click()
    page.heading(deal["awarded"]["title"])

    # The shortlist: the provider, its score broken into components as bars, and the reasons in words.
    candidate = page.wait_text("Ana Ruiz", within="ol.candidates")
    bars = candidate.find_elements(By.CSS_SELECTOR, ".score-row [role=meter]")
    assert {bar.get_attribute("aria-label") for bar in bars} >= {"Required skills", "Rate", "Overlap"}
    assert all(0 <= float(bar.get_attribute("aria-valuenow")) <= 1 for bar in bars)
    assert candidate.find_elements(By.CSS_SELECTOR, "ul.reasons li")
    # The negotiation: proposed, countered, accepted, and the award.
    history = page.wait_text("Countered", within="ul.proposals")
    assert "Within our budget" in history.text and "Awarded" in history.text

    # Why not Eve Stone? She is not verified.
    Select(page.labelled("Provider")).select_by_visible_text(f"Eve Stone ({deal['stranger']['country']})")
    page.button("Why not this provider?").click()
    answer = page.wait_text("Why Eve Stone: Excluded", within="#why-not-answer")
    assert "Not verified" in answer.text

    # The contract's SLA chart: last week's window, 95 minutes against 60, breached.
    page.link("Contracts").click()
    page.link(deal["awarded"]["title"]).click()
    page.heading(deal["awarded"]["title"])
    chart = page.wait_text("1 breached", within=".sla-chart")
    assert chart.find_elements(By.CSS_SELECTOR, "rect.sla-bar.breached")
    label = chart.find_element(By.CSS_SELECTOR, "svg").get_attribute("aria-label")
    assert "target at most 60" in label and "95 breached" in label
    assert "Active" in page.driver.find_element(By.CSS_SELECTOR, ".facts").text
    versions = page.wait_text("v1", within="[aria-labelledby=h-terms-versions]")
    assert "Client" in versions.text and "Provider" in versions.text

    # The invoice: its lines with the SLA credit, the balance and the PDF.
    page.link("Invoices").click()
    page.link(deal["invoice"]["number"]).click()
    page.heading(f"Invoice {deal['invoice']['number']}")
    lines = page.wait_text("SLA credit", within="[aria-labelledby=h-lines]")
    assert "Inbox triage" in lines.text and "-25.50 USD" in lines.text
    balance = page.driver.find_element(By.CSS_SELECTOR, ".balance").text
    assert balance == f"{deal['invoice']['balance']['amount']} USD"
    page.button("Download the PDF").click()
    pdf = downloads / f"{deal['invoice']['number']}.pdf"
    deadline = time.monotonic() + 20
    while not pdf.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pdf.read_bytes().startswith(b"%PDF")

    # The cost report of the month from the invoice's week: spend by category as a chart, against the in-house
    # estimate.
    week = deal["invoice"]["period"]
    page.open(f"#/costs/{week['start']}/1")
    page.heading("Cost report")
    page.wait_text("Spend in USD")
    charts = {chart.find_element(By.TAG_NAME, "figcaption").text: chart.find_element(By.TAG_NAME, "svg")
              for chart in page.driver.find_elements(By.CSS_SELECTOR, "figure.chart")}
    spend = f"{deal['invoice']['net']['amount']} USD"
    assert f"Administrative support {spend}" in charts["Spend by category"].get_attribute("aria-label")
    assert f"Nearshore {spend}" in charts["Spend by shoring"].get_attribute("aria-label")
    assert "Administrative support in-house" in charts["In-house cost against outsourced spend"].get_attribute(
        "aria-label")
    assert "Saving against in-house" in page.driver.find_element(By.TAG_NAME, "main").text


def test_a_finance_key_sees_invoices_and_costs_only(page, deal):
    page.sign_in(deal["finance_key"])
    page.heading("Invoices")
    menu = page.driver.find_element(By.ID, "nav").text.split("\n")
    assert menu == ["Invoices", "Costs"]
    assert "Signed in as Client (finance)" in page.driver.find_element(By.ID, "who").text
    page.link(deal["invoice"]["number"]).click()
    page.wait_text("SLA credit", within="[aria-labelledby=h-lines]")


def test_a_provider_accepts_an_invitation_and_sends_a_proposal(page, deal):
    page.sign_in(deal["provider_key"])
    page.heading("Invitations")
    title = deal["waiting"]["title"]
    page.button(f"Accept the invitation to {title}").click()
    form = page.wait_text("Send a proposal", within="ul.invitations")
    assert "Accepted" in form.text
    price = page.labelled("Price (USD)")
    price.send_keys("13.50")
    page.labelled("Note").send_keys("I can start on your date")
    page.button("Send proposal").click()
    page.heading("Proposal")
    history = page.wait_text("I can start on your date", within="[aria-labelledby=h-negotiation]")
    assert "Proposed" in history.text and "13.50 USD" in history.text
    assert "Waiting for the client's answer." in page.driver.find_element(By.TAG_NAME, "main").text




def test_an_operator_sees_the_backlog_and_verifies_a_waiting_provider(page, deal):
    """Last in the module: verifying Eve Stone changes the client's why-not."""
    page.sign_in(OPERATOR_KEY)
    page.heading("Operations")
    health = page.wait_text("enterprise: ok", within="[aria-labelledby=h-health]")  # each lane's processes
    assert "Billing" in health.text and "smb: ok" in health.text
    backlog = page.wait_text("Dead letters", within="[aria-labelledby=h-outbox-backlog-and-dead-letters]")
    assert "Billing" in backlog.text and "Contracting" in backlog.text
    assert "No message is parked in a dead-letter queue." in backlog.text
    organisations = page.wait_text("Registered", within="[aria-labelledby=h-client-organisations]")
    assert deal["tenant_id"] in organisations.text
    page.button("Verify Eve Stone").click()
    page.wait_text("Eve Stone verified.", within="[aria-labelledby=h-providers-waiting-for-verification]")
