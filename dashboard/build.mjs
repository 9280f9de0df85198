// Copy the uPlot build into the worker's static files, so the dashboard needs no CDN and no
// Node at run time. Run through `make dashboard` (npm ci && npm run build).
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, "node_modules", "uplot");
const out = join(here, "..", "streams", "web", "static", "vendor");
const version = JSON.parse(readFileSync(join(src, "package.json"), "utf8")).version;

mkdirSync(out, { recursive: true });
copyFileSync(join(src, "dist", "uPlot.iife.min.js"), join(out, "uPlot.iife.min.js"));
copyFileSync(join(src, "dist", "uPlot.min.css"), join(out, "uPlot.min.css"));
copyFileSync(join(src, "LICENSE"), join(out, "uPlot.LICENSE.txt"));
writeFileSync(join(out, "VERSION"), `uplot ${version}\n`);
console.log(`vendored uplot ${version} into ${out}`);
