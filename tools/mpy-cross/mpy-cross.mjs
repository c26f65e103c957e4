#!/usr/bin/env node
// mpy-cross for machines without a native one: runs the WebAssembly build of MicroPython's
// mpy-cross from npm (@pybricks/mpy-cross-v6, MicroPython 1.19, .mpy v6) under Node.js.
//
// Two modes:
//
//   node mpy-cross.mjs [-o OUT] [-s NAME] [mpy-cross options] FILE.py
//       behaves like mpy-cross for one file (OUT defaults to FILE.mpy).
//
//   node mpy-cross.mjs --batch < jobs.json
//       compiles many files in this one process (what `fieldseal build` uses; starting
//       Node and the WebAssembly module once per file would dominate a build). Input:
//         {"options": ["-march=..."], "jobs": [{"src": "/abs/a.py", "out": "/abs/a.mpy", "name": "a.py"}]}
//       "name" is embedded in the .mpy (-s) and shown in tracebacks. Output: one JSON line
//       per job as it finishes, {"i": 0, "ok": true} or {"i": 0, "ok": false, "err": "..."};
//       exit status 0 when every job succeeded, 1 otherwise, 2 on bad input.
//
// The npm package is found through FIELDSEAL_NODE_MODULES (a node_modules folder) or, by
// default, the node_modules folders above this file.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

function loadMpyCross() {
  const bases = [];
  if (process.env.FIELDSEAL_NODE_MODULES) bases.push(path.join(process.env.FIELDSEAL_NODE_MODULES, 'x.js'));
  try { bases.push(new URL(import.meta.url).pathname); } catch { /* run with -e */ }
  bases.push(path.join(process.cwd(), 'x.js'));
  for (const base of bases) {
    try {
      const require = createRequire(base);
      const js = require.resolve('@pybricks/mpy-cross-v6/build/mpy-cross-v6.js');
      const factory = require(js);
      const wasm = new WebAssembly.Module(fs.readFileSync(path.join(path.dirname(js), 'mpy-cross-v6.wasm')));
      return { factory, wasm };
    } catch { /* try the next base */ }
  }
  throw new Error('@pybricks/mpy-cross-v6 not found: run "npm ci" in the fieldseal repository or set FIELDSEAL_NODE_MODULES');
}

const { factory, wasm } = loadMpyCross();

// compile runs mpy-cross once on a fresh instance of the (compiled once) module. The
// Emscripten glue adds process listeners per instance; they are removed afterwards so a
// thousand files do not keep a thousand 16 MiB heaps alive.
function compile(source, name, options) {
  return new Promise((resolve) => {
    const events = ['uncaughtException', 'unhandledRejection'];
    const before = new Map(events.map((e) => [e, new Set(process.listeners(e))]));
    const cleanup = () => {
      for (const e of events) for (const l of process.listeners(e)) if (!before.get(e).has(l)) process.removeListener(e, l);
    };
    const finish = (res) => { cleanup(); resolve(res); };
    try {
      const p = factory({
        // The glue writes the source to this name and reads the output from name.mpy.
        arguments: [...options, '-s', name, 'input.py'],
        inputFileContents: source,
        instantiateWasm(imports, receive) {
          const inst = new WebAssembly.Instance(wasm, imports);
          receive(inst, wasm);
          return inst.exports;
        },
        callback(status, mpy, out, err) {
          finish({ status, mpy, out: out.concat(err).join('\n').replaceAll('"input.py"', JSON.stringify(name)) });
        },
      });
      if (p && typeof p.catch === 'function') p.catch((e) => finish({ status: 1, out: String(e) }));
    } catch (e) {
      finish({ status: 1, out: String(e && e.message || e) });
    }
  });
}

async function batch() {
  let req;
  try {
    req = JSON.parse(fs.readFileSync(0, 'utf8'));
  } catch (e) {
    process.stderr.write(`mpy-cross --batch: bad job list on stdin: ${e.message}\n`);
    return 2;
  }
  const options = req.options || [];
  let failed = 0;
  for (let i = 0; i < (req.jobs || []).length; i++) {
    const job = req.jobs[i];
    let res;
    try {
      res = await compile(fs.readFileSync(job.src), job.name || path.basename(job.src), options);
      if (res.status === 0 && res.mpy) fs.writeFileSync(job.out, res.mpy);
    } catch (e) {
      res = { status: 1, out: String(e && e.message || e) };
    }
    const ok = res.status === 0 && !!res.mpy;
    if (!ok) failed++;
    process.stdout.write(JSON.stringify(ok ? { i, ok } : { i, ok, err: res.out || `mpy-cross exit status ${res.status}` }) + '\n');
  }
  return failed ? 1 : 0;
}

async function single(argv) {
  let out;
  let name;
  const options = [];
  let src;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-o') out = argv[++i];
    else if (a === '-s') name = argv[++i];
    else if (a === '-X' || a === '-march-flags') options.push(a, argv[++i]);
    else if (a.startsWith('-')) options.push(a);
    else src = a;
  }
  if (!src) {
    process.stderr.write('usage: mpy-cross.mjs [-o OUT] [-s NAME] [options] FILE.py | --batch < jobs.json\n');
    return 2;
  }
  const res = await compile(fs.readFileSync(src), name || src, options);
  if (res.out) process.stderr.write(res.out + '\n');
  if (res.status !== 0 || !res.mpy) return res.status || 1;
  fs.writeFileSync(out || src.replace(/\.py$/, '') + '.mpy', res.mpy);
  return 0;
}

// argv[1] is this script's path when run as a file, but absent under "node -e" (how the
// fieldseal binary runs its embedded copy), so look for --batch anywhere.
const code = await (process.argv.slice(1).includes('--batch') ? batch() : single(process.argv.slice(2)));
process.exitCode = code;
