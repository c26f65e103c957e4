#!/usr/bin/env node
// Compile .py files to bytecode .mpy with the WebAssembly mpy-cross (@pybricks/mpy-cross-v6).
//   node mpycross.mjs SRC.py OUT.mpy [SRC.py OUT.mpy ...]
//   node mpycross.mjs --check SRC.py ...   compile only; one JSON line per file {"file","ok","err"}
// Used by the harness tests to build fixtures and to check that the guard compiles to
// bytecode for freezing.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "x.js"));
const js = require.resolve("@pybricks/mpy-cross-v6/build/mpy-cross-v6.js");
const factory = require(js);
const wasm = new WebAssembly.Module(fs.readFileSync(path.join(path.dirname(js), "mpy-cross-v6.wasm")));

function compile(source, name) {
  return new Promise((resolve) => {
    const events = ["uncaughtException", "unhandledRejection"];
    const before = new Map(events.map((e) => [e, new Set(process.listeners(e))]));
    const finish = (res) => {
      for (const e of events) for (const l of process.listeners(e)) if (!before.get(e).has(l)) process.removeListener(e, l);
      resolve(res);
    };
    try {
      const p = factory({
        arguments: ["-s", name, "input.py"],
        inputFileContents: source,
        instantiateWasm(imports, receive) {
          const inst = new WebAssembly.Instance(wasm, imports);
          receive(inst, wasm);
          return inst.exports;
        },
        callback(status, mpy, out, err) { finish({ status, mpy, err: out.concat(err).join("\n") }); },
      });
      if (p && typeof p.catch === "function") p.catch((e) => finish({ status: 1, err: String(e) }));
    } catch (e) {
      finish({ status: 1, err: String((e && e.message) || e) });
    }
  });
}

const args = process.argv.slice(2);
const check = args[0] === "--check";
const files = check ? args.slice(1) : args;
let failed = 0;
for (let i = 0; i < files.length; i += check ? 1 : 2) {
  const src = files[i];
  const r = await compile(fs.readFileSync(src, "utf8"), path.basename(src));
  if (check) console.log(JSON.stringify({ file: src, ok: r.status === 0, err: r.status === 0 ? "" : r.err }));
  if (r.status !== 0) { failed++; if (!check) console.error(`${src}: ${r.err}`); continue; }
  if (!check) fs.writeFileSync(files[i + 1], r.mpy);
}
process.exit(failed ? 1 : 0);
