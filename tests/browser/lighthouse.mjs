// Lighthouse (mobile, the default form factor) on each URL; writes the four
// category scores per URL as JSON:  node lighthouse.mjs OUT.json URL…
import lighthouse from "lighthouse";
import * as chromeLauncher from "chrome-launcher";
import { writeFileSync } from "node:fs";

const [out, ...urls] = process.argv.slice(2);
const chrome = await chromeLauncher.launch({
  chromePath: process.env.CHROMIUM || "/usr/bin/chromium",
  chromeFlags: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const results = [];
for (const url of urls) {
  const r = await lighthouse(url, {
    port: chrome.port,
    output: "json",
    onlyCategories: ["performance", "accessibility", "best-practices", "seo"],
    logLevel: "error",
  });
  const c = r.lhr.categories;
  const scores = Object.fromEntries(Object.entries(c).map(([k, v]) => [k, Math.round((v.score ?? 0) * 100)]));
  const failing = Object.values(r.lhr.audits)
    .filter((a) => a.score !== null && a.score < 0.9 && a.scoreDisplayMode !== "informative" && a.scoreDisplayMode !== "notApplicable")
    .map((a) => a.id);
  results.push({ url, scores, failing });
  process.stderr.write(`${url}: ${JSON.stringify(scores)}\n`);
}
await chrome.kill();
writeFileSync(out, JSON.stringify(results, null, 2));
