// One powered-on device: a MicroPython WebAssembly interpreter in its own worker thread.
// The interpreter's JS glue keeps state on globalThis (Module, proxy tables, a
// FinalizationRegistry), so two instances in one thread corrupt each other after a
// "reboot"; a worker per boot gives each its own globals, and power-off is terminate().
import fs from "node:fs";
import path from "node:path";
import { parentPort, workerData } from "node:worker_threads";

const { mpmodule, opts, here } = workerData;
const { loadMicroPython } = await import(mpmodule);
let mp = null;

function toMem(host, mem) {
  mp.FS.mkdirTree(mem);
  for (const e of fs.readdirSync(host, { withFileTypes: true })) {
    if (e.name.startsWith(".hw")) continue;
    const h = path.join(host, e.name), m = `${mem}/${e.name}`;
    if (e.isDirectory()) toMem(h, m);
    else mp.FS.writeFile(m, fs.readFileSync(h));
  }
}

// Mirror a MEMFS folder back to the host, so what the guard wrote survives a "reboot".
function fromMem(mem, host) {
  const FS = mp.FS;
  fs.mkdirSync(host, { recursive: true });
  const seen = new Set();
  for (const name of FS.readdir(mem)) {
    if (name === "." || name === "..") continue;
    seen.add(name);
    const m = `${mem}/${name}`, h = path.join(host, name);
    if (FS.isDir(FS.stat(m).mode)) fromMem(m, h);
    else {
      const data = FS.readFile(m);
      if (!fs.existsSync(h) || !Buffer.from(data).equals(fs.readFileSync(h))) fs.writeFileSync(h, data);
    }
  }
  for (const e of fs.readdirSync(host, { withFileTypes: true })) {
    if (seen.has(e.name) || e.name.startsWith(".hw")) continue;
    fs.rmSync(path.join(host, e.name), { recursive: true, force: true });
  }
}

function sync() {
  fromMem("/int", opts.int);
  fromMem("/ext", opts.ext);
}

function py(code) {
  try {
    return mp.runPython(code);
  } catch (e) {
    throw new Error(e && e.name === "PythonError" ? `${e.type}: ${e.message.trim().split("\n").slice(-1)[0]}` : String(e));
  }
}

async function boot(o, heap) {
  mp = await loadMicroPython({
    heapsize: heap,
    stdout: (s) => process.stderr.write(`[mp] ${s}\n`),
    stderr: (s) => process.stderr.write(`[mp] ${s}\n`),
  });
  toMem(opts.ext, "/ext");
  toMem(opts.int, "/int");
  toMem(opts.guard, "/frozen/fieldseal");
  mp.FS.writeFile("/frozen/_fieldseal_manifest.py", fs.readFileSync(opts.manifest));
  mp.FS.mkdirTree("/harness");
  mp.FS.writeFile("/harness/glue.py", fs.readFileSync(path.join(here, "glue.py")));
  py("import sys\nsys.path[:] = ['/frozen', '/harness']\nimport glue");
  mp.globals.set("_in", JSON.stringify(o));
  py("_out = glue.boot(_in)");
  const r = JSON.parse(mp.globals.get("_out"));
  sync();
  return r;
}

function step(line) {
  mp.globals.set("_in", line);
  py("_out = glue.step(_in)");
  const r = JSON.parse(mp.globals.get("_out"));
  sync();
  return r;
}

parentPort.on("message", async (m) => {
  try {
    let r = null;
    if (m.op === "boot") r = await boot(m.o, m.heap);
    else if (m.op === "step") r = step(m.line);
    else if (m.op === "write") {
      mp.FS.mkdirTree(path.posix.dirname(m.mem));
      mp.FS.writeFile(m.mem, m.data);
    } else if (m.op === "unlink") {
      try { mp.FS.unlink(m.mem); } catch {}
    } else if (m.op === "eval") r = py(m.code);
    parentPort.postMessage({ id: m.id, ok: true, r });
  } catch (e) {
    parentPort.postMessage({ id: m.id, ok: false, error: String(e && e.message ? e.message : e) });
  }
});
