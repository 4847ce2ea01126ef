// Drives a real headless chromium through the dashboard of a running
// `rouse serve`: log in, see the function's row, watch its request count
// rise without reloading after a request through the gateway, see the
// request in the live log tail, roll back from the page, and check a
// wrong token gets nothing. Screenshots go to SHOTS.
// Usage: node dashboard.mjs ADMIN_URL GATEWAY_URL TOKEN FUNCTION REQUEST_PATH SHOTS
import { chromium } from "playwright-core";

const [admin, gateway, token, fn, reqPath, shots] = process.argv.slice(2);
const fail = (msg) => { console.error("FAIL: " + msg); process.exit(1); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const outside = [];
  page.on("request", (r) => { if (!r.url().startsWith(admin)) outside.push(r.url()); });

  // A wrong token: back to the form, which says so; no session.
  await page.goto(admin + "/ui/");
  if (!page.url().endsWith("/ui/login")) fail("no session did not lead to the login form: " + page.url());
  await page.fill("#token", "not-the-token");
  await page.click("button[type=submit]");
  await page.waitForSelector("#failed", { state: "visible" });
  const data = await page.evaluate(async () => (await fetch("/v1/dashboard/functions")).status);
  if (data !== 401) fail("data answered without a session: " + data);

  // The right one.
  await page.fill("#token", token);
  await page.click("button[type=submit]");
  await page.waitForURL(admin + "/ui/");
  const row = page.locator(`tr[data-function="${fn}"]`);
  await row.waitFor();
  const count = async () => Number((await row.locator("td.requests").getAttribute("title")).split(" ")[0]);
  const before = await count();
  if (!(before > 0)) fail("the row shows no requests: " + before);

  // A request through the gateway shows up without a reload.
  const r = await fetch(gateway + reqPath);
  if (!r.ok) fail("gateway request failed: " + r.status);
  await page.waitForFunction(([sel, n]) => {
    const td = document.querySelector(sel);
    return td && Number(td.title.split(" ")[0]) > n;
  }, [`tr[data-function="${fn}"] td.requests`, before], { timeout: 15000 });
  const instances = await row.locator("td.instances").innerText();
  if (!/busy|idle/.test(instances)) fail("no live instance shown: " + instances);
  await page.screenshot({ path: shots + "/functions.png", fullPage: true });

  // The function page: charts, instances, the live log tail.
  await row.locator("a").click();
  await page.waitForSelector("#instances tbody code");
  await page.waitForSelector("#charts .chart svg polyline");
  await page.waitForFunction(() => document.getElementById("tailstate").textContent === "live");
  const marker = "/browser-tail-" + Date.now();
  await fetch(gateway + marker);
  await page.waitForFunction((m) => document.getElementById("log").textContent.includes(m), marker, { timeout: 15000 });
  await page.screenshot({ path: shots + "/function.png", fullPage: true });

  // Rollback from the page makes a new version.
  page.on("dialog", (d) => d.accept());
  const button = page.locator("button[data-rollback]").first();
  await button.waitFor();
  await button.click();
  await page.waitForFunction(() => [...document.querySelectorAll("#versions td")].some((td) => td.textContent.includes("(current)") && !td.textContent.startsWith("v1 ")) , null, { timeout: 30000 });

  // Phone width still shows the page.
  await page.setViewportSize({ width: 390, height: 800 });
  await page.screenshot({ path: shots + "/function-phone.png" });

  // Log out: the session is gone.
  await page.click("#logout");
  await page.waitForURL(admin + "/ui/login");
  const after = await page.evaluate(async () => (await fetch("/v1/dashboard/functions")).status);
  if (after !== 401) fail("data answered after logout: " + after);
  if (outside.length) fail("the pages asked for something outside rouse: " + outside.join(", "));
  console.log("ok");
} finally {
  await browser.close();
}
