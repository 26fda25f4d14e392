// The form end to end in a real browser: loads the demo site's home page from
// the daemon (`funnel up`, on demo.localhost), fills and submits the contact form as a visitor would, waits
// for the thank-you page and its tracking beacon. Prints the final address.
//   node e2e.mjs http://demo.localhost:PORT/
import { chromium } from "playwright-core";

const [url] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run"],
});
const page = await browser.newPage();
const beacons = [];
page.on("request", (r) => { if (r.url().endsWith("/t")) beacons.push(r.postData()); });
await page.goto(url + "?utm_source=e2e&utm_campaign=browser", { waitUntil: "load" });
const form = page.locator('form[action$="/f/demo/contact-form"]');
await form.getByLabel("Full name").fill("Grace Hopper");
await form.getByLabel("Work email").fill("grace@navy.example");
await form.getByLabel("Company").fill("US Navy");
await form.getByLabel("How can we help?").fill("We would like a demo for our data team.");
await Promise.all([
  page.waitForURL(/\/thank-you/),
  form.getByRole("button", { name: "Send message" }).click(),
]);
await page.waitForLoadState("load");
// The beacon is sent on load; give it a moment to arrive.
await page.waitForTimeout(1000);
console.log(page.url().replace(/ft=[^&]+/, "ft=TOKEN"));
console.error(`beacons sent: ${beacons.length}`);
await browser.close();
