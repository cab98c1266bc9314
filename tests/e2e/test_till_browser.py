"""The till on a Saturday, in Chromium: keyboard only, scanner-speed typing, a queue of customers.

Every desk page is checked with axe-core (vendored in static/, loaded from the portal's own
origin, so the strict CSP stays on) for serious or critical violations. The camera test feeds
Chromium a fake camera showing the QR code of a token.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import segno
from django.contrib.auth import get_user_model
from django.urls import reverse

from vouchers.access import roles
from vouchers.models import Campaign, ProviderOperation

from ..support.factories import PASSWORD, make_user
from .conftest import CHROMIUM_ARGS

pytestmark = [pytest.mark.chromium, pytest.mark.django_db(transaction=True)]

FULL = "FULL2345EFGH6789"
PART = "PART2345EFGH6789"
NEXT = "NEXT2345EFGH6789"
AXE = "/static/vendor/axe-core/axe.min.js"


def axe_problems(page) -> list[str]:
    """Serious and critical axe-core violations of the current page (empty when clean)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=AXE)  # same origin: allowed by script-src 'self'
    result = page.evaluate("async () => await axe.run(document)")
    assert result["passes"], "axe-core ran no rule"
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def assert_axe_clean(page):
    problems = axe_problems(page)
    assert not problems, f"{page.url}: {problems}"


@pytest.fixture
def shop(db):
    campaign = Campaign.objects.create(
        name="Till shop",
        slug="till-shop",
        provider="lina",
        base_url="https://lina.example.test/extern/tokenapi",
    )
    make_user(roles.CASHIER, campaign, username="till")
    return campaign


# Times (ms) of Enter and of "Checking with LINA…" appearing, and whether it was already shown
# when the submit event ended (the same task: before the request is even sent), kept across the
# page change in sessionStorage.
WATCH_CHECKING = """() => {
  const checking = document.getElementById("checking");
  const now = () => String(performance.timeOrigin + performance.now());
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { sessionStorage.setItem("enter", now()); }
  }, true);
  document.addEventListener("submit", () => {
    sessionStorage.setItem("shown-at-submit", String(!checking.hidden));
  });
  new MutationObserver(() => {
    if (!checking.hidden) { sessionStorage.setItem("checking-shown", now()); }
  }).observe(checking, { attributes: true });
}"""


def login_by_keyboard(page, live_server):
    page.goto(live_server.url + "/login/")
    page.focus("input[name=username]")
    page.keyboard.type("till")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")


def test_keyboard_only_queue_scan_check_redeem_slip_next(page, live_server, fake_provider, shop):
    from playwright.sync_api import expect

    fake_provider.add_token(FULL, "25.00", full_value_only=True)
    fake_provider.add_token(PART, "50.00")
    fake_provider.add_token(NEXT, "10.00")
    page.set_viewport_size({"width": 1024, "height": 768})  # the till's screen
    page.add_init_script("window.__printed = 0; window.print = function () { window.__printed += 1; };")
    csp_errors = []
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)

    # The cashier's login lands on the desk, code field focused.
    login_by_keyboard(page, live_server)
    expect(page.locator("h1")).to_contain_text("Till shop")
    code = page.locator("#id_code")
    expect(code).to_be_focused()
    assert_axe_clean(page)

    # Customer 1 (full value only): scan (typed at scanner speed, ends with Enter) ... [action 1]
    fake_provider.during("check", lambda **_: time.sleep(0.6))  # LINA takes its time
    page.keyboard.type(FULL.lower())
    page.evaluate(WATCH_CHECKING)
    page.keyboard.press("Enter")
    expect(page.locator("#result-state")).to_contain_text("Valid token")
    # "Checking with LINA…" is on screen from the frame after Enter: it is shown in the submit
    # event itself, before the request goes out (and so long before LINA's 0.6 s answer).
    assert page.evaluate("() => sessionStorage.getItem('shown-at-submit')") == "true"
    shown = page.evaluate("() => sessionStorage.getItem('checking-shown') - sessionStorage.getItem('enter')")
    # Typically a few ms; the bound is loose because CI machines are shared (a load of 5 on 2
    # cores measured 113 ms once): what it guards against is waiting for the server.
    assert 0 <= shown < 400
    expect(page.locator("#result-state")).to_contain_text("Valid token")
    expect(page.locator("input[name=amount]")).to_have_attribute("readonly", "")
    expect(page.locator("#redeem-button")).to_be_focused()
    assert_axe_clean(page)
    fake_provider.during("check", None)
    page.keyboard.press("Enter")  # ... redeem [action 2]
    expect(page.locator("#result-state")).to_contain_text("Redeemed")
    expect(page.locator("#new-balance")).to_have_text("0.00 €")
    expect(code).to_be_focused()
    page.keyboard.press("+")  # ... print the slip [action 3]
    assert page.evaluate("window.__printed") == 1
    assert_axe_clean(page)

    # Customer 2 (partial): the scan goes straight into the slip page's code field.
    page.keyboard.type(PART)
    page.keyboard.press("Enter")
    expect(page.locator("#card-mode")).to_have_text("partial redemption allowed")
    amount = page.locator("input[name=amount]")
    expect(amount).to_be_focused()
    expect(amount).to_have_value("50.00")
    page.keyboard.type("20")  # replaces the prefilled amount
    page.keyboard.press("Enter")
    expect(page.locator("#new-balance")).to_have_text("30.00 €")

    # Customer 3 changes their mind: a scan while the card is open starts over; Esc clears.
    page.keyboard.type(NEXT)
    page.keyboard.press("Enter")
    expect(page.locator("#card-code")).to_have_text("NEXT-2345-EFGH-6789")
    page.keyboard.type("PART2345")  # focus was on the amount: letters belong to a new scan
    expect(code).to_be_focused()
    expect(code).to_have_value("PART2345")
    page.keyboard.press("Escape")
    expect(code).to_have_value("")
    expect(page.locator("#token-card")).to_be_hidden()

    assert fake_provider.calls["redeem"] == 2
    assert ProviderOperation.objects.filter(kind="redeem", state="succeeded").count() == 2
    assert not csp_errors


def test_every_settled_state_reads_right_and_passes_axe(page, live_server, fake_provider, shop):
    from playwright.sync_api import expect

    from vouchers.providers import errors

    fake_provider.add_token(FULL, "25.00")
    fake_provider.add_token(PART, "50.00", valid=False)
    page.set_viewport_size({"width": 768, "height": 1024})  # a tablet at the till
    login_by_keyboard(page, live_server)
    expect(page.locator("#id_code")).to_be_focused()

    # Invalid token: no redemption mode, the code field is ready for the next one.
    page.keyboard.type(PART)
    page.keyboard.press("Enter")
    expect(page.locator("#result-state")).to_contain_text("This token is invalid")
    expect(page.locator("#token-card")).not_to_contain_text("partial redemption")
    expect(page.locator("#id_code")).to_be_focused()
    assert_axe_clean(page)

    # LINA hangs on a check: plain words, nothing changed.
    fake_provider.fail_next("check", errors.OutcomeUnknown())
    page.keyboard.type(FULL)
    page.keyboard.press("Enter")
    expect(page.locator("#provider-error")).to_contain_text(
        "LINA did not answer in time. Nothing was changed"
    )
    assert_axe_clean(page)

    # Refused: "Not redeemed", no unknown-outcome warning.
    page.keyboard.type(FULL)
    page.keyboard.press("Enter")
    expect(page.locator("input[name=amount]")).to_be_focused()
    fake_provider.fail_next("redeem", errors.RedeemRefused("Restwert nicht ausreichend"))
    page.keyboard.press("Enter")
    expect(page.locator("#result-state")).to_contain_text("Not redeemed")
    expect(page.locator("#outcome")).to_contain_text("Restwert nicht ausreichend")
    expect(page.locator("main")).not_to_contain_text("not known")
    expect(page.locator("#id_code")).to_be_focused()
    assert_axe_clean(page)

    # Settled pages made by the reconcile or a person, opened directly.
    till = get_user_model().objects.get(username="till")
    settled = {}
    for state, extra in (
        ("failed", {"error_code": "OutcomeUnknown", "resolution_note": "Balance unchanged: not redeemed."}),
        ("needs_review", {}),
        ("unknown", {}),
        ("succeeded", {"balance_before": "25.00", "balance_after": "15.00", "resolution_note": "Redeemed."}),
    ):
        settled[state] = ProviderOperation.objects.create(
            campaign=shop,
            user=till,
            kind="redeem",
            state=state,
            code_masked="••••6789",
            code_digest=state[0] * 64,
            amount="10.00",
            **extra,
        )
    expected = {
        "failed": ("Not redeemed", "balance is unchanged"),
        "needs_review": ("Needs a person", "ask a campaign admin"),
        "unknown": ("Outcome not known", "Do not hand over goods yet"),
        "succeeded": ("Redeemed", "You may hand over the goods"),
    }
    for state, (title, text) in expected.items():
        page.goto(live_server.url + reverse("vouchers:desk-operation", args=[settled[state].pk]))
        expect(page.locator("#result-state")).to_contain_text(title)
        expect(page.locator("#outcome")).to_contain_text(text)
        if state != "unknown":
            expect(page.locator("main")).not_to_contain_text("not known")
        expect(page.locator("#id_code")).to_be_focused()
        assert_axe_clean(page)

    # The day close and today's list, too.
    for name in ("vouchers:desk-close", "vouchers:desk-today"):
        page.goto(live_server.url + reverse(name))
        assert_axe_clean(page)
    expect(page.locator("#total-redeemed")).to_have_text("10.00 €")


# --- Camera ---------------------------------------------------------------------------------------

WIDTH, HEIGHT = 640, 480


def write_qr_y4m(path: Path, text: str, frames: int = 10) -> None:
    """A still of ``text``'s QR code as a Y4M video (4:2:0): black modules on white, centred."""
    matrix = segno.make(text, error="m").matrix
    scale = 10
    border = 4
    modules = len(matrix) + 2 * border
    size = modules * scale
    left, top = (WIDTH - size) // 2, (HEIGHT - size) // 2
    luma = bytearray(b"\xeb" * (WIDTH * HEIGHT))  # 235: white in video range
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if not dark:
                continue
            y0, x0 = top + (r + border) * scale, left + (c + border) * scale
            for y in range(y0, y0 + scale):
                luma[y * WIDTH + x0 : y * WIDTH + x0 + scale] = b"\x10" * scale  # 16: black
    chroma = b"\x80" * ((WIDTH // 2) * (HEIGHT // 2))
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F25:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n")
            out.write(luma)
            out.write(chroma)
            out.write(chroma)


@pytest.fixture
def camera_page(live_server, tmp_path):
    import os

    from django.db import connections
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    video = tmp_path / "qr.y4m"
    write_qr_y4m(video, FULL)
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        context = browser.new_context(locale="en-GB")
        context.grant_permissions(["camera"], origin=live_server.url)
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()
            connections.close_all()


def test_camera_scan_reads_the_qr_code_and_checks_it(camera_page, live_server, fake_provider, shop):
    from playwright.sync_api import expect

    page = camera_page
    fake_provider.add_token(FULL, "25.00")
    csp_errors = []
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
    decoder_loads = []
    page.on("request", lambda r: decoder_loads.append(r.url) if "vendor/zxing" in r.url else None)
    login_by_keyboard(page, live_server)
    button = page.get_by_role("button", name="Scan with camera")
    expect(button).to_be_visible()
    native = page.evaluate("'BarcodeDetector' in window")
    button.focus()
    page.keyboard.press("Enter")  # keyboard works here too
    expect(page.locator("#camera-panel")).to_be_visible()
    # The decoder reads a frame, fills the field and checks: the token card of the QR's code.
    expect(page.locator("#card-code")).to_have_text("FULL-2345-EFGH-6789", timeout=20_000)
    expect(page.locator("#result-state")).to_contain_text("Valid token")
    assert fake_provider.calls["check"] == 1
    assert bool(decoder_loads) is not native  # the vendored decoder, only without BarcodeDetector
    assert not csp_errors
