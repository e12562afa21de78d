"""The web console (`serve --console`, `wassette console`) in a real browser:
headless Chromium driven by Selenium, against real servers started here.

One browser for the module. With WASSETTE_SCREENSHOTS=1 the main pages are
saved to docs/images/console-*.png (docs/console.md shows them)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx2 as httpx
import jsonschema
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from homes import Cli
from servers import HttpServer, http_server, http_session, text

REPO = Path(__file__).resolve().parent.parent
SHOTS = REPO / "docs" / "images"
WAIT_S = 20
PAGES = ("/console/", "/console/audit", "/console/requests", "/console/policies")
SHIPPED = b'version: "1.0"\npermissions:\n  network:\n    allow:\n      - host: api.example.com\n'


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.fail("chromium and chromium-driver are not installed: run scripts/setup-toolchain.sh")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def server(
    module_env: dict[str, str], module_cli: Cli, components: dict[str, Path], tmp_path_factory: Any
) -> Iterator[HttpServer]:
    """`serve --console` on loopback: `io` loaded, `arith` with a shipped
    policy still pending."""
    assert module_cli("component", "load", components["io"].as_uri()).returncode == 0
    from wassette.runtime.config import Settings
    from wassette.runtime.install import InstallOptions, Package
    from wassette.runtime.runtime import Runtime

    rt = Runtime(Settings.load(env=module_env))
    rt.refresh()
    wasm = components["arith"].read_bytes()
    package = Package("arith", wasm, components["arith"].as_uri(), {"kind": "file"}, SHIPPED)
    assert rt.install(package, InstallOptions(accept_policy=False)).policy == "pending"
    rt.close()
    with http_server(module_env, tmp_path_factory.mktemp("log") / "serve.log", "--console") as made:
        yield made


def audit(env: dict[str, str]) -> list[dict[str, Any]]:
    lines = (Path(env["XDG_DATA_HOME"]) / "wassette" / "audit.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def shot(browser: Any, name: str) -> None:
    if os.environ.get("WASSETTE_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / f"console-{name}.png"))


def wait(browser: Any) -> WebDriverWait:  # type: ignore[type-arg]
    return WebDriverWait(browser, WAIT_S)


def call(url: str, tool: str, args: dict[str, Any]) -> Any:
    """A tool call from the official MCP client (no elicitation capability)."""

    async def go() -> Any:
        async with http_session(url) as s:
            return await s.call_tool(tool, args)

    return asyncio.run(go())


class Background:
    """A tool call that waits (for the console's decision) in a thread."""

    def __init__(self, run: Callable[[], Any]) -> None:
        self.result: Any = None
        self.thread = threading.Thread(target=self._run, args=(run,), daemon=True)
        self.thread.start()

    def _run(self, run: Callable[[], Any]) -> None:
        self.result = run()

    def join(self) -> Any:
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive(), "the tool call did not end"
        return self.result


# -- pages show the real data -------------------------------------------------------


def test_components_page(browser: Any, server: HttpServer, module_cli: Cli) -> None:
    listed = {c["id"]: c for c in json.loads(module_cli("component", "list", "-o", "json").stdout)}
    browser.get(server.base + "/console/")
    section = wait(browser).until(EC.presence_of_element_located((By.ID, "component-io")))
    assert section.find_element(By.CSS_SELECTOR, ".source").text == listed["io"]["source"]
    assert (
        listed["io"]["sha256"].removeprefix("sha256:")
        in section.find_element(By.CSS_SELECTOR, ".digest").text
    )
    assert "not signed" in section.find_element(By.CSS_SELECTOR, ".signer").text
    tools = [li.text for li in section.find_elements(By.CSS_SELECTOR, "ul.tools li")]
    assert tools == listed["io"]["tools"] and "read-file" in tools
    shot(browser, "components")
    effective = section.find_element(By.CSS_SELECTOR, "details.effective")
    effective.find_element(By.TAG_NAME, "summary").click()
    assert "storage" in effective.find_element(By.TAG_NAME, "pre").text
    arith = browser.find_element(By.ID, "component-arith")
    assert "waits for acceptance" in arith.text


def test_grant_from_a_denial(browser: Any, server: HttpServer, module_env: dict[str, str]) -> None:
    denied = call(server.url, "read-file", {"path": "/etc/hostname"})
    assert denied.is_error and "denied" in text(denied)
    browser.get(server.base + "/console/audit?component=io&event=denied")
    button = wait(browser).until(
        EC.element_to_be_clickable((By.XPATH, "//button[text()='Grant storage fs:///etc/hostname (read)']"))
    )
    shot(browser, "audit")
    button.click()
    flash = wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".flash")))
    assert flash.text == "granted storage fs:///etc/hostname (read) to io"
    granted = [r for r in audit(module_env) if r["event"] == "granted"]
    assert granted[-1]["by"] == "console (local)"
    assert granted[-1]["details"] == {"uri": "fs:///etc/hostname", "access": ["read"]}
    assert re.match(r"\d{4}-\d\d-\d\dT", granted[-1]["ts"])
    allowed = call(server.url, "read-file", {"path": "/etc/hostname"})
    assert not allowed.is_error, text(allowed)
    assert Path("/etc/hostname").read_text().strip() in text(allowed)


def test_audit_filters_and_live_update(browser: Any, server: HttpServer) -> None:
    call(server.url, "read-file", {"path": "/etc/os-release"})
    browser.get(server.base + "/console/audit")
    form = wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "form.filters")))
    form.find_element(By.NAME, "component").send_keys("io")
    form.find_element(By.NAME, "tool").send_keys("read-file")
    form.find_element(By.CSS_SELECTOR, "select[name=event] option[value=denied]").click()
    form.find_element(By.CSS_SELECTOR, "select[name=since] option[value='15m']").click()
    form.find_element(By.TAG_NAME, "button").click()
    wait(browser).until(EC.url_contains("event=denied"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#audit tbody tr")
    assert rows and all(r.get_attribute("class") == "event-denied" for r in rows)
    assert any("/etc/os-release" in r.text for r in rows)
    # A denial made now appears without a reload; a call record (filtered out) does not.
    marker = browser.find_element(By.ID, "audit")
    call(server.url, "read-file", {"path": "/etc/issue"})
    row = wait(browser).until(
        EC.presence_of_element_located((By.XPATH, "//table[@id='audit']//tr[contains(., '/etc/issue')]"))
    )
    assert browser.find_element(By.ID, "audit") == marker  # the same page, not reloaded
    assert row.get_attribute("class") == "event-denied"
    first = browser.find_element(By.CSS_SELECTOR, "#audit tbody tr")
    assert "/etc/issue" in first.text  # newest first
    browser.get(server.base + "/console/audit?tool=no-such-tool")
    assert browser.find_elements(By.CSS_SELECTOR, "#audit tbody tr") == []


def test_agent_grant_queue(browser: Any, server: HttpServer, module_cli: Cli) -> None:
    asked = {"component_id": "io", "details": {"host": "api.example.com"}}
    waiting = Background(lambda: call(server.url, "grant-network-permission", asked))
    browser.get(server.base + "/console/requests")
    row = wait(browser).until(
        EC.presence_of_element_located((By.XPATH, "//tr[@class='request'][contains(., 'api.example.com')]"))
    )
    assert "network" in row.text and "wassette permission grant network io api.example.com" in row.text
    shot(browser, "requests")
    row.find_element(By.XPATH, ".//button[text()='Approve']").click()
    wait(browser).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash"), "approved"))
    result = waiting.join()
    assert not result.is_error, text(result)
    policy = json.loads(module_cli("policy", "get", "io", "-o", "json").stdout)
    assert {"host": "api.example.com"} in policy["permissions"]["network"]["allow"]

    asked = {"component_id": "io", "details": {"host": "evil.example.com"}}
    waiting = Background(lambda: call(server.url, "grant-network-permission", asked))
    browser.get(server.base + "/console/requests")
    row = wait(browser).until(
        EC.presence_of_element_located((By.XPATH, "//tr[@class='request'][contains(., 'evil.example.com')]"))
    )
    row.find_element(By.XPATH, ".//button[text()='Deny']").click()
    result = waiting.join()
    assert result.is_error
    assert "console (local) denied the request in the console" in text(result)
    assert "wassette permission grant network io evil.example.com" in text(result)
    policy = json.loads(module_cli("policy", "get", "io", "-o", "json").stdout)
    assert {"host": "evil.example.com"} not in policy["permissions"]["network"]["allow"]


def test_accept_a_pending_policy(
    browser: Any, server: HttpServer, module_cli: Cli, module_env: dict[str, str]
) -> None:
    browser.get(server.base + "/console/policies")
    section = wait(browser).until(EC.presence_of_element_located((By.ID, "pending-arith")))
    assert "api.example.com" in section.find_element(By.CSS_SELECTOR, "pre.diff").text
    shot(browser, "policies")
    section.find_element(By.XPATH, ".//button[text()='Accept this policy']").click()
    wait(browser).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash"), "accepted"))
    assert "No shipped policy waits" in browser.find_element(By.TAG_NAME, "main").text
    policy = json.loads(module_cli("policy", "get", "arith", "-o", "json").stdout)
    assert policy["permissions"]["network"]["allow"] == [{"host": "api.example.com"}]
    accepted = [r for r in audit(module_env) if r["event"] == "policy_accepted"]
    assert accepted[-1]["by"] == "console (local)"


# -- the pages' protections ----------------------------------------------------------


class Scripts(HTMLParser):
    """Every <script> and inline handler or style of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True
        self.inline += [f"{tag} {name}" for name, _ in attrs if name.startswith("on") or name == "style"]

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False if tag == "script" else self._in_script

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(f"script body {data[:40]!r}")


def test_csp_and_no_inline_script(server: HttpServer) -> None:
    for page in PAGES:
        r = httpx.get(server.base + page)
        assert r.status_code == 200, page
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        parsed = Scripts()
        parsed.feed(r.text)
        assert parsed.scripts == [{"src": "/console/static/console.js", "defer": None}], page
        assert parsed.inline == [], page
    js = httpx.get(server.base + "/console/static/console.js")
    assert js.headers["content-type"].startswith("text/javascript")


def test_forged_posts_are_refused(server: HttpServer, module_cli: Cli) -> None:
    client = httpx.Client(base_url=server.base)
    page = client.get("/console/audit")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None and client.cookies.get("wassette_csrf") == token.group(1)
    grant = {"component": "io", "kind": "network", "value": "forged.example.com", "access": ""}
    own = {"origin": server.base}
    assert client.post("/console/grant", data=grant, headers=own).status_code == 403  # no token
    wrong = {**grant, "csrf": "x" * 43}
    assert client.post("/console/grant", data=wrong, headers=own).status_code == 403
    right = {**grant, "csrf": token.group(1)}
    port = int(server.base.rsplit(":", 1)[1])
    for origin in (f"http://127.0.0.1:{port + 1}", "http://evil.example", None):
        headers = {"origin": origin} if origin else {}
        assert client.post("/console/grant", data=right, headers=headers).status_code == 403, origin
    policy = module_cli("policy", "get", "io", "-o", "json").stdout
    assert "forged.example.com" not in policy
    assert httpx.get(server.base + "/health").status_code == 200
    assert client.get("/console/").status_code == 200
    # The console's own form, from its own origin: accepted.
    assert client.post("/console/grant", data=right, headers=own).status_code == 303
    assert "forged.example.com" in module_cli("policy", "get", "io", "-o", "json").stdout


def test_elsewhere_the_console_needs_the_token(
    browser: Any, module_env: dict[str, str], module_cli: Cli, tmp_path: Path
) -> None:
    refused = module_cli("serve", "--console", "--bind-address", "0.0.0.0:0")
    assert refused.returncode == 1 and "needs --auth-token or OAuth" in refused.stderr
    hosts = ("--allowed-host", "127.0.0.1", "--allowed-host", "0.0.0.0")  # the latter: the probe's
    args = ("--console", "--bind-address", "0.0.0.0:0", *hosts, "--auth-token", "s3cret")
    with http_server(module_env, tmp_path / "serve.log", *args) as made:
        base = "http://127.0.0.1:" + made.base.rsplit(":", 1)[1]
        for page in PAGES:
            assert httpx.get(base + page).status_code == 401, page
        bad = httpx.get(base + "/console/", headers={"authorization": "Bearer nope"})
        assert bad.status_code == 401
        good = httpx.get(base + "/console/", headers={"authorization": "Bearer s3cret"})
        assert good.status_code == 200 and "component-io" in good.text
        browser.delete_all_cookies()
        browser.get(base + "/console/")
        field = wait(browser).until(EC.presence_of_element_located((By.NAME, "token")))
        field.send_keys("wrong")
        field.submit()
        wait(browser).until(EC.text_to_be_present_in_element((By.TAG_NAME, "main"), "was not accepted"))
        browser.find_element(By.NAME, "token").send_keys("s3cret")
        browser.find_element(By.NAME, "token").submit()
        wait(browser).until(EC.presence_of_element_located((By.ID, "component-io")))
        assert browser.find_element(By.CSS_SELECTOR, ".who").text == "console (bearer token)"


# -- `wassette console` beside a stdio server ---------------------------------------------


def test_wassette_console(browser: Any, env: dict[str, str], cli: Cli, components: dict[str, Path]) -> None:
    """Its own home: the module's server holds the console lock of its own."""
    from wassette.runtime.audit import AuditLog
    from wassette.runtime.grant_queue import GrantQueue

    assert cli("component", "load", components["io"].as_uri()).returncode == 0
    data = Path(env["XDG_DATA_HOME"]) / "wassette"
    queue = GrantQueue(data, AuditLog(data / "audit.jsonl"))
    assert not queue.console_open()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wassette", "console"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split(" at ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:") and "?key=" in url
        assert queue.console_open()  # a stdio server's grant requests now wait for it
        assert httpx.get(url.split("?")[0]).status_code == 401
        browser.get(url)
        wait(browser).until(EC.presence_of_element_located((By.ID, "component-io")))
        assert browser.find_element(By.CSS_SELECTOR, ".who").text == "console (local)"
    finally:
        proc.terminate()
        proc.wait(10)
    assert not queue.console_open()


def test_queue_waits_a_bounded_time(tmp_path: Path) -> None:
    from wassette.runtime.audit import AuditLog
    from wassette.runtime.grant_queue import GrantQueue

    queue = GrantQueue(tmp_path, AuditLog(tmp_path / "audit.jsonl"))
    request = queue.ask("io", "network", "a.example", "wassette permission grant network io a.example", 0.3)
    assert [r.id for r in queue.pending()] == [request.id]
    assert queue.wait(request).state == "expired"
    assert queue.pending() == []
    with pytest.raises(Exception, match="no longer waiting"):
        queue.decide(request.id, True, "someone")
    request = queue.ask("io", "network", "b.example", "...", 30)
    threading.Timer(0.05, queue.decide, (request.id, True, "console (local)")).start()
    decided = queue.wait(request)
    assert (decided.state, decided.decided_by) == ("approved", "console (local)")
    records = AuditLog(tmp_path / "audit.jsonl").read(10, event="grant_request")
    assert [r["state"] for r in records] == ["pending", "expired", "pending", "approved"]
    from wassette.runtime import audit as audit_module

    schema = json.loads((Path(audit_module.__file__).parent / "audit.schema.json").read_text())
    for record in records:  # the published schema knows the queue's records
        jsonschema.validate(record, schema)


def test_oauth_rights(
    issuer: Any, env: dict[str, str], cli: Cli, components: dict[str, Path], tmp_path: Path
) -> None:
    """With OAuth: looking needs the audit right, changing the grants right;
    the audit log names the token's subject."""
    from issuer import RESOURCE

    assert cli("component", "load", components["io"].as_uri()).returncode == 0
    cli("tool", "invoke", "read-file", "--args", '{"path": "/etc/hostname"}')
    args = ("--console", "--oauth-issuer", issuer.url, "--oauth-resource", RESOURCE)
    with http_server({**env, "WASSETTE_WORKERS": "1"}, tmp_path / "serve.log", *args) as made:
        client = httpx.Client(base_url=made.base)
        signin = client.get("/console/audit")
        assert signin.status_code == 401 and 'name="token"' in signin.text
        tools_only = {"authorization": f"Bearer {issuer.token(scope='wassette:tools')}"}
        assert client.get("/console/audit", headers=tools_only).status_code == 403
        viewer = {"authorization": f"Bearer {issuer.token(scope='wassette:audit')}"}
        page = client.get("/console/audit", headers=viewer)
        assert page.status_code == 200 and "console (alice)" in page.text
        assert "needs the grants right" in page.text and "/console/grant" not in page.text
        token = client.cookies["wassette_csrf"]
        grant = {"component": "io", "kind": "storage", "value": "fs:///etc/hostname", "access": "read"}
        form = {**grant, "csrf": token}
        own = {"origin": made.base}
        assert client.post("/console/grant", data=form, headers={**viewer, **own}).status_code == 403
        # Signing in with a token of every right: kept in the console's cookie.
        done = client.post("/console/login", data={"csrf": token, "token": issuer.token()}, headers=own)
        assert done.status_code == 303 and client.cookies.get("wassette_console")
        assert client.post("/console/grant", data=form, headers=own).status_code == 303
    granted = [r for r in audit(env) if r["event"] == "granted"]
    assert granted[-1]["by"] == "console (alice)"
