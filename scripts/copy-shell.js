// Copies providers/**/*.sh into dist/ next to the compiled modules that read them at load time
// (tsc copies only TypeScript output). Run by `npm run build`.
const fs = require("fs");
const path = require("path");

function walk(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(file);
    else if (entry.name.endsWith(".sh")) fs.cpSync(file, path.join("dist", file));
  }
}
walk("providers");
