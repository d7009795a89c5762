"""The chat page at `/` of `attend serve` in a real headless browser: Selenium drives Debian's Chromium, asks a
question, and checks that the answer streams into the assistant bubble, that usage shows under it, and (with
ATTEND_EXPECT_SOURCES=1) that sources are listed. Run by scripts/test-chat-page.sh, which starts the server and passes
its URL in ATTEND_SERVER_URL. ATTEND_SCREENSHOT, when set, is where a screenshot of the page goes (pass or fail)."""
import os
import re
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

URL = os.environ["ATTEND_SERVER_URL"].rstrip("/") + "/" + ("#key=" + os.environ["ATTEND_API_KEY"] if os.environ.get("ATTEND_API_KEY") else "")
QUESTION = os.environ.get("ATTEND_QUESTION", "How do I remove a database? Explain in three short sentences.")
EXPECT_SOURCES = os.environ.get("ATTEND_EXPECT_SOURCES") == "1"
SCREENSHOT = os.environ.get("ATTEND_SCREENSHOT")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
TIMEOUT = 120
MAX_TOKENS = 64

# Counts how many times an assistant message's .content text changed (a re-render to the same text, as when the
# sources arrive and the [n] markers become links, does not count), and whether text was there while the page still
# said it was streaming.
OBSERVER = """
window.__chat = {changes: 0, seenWhileStreaming: false};
const seen = new WeakMap();
new MutationObserver((records) => {
  for (const m of records) {
    const node = m.target.nodeType === 1 ? m.target : m.target.parentElement;
    const content = node && node.closest('.message.assistant .content');
    const text = content ? content.textContent : '';
    if (!content || text === (seen.get(content) || '')) continue;
    seen.set(content, text);
    window.__chat.changes++;
    if (document.body.dataset.state === 'streaming' && text.trim()) window.__chat.seenWhileStreaming = true;
  }
}).observe(document.querySelector('#messages'), {subtree: true, childList: true, characterData: true});
"""


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def run(driver):
    driver.get(URL)
    check("Attend" in driver.title, f"the page's title is {driver.title!r}; expected one with 'Attend' (is {URL} the chat page?)")
    prompts = driver.find_elements(By.CSS_SELECTOR, "#prompt")
    check(prompts, "the page has no #prompt textarea")
    prompt = prompts[0]
    check(prompt.tag_name == "textarea", f"#prompt is a <{prompt.tag_name}>, not a <textarea>")
    check(driver.find_elements(By.CSS_SELECTOR, "#send") and driver.find_elements(By.CSS_SELECTOR, "#stop"), "the page lacks #send or #stop")
    check(driver.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "idle", "body[data-state] is not 'idle' before sending")

    # Greedy and short, so that a slow (debug) build answers in time.
    for field, value in (("#temperature", "0"), ("#max-tokens", str(MAX_TOKENS))):
        inputs = driver.find_elements(By.CSS_SELECTOR, field)
        check(inputs, f"the page has no {field} setting")
        inputs[0].clear()
        inputs[0].send_keys(value)
    driver.execute_script(OBSERVER)
    prompt.send_keys(QUESTION)
    started = time.monotonic()
    driver.find_element(By.CSS_SELECTOR, "#send").click()

    def done(d):
        replies = d.find_elements(By.CSS_SELECTOR, "#messages .message.assistant")
        if not replies or d.find_element(By.TAG_NAME, "body").get_attribute("data-state") != "idle":
            return False
        return replies[-1] if replies[-1].find_element(By.CSS_SELECTOR, ".content").text.strip() or replies[-1].find_elements(By.CSS_SELECTOR, ".error") else False

    try:
        reply = WebDriverWait(driver, TIMEOUT, poll_frequency=0.2).until(done)
    except TimeoutException:
        replies = driver.find_elements(By.CSS_SELECTOR, "#messages .message.assistant")
        state = driver.find_element(By.TAG_NAME, "body").get_attribute("data-state")
        text = replies[-1].text if replies else "(no assistant message)"
        raise Failure(f"no finished answer within {TIMEOUT} s: body[data-state]={state!r}, the assistant message reads {text!r}")
    seconds = time.monotonic() - started

    errors = reply.find_elements(By.CSS_SELECTOR, ".error")
    check(not errors, "the reply shows an error: " + " ".join(e.text for e in errors))
    content = reply.find_element(By.CSS_SELECTOR, ".content").text.strip()
    status = reply.find_element(By.CSS_SELECTOR, ".status").text.strip()
    observed = driver.execute_script("return window.__chat")
    print(f"answer after {seconds:.1f} s: {content!r}")
    print(f"status: {status!r}; content changed {observed['changes']} times, text seen while streaming: {observed['seenWhileStreaming']}")
    check(content, "the assistant's .content is empty")

    tokens = re.search(r"(\d+) tokens?\b", status)
    check(tokens, f"the .status {status!r} shows no token count (expected e.g. '7 tokens · 21.3 tokens/s')")
    if int(tokens.group(1)) == 1:
        # A one-token answer arrives in one piece: there is nothing to see streaming.
        print("note: the answer is one token, so streaming can't be observed; the check that it streamed is skipped")
    else:
        check(observed["changes"] > 1, f"the answer did not stream: its .content changed {observed['changes']} time(s), expected more than 1")
        check("tokens/s" in status, f"the .status {status!r} shows no tokens/s")

    if EXPECT_SOURCES:
        sources = reply.find_elements(By.CSS_SELECTOR, ".sources li")
        check(len(sources) >= 1, "ATTEND_EXPECT_SOURCES=1, but the reply lists no sources (.sources li)")
        print(f"sources: {len(sources)}: " + "; ".join(s.text.splitlines()[0] for s in sources if s.text))
    # The attention map on request: the button under the answer fetches a PNG, which the page shows decoded.
    button = reply.find_element(By.CSS_SELECTOR, ".attention-button")
    button.click()
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        size = driver.execute_script("const i = arguments[0].querySelector('.attention img'); return i && i.complete ? [i.naturalWidth, i.naturalHeight] : null", reply)
        if size:
            break
        failed = [b.text for b in reply.find_elements(By.CSS_SELECTOR, ".attention-button") if "failed" in b.text]
        check(not failed, "the attention map failed: " + " ".join(failed))
        time.sleep(0.5)
    else:
        raise Failure(f"no attention map within {TIMEOUT} s")
    check(size[0] > 100 and size[1] > 20, f"the attention map decoded to {size[0]}x{size[1]} pixels")
    print(f"attention map: {size[0]}x{size[1]} pixels")
    check(driver.find_element(By.CSS_SELECTOR, "#send").is_enabled(), "#send is still disabled after the answer")
    check(not driver.find_element(By.CSS_SELECTOR, "#stop").is_enabled(), "#stop is still enabled after the answer")


def main():
    try:
        driver = browser()
    except WebDriverException as e:
        print(f"FAIL: could not start Chromium ({CHROMIUM}) through {CHROMEDRIVER}: {e.msg}", file=sys.stderr)
        return 1
    try:
        run(driver)
        print("PASS: the chat page streamed an answer")
        return 0
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    except WebDriverException as e:
        print(f"FAIL: the browser reported: {e.msg}", file=sys.stderr)
        return 1
    finally:
        if SCREENSHOT:
            try:
                driver.save_screenshot(SCREENSHOT)
                print(f"screenshot: {SCREENSHOT}")
            except WebDriverException as e:
                print(f"could not save a screenshot: {e.msg}", file=sys.stderr)
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
