// Drives the runtime's dashboard in headless Chromium (Debian's /usr/bin/chromium, through
// playwright-core, which tests/run.sh installs pinned in target/js-tests): the values
// appear and update, the chart is drawn, a click on halt halts the strategy, and a
// screenshot is kept. Run by tests/e2e/dashboard.rs:
//   node check.mjs <dashboard url> <token> <strategy> <screenshot.png>
// Prints one JSON line of what it saw; exits non-zero with the reason otherwise.
import { createRequire } from "node:module";
import { join } from "node:path";

const [url, token, strategy, screenshot, modules] = process.argv.slice(2);
const require = createRequire(join(modules, "noop.js"));
const { chromium } = require("playwright-core");

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const fail = async (why) => {
  await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
  console.error(why);
  await browser.close();
  process.exit(1);
};
const page = await browser.newPage({ viewport: { width: 1300, height: 1000 } });
page.setDefaultTimeout(30_000);
await page.goto(url);
const number = async (selector) => Number((await page.textContent(selector)) || "0");
const row = `#strategies tr[data-name="${strategy}"]`;
try {
  await page.waitForFunction(() => Number(document.getElementById("prints").textContent) > 0);
  await page.waitForSelector(`${row} td.state.running`);
  const prints = await number("#prints");
  const events = await number(`${row} td.events`);
  // The values update as the replay goes on.
  await page.waitForFunction(([p, sel, e]) => Number(document.getElementById("prints").textContent) > p && Number(document.querySelector(sel).textContent) > e, [prints, `${row} td.events`, events]);
  const later = await number("#prints");
  await page.waitForSelector("#pnl .main-svg");
  // Without the token the action is refused; with it the strategy is halted.
  await page.click(`${row} button.halt`);
  await page.waitForFunction(() => document.getElementById("message").textContent.includes("refused (401)"));
  await page.fill("#token", token);
  await page.click("#save-token");
  await page.click(`${row} button.halt`);
  await page.waitForSelector(`${row} td.state.halted`);
  const message = await page.textContent("#message");
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ prints, later, events, state: "halted", message }));
} catch (e) {
  await fail("the dashboard did not behave: " + e.message);
}
await browser.close();
