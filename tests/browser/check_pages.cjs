// Opens pages of a running feedserver in headless Chromium (driven by playwright-core,
// with the system's chromium: nothing is downloaded), runs axe-core on each, and writes
// screenshots at phone and desktop width. Used by tests/test_browser.py.
//
// usage: node check_pages.cjs JOB.json
//   JOB = {"chromium": path, "axe": path of axe.min.js, "base": "http://127.0.0.1:PORT",
//          "pages": [{"name": ..., "path": ...}], "out": screenshot folder,
//          "profile": a fresh user-data folder}
// prints one JSON object: {name: {"status", "violations": [...], "articles", "title",
//   "scheme_dark_background", "overflow": {width: pixels wider than the viewport},
//   "layout": {width: {"outside", "tables", "groups", "split"}}}}
"use strict";
const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

const WIDTHS = [
  { name: "phone", width: 390, height: 844 },
  { name: "desktop", width: 1280, height: 900 },
];

// Run in the page: what sticks out of the viewport where no scrolling box holds it, where
// each table's last column ends, and which groups of links meant to stay whole were split.
function layout() {
  const width = document.documentElement.clientWidth;
  const scroller = (element) => {
    for (let box = element.parentElement; box && box !== document.body; box = box.parentElement) {
      const overflow = getComputedStyle(box).overflowX;
      if (overflow === "auto" || overflow === "scroll") return box;
    }
    return null;
  };
  const describe = (element) =>
    element.tagName.toLowerCase() + (element.className ? "." + element.className : "");
  const outside = [];
  for (const element of document.body.querySelectorAll("*")) {
    const rect = element.getBoundingClientRect();
    if (rect.width > 0 && rect.right > width + 0.5 && !scroller(element)) {
      outside.push(`${describe(element)} ends at ${Math.round(rect.right)}`);
    }
  }
  const tables = Array.from(document.querySelectorAll("main table")).map((table) => {
    const row = table.rows[0];
    const last = row ? row.cells[row.cells.length - 1] : null;
    const box = scroller(table);
    return {
      id: table.id,
      lastColumnRight: last ? last.getBoundingClientRect().right : 0,
      scrollerRight: box ? box.getBoundingClientRect().right : null,
      width,
    };
  });
  // A group is split when its links are not all on one line, or a link itself breaks.
  const groups = document.querySelectorAll("ul.subsets .formats");
  const split = Array.from(groups)
    .filter((group) => {
      const links = Array.from(group.querySelectorAll("a"));
      const tops = new Set(links.map((link) => Math.round(link.getBoundingClientRect().top)));
      return tops.size > 1 || links.some((link) => link.getClientRects().length > 1);
    })
    .map((group) => group.textContent);
  return { outside: outside.slice(0, 10), tables, groups: groups.length, split };
}

async function main() {
  const job = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const axeSource = fs.readFileSync(job.axe, "utf8");
  const context = await chromium.launchPersistentContext(job.profile, {
    executablePath: job.chromium,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  // The articles' images live on other sites: a plain picture of their size stands in for
  // them, so no test reaches out and the screenshots show the layout as it will be.
  await context.route(
    (url) => !url.href.startsWith(job.base),
    (route) =>
      route.fulfill({
        status: 200,
        contentType: "image/svg+xml",
        body:
          '<svg xmlns="http://www.w3.org/2000/svg" width="800" height="500">' +
          '<rect width="800" height="500" fill="#8a9bb0"/>' +
          '<circle cx="560" cy="170" r="80" fill="#d8dee6"/>' +
          '<path d="M0 500 L260 220 L470 420 L600 300 L800 500 Z" fill="#5a6b80"/></svg>',
      }),
  );
  const page = context.pages()[0] || (await context.newPage());
  const results = {};
  for (const item of job.pages) {
    const result = { violations: [], overflow: {}, layout: {} };
    for (const scheme of ["light", "dark"]) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const size of WIDTHS) {
        await page.setViewportSize({ width: size.width, height: size.height });
        const response = await page.goto(job.base + item.path, { waitUntil: "load" });
        result.status = response.status();
        result.contentType = response.headers()["content-type"];
        // Evaluated through the DevTools protocol: the page's script-free CSP does not apply.
        await page.evaluate(axeSource);
        const report = await page.evaluate(() => axe.run(document));
        result.rulesPassed = report.passes.length;
        for (const violation of report.violations) {
          result.violations.push({
            scheme,
            width: size.width,
            id: violation.id,
            impact: violation.impact,
            help: violation.help,
            targets: violation.nodes.map((node) => node.target.join(" ")).slice(0, 5),
          });
        }
        result.overflow[`${scheme}-${size.width}`] = await page.evaluate(
          () => document.documentElement.scrollWidth - window.innerWidth,
        );
        result.layout[`${scheme}-${size.width}`] = await page.evaluate(layout);
        if (scheme === "light" || size.name === "phone") {
          const file = `${item.name}-${size.name}-${scheme}.png`;
          await page.screenshot({ path: path.join(job.out, file), fullPage: true });
        }
        if (scheme === "dark") {
          result.darkBackground = await page.evaluate(
            () => getComputedStyle(document.documentElement).backgroundColor,
          );
        } else {
          result.lightBackground = await page.evaluate(
            () => getComputedStyle(document.documentElement).backgroundColor,
          );
        }
      }
    }
    result.title = await page.title();
    result.articles = await page.evaluate(() =>
      Array.from(document.querySelectorAll("main article h3 a")).map((a) => a.href),
    );
    result.scripts = await page.evaluate(() => document.scripts.length);
    results[item.name] = result;
  }
  await context.close();
  process.stdout.write(JSON.stringify(results));
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error) + "\n");
  process.exit(1);
});
