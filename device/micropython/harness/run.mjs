#!/usr/bin/env node
// Run a MicroPython script with the guard importable, in the WebAssembly interpreter.
//   node run.mjs SCRIPT.py [--data DIR] [--heap BYTES]
// The guard package is at /frozen/fieldseal, this folder's .py files at /harness, DIR (if
// given) at /data; sys.path = ['/frozen', '/harness']. The script's output goes to stdout;
// an uncaught exception exits with status 1.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
let mpmod;
for (let d = here; d !== path.dirname(d); d = path.dirname(d)) {
  const p = path.join(d, "node_modules", "@micropython", "micropython-webassembly-pyscript", "micropython.mjs");
  if (fs.existsSync(p)) { mpmod = p; break; }
}
const { loadMicroPython } = await import(mpmod);
let script, data, heap = 2 << 20;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--data") data = argv[++i];
  else if (argv[i] === "--heap") heap = Number(argv[++i]);
  else script = argv[i];
}
const mp = await loadMicroPython({ heapsize: heap, stdout: (s) => process.stdout.write(s + "\n"), stderr: (s) => process.stderr.write(s + "\n") });
function copy(host, mem) {
  mp.FS.mkdirTree(mem);
  for (const e of fs.readdirSync(host, { withFileTypes: true })) {
    const h = path.join(host, e.name), m = `${mem}/${e.name}`;
    if (e.isDirectory()) copy(h, m);
    else mp.FS.writeFile(m, fs.readFileSync(h));
  }
}
copy(path.join(here, "..", "fieldseal"), "/frozen/fieldseal");
mp.FS.mkdirTree("/harness");
for (const f of fs.readdirSync(here)) if (f.endsWith(".py")) mp.FS.writeFile(`/harness/${f}`, fs.readFileSync(path.join(here, f)));
if (data) copy(data, "/data");
try {
  mp.runPython("import sys\nsys.path[:] = ['/frozen', '/harness']\n" + fs.readFileSync(script, "utf8"));
} catch (e) {
  process.stderr.write(e && e.name === "PythonError" ? `${e.type}: ${e.message}\n` : String(e) + "\n");
  process.exit(1);
}
