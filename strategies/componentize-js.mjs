// Builds a JavaScript strategy into a component with componentize-js (StarlingMonkey),
// called by strategies/build.sh, which installs the pinned componentize-js beside a copy
// of this file: node componentize-js.mjs <source.js> <wit dir> <world> <out.wasm>.
//
// WASI's http and fetch-event features are left out: a strategy gets no network, and the
// runtime refuses a component that imports wasi:http.
import { componentize } from "@bytecodealliance/componentize-js";
import { writeFile } from "node:fs/promises";

const [sourcePath, witPath, worldName, out] = process.argv.slice(2);
if (!out) {
  console.error("usage: node componentize-js.mjs <source.js> <wit dir> <world> <out.wasm>");
  process.exit(2);
}
const { component } = await componentize({ sourcePath, witPath, worldName, disableFeatures: ["http", "fetch-event"] });
await writeFile(out, component);
