"""Drives Ferry's status page in headless Chromium (Debian's package, through
Playwright): logs in with the admin token, finds the push's run and why a
unit was skipped, checks that a hostile branch name renders as text and runs
nothing, and saves screenshots for review. Prints what it found as JSON; the
Rust end-to-end test (functions/local/tests/e2e/status_page.rs) asserts on it.

    python status_page.py <base-url> <admin-token> <screenshot-dir>
"""

import json
import os
import sys

from playwright.sync_api import sync_playwright

# Chromium's own connections are refused on a closed network: none are made.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main(base, token, shots):
    found = {"dialogs": [], "console_errors": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=os.environ.get("FERRY_CHROMIUM", "/usr/bin/chromium"), args=FLAGS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        # A script that ran would most likely open a dialog or change the title.
        page.on("dialog", lambda d: (found["dialogs"].append(d.message), d.dismiss()))
        page.on("console", lambda m: m.type == "error" and found["console_errors"].append(m.text))

        page.goto(f"{base}/ui")
        found["login_url"] = page.url
        page.fill("#token", token)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/ui")
        found["title"] = page.title()

        # The push that ran: one click on its line shows what it decided per unit.
        push = page.locator("details.delivery", has_text="pipelinerun.created").filter(
            has=page.locator(".event", has_text="push")
        )
        found["pushes_that_ran"] = push.count()
        push = push.first
        push.locator("summary").click()
        found["push_open"] = push.evaluate("d => d.open")
        found["push_decisions"] = push.locator("table.decisions tr").all_inner_texts()
        found["push_actions"] = push.locator("ul.actions li").all_inner_texts()
        found["runs"] = page.locator("#runs tr.run").all_inner_texts()
        found["previews"] = page.locator("#previews tbody tr").all_inner_texts()
        # Every other delivery opened too: what a stranger wrote must read as text.
        closed = page.locator("details.delivery:not([open]) summary")
        while closed.count() > 0:
            closed.first.click()
        found["hostile_text"] = [
            t for t in page.locator("details.delivery").all_inner_texts() if "<script>" in t
        ]
        found["script_elements"] = page.evaluate("document.scripts.length")
        found["stylesheet_applied"] = page.evaluate(
            "getComputedStyle(document.querySelector('header')).display"
        )
        os.makedirs(shots, exist_ok=True)
        page.screenshot(path=os.path.join(shots, "status-page.png"), full_page=True)

        phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
        phone.context.add_cookies(page.context.cookies())
        phone.goto(f"{base}/ui")
        found["phone_overflow"] = phone.evaluate(
            "document.documentElement.scrollWidth > document.documentElement.clientWidth"
        )
        phone.screenshot(path=os.path.join(shots, "status-page-phone.png"), full_page=True)
        found["title_after"] = page.title()
        browser.close()
    print(json.dumps(found))


if __name__ == "__main__":
    main(*sys.argv[1:4])
