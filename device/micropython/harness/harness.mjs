#!/usr/bin/env node
// fieldseal MicroPython harness: runs the guard (device/micropython/fieldseal) in the real
// MicroPython WebAssembly interpreter with host folders as external and internal storage,
// driven by JSON lines on stdin; one JSON line answers each request on stdout.
// Protocol: device/micropython/README.md.
//
//   node harness.mjs --ext DIR --int DIR --manifest _fieldseal_manifest.py [--now UNIX]
//                    [--log-cap BYTES] [--app MODULE] [--heap BYTES]
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";

const here = path.dirname(fileURLToPath(import.meta.url));

function findModules() {
  for (let d = here; d !== path.dirname(d); d = path.dirname(d)) {
    const p = path.join(d, "node_modules", "@micropython", "micropython-webassembly-pyscript", "micropython.mjs");
    if (fs.existsSync(p)) return p;
  }
  throw new Error("node_modules/@micropython/micropython-webassembly-pyscript not found (run npm ci)");
}
const mpmodule = findModules();

const opts = { guard: path.join(here, "..", "fieldseal"), heap: 2 << 20, logCap: 12288 };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i], v = process.argv[i + 1];
  switch (a) {
    case "--ext": opts.ext = v; i++; break;
    case "--int": opts.int = v; i++; break;
    case "--manifest": opts.manifest = v; i++; break;
    case "--guard": opts.guard = v; i++; break;
    case "--now": opts.now = Number(v); i++; break;
    case "--log-cap": opts.logCap = Number(v); i++; break;
    case "--app": opts.app = v; i++; break;
    case "--heap": opts.heap = Number(v); i++; break;
    default: console.error(`harness: unknown argument ${a}`); process.exit(2);
  }
}
if (!opts.ext || !opts.int || !opts.manifest) {
  console.error("usage: harness.mjs --ext DIR --int DIR --manifest FILE [--now UNIX] [--log-cap N] [--app MODULE]");
  process.exit(2);
}
fs.mkdirSync(opts.int, { recursive: true });

// Simulated hardware that outlives the interpreter: clock, cover switch, tamper latch.
// Kept beside the internal storage, outside what the guard sees.
const hwFile = path.join(opts.int, ".hw.json");
let hw = { now: opts.now || Math.floor(Date.now() / 1000), cover: false, latch: false };
if (fs.existsSync(hwFile)) hw = { ...hw, ...JSON.parse(fs.readFileSync(hwFile, "utf8")) };
if (opts.now) hw.now = opts.now;
const saveHw = () => fs.writeFileSync(hwFile, JSON.stringify(hw));

// The files as they were when the harness started, for "restore".
const originals = new Map();
function snapshot(dir, rel = "") {
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) snapshot(dir, r);
    else originals.set(r, fs.readFileSync(path.join(dir, r)));
  }
}
snapshot(opts.ext);

let dev = null; // the powered-on device's worker, null = powered off
let calls = 0;
const pending = new Map();

function call(op, msg = {}) {
  const id = ++calls;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    dev.postMessage({ ...msg, op, id });
  });
}

async function powerOff() {
  if (!dev) return;
  const w = dev;
  dev = null;
  for (const p of pending.values()) p.reject(new Error("powered-off"));
  pending.clear();
  await w.terminate();
}

async function boot(c) {
  await powerOff();
  dev = new Worker(new URL("./device-worker.mjs", import.meta.url), { workerData: { mpmodule, opts, here } });
  dev.on("message", (m) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.ok) p.resolve(m.r);
    else p.reject(new Error(m.error));
  });
  const w = dev;
  const dead = (e) => {
    // the interpreter died (a WebAssembly trap): the device is off, like after a crash
    if (dev === w) dev = null;
    for (const p of pending.values()) p.reject(e instanceof Error ? e : new Error(`device worker exited (${e})`));
    pending.clear();
  };
  dev.on("error", dead);
  dev.on("exit", dead);
  if (c.cover !== undefined) hw.cover = !!c.cover;
  const o = { now: hw.now, cover: hw.cover, latch: hw.latch, log_cap: c.log_cap || opts.logCap,
    app: c.app === undefined ? opts.app : c.app, cut_write: c.cut_write, cut_byte: c.cut_byte };
  return call("boot", { o, heap: c.heap || opts.heap });
}

function extPath(p) {
  if (!p || p.includes("..") || p.startsWith("/")) throw new Error(`bad path ${p}`);
  return p;
}

function payloadOf(c) {
  if (c.b64 !== undefined) return Buffer.from(c.b64, "base64");
  if (c.hex !== undefined) return Buffer.from(c.hex, "hex");
  if (c.text !== undefined) return Buffer.from(c.text, "utf8");
  return null;
}

// The attacker's hand on external storage: works powered or not.
async function editFile(c) {
  const rel = extPath(c.path), host = path.join(opts.ext, rel);
  let data;
  if (c.cmd === "restore") {
    data = c.b64 !== undefined || c.hex !== undefined ? payloadOf(c) : originals.get(rel);
    if (!data) throw new Error(`no original of ${rel}`);
  } else if (c.cmd === "remove") {
    fs.rmSync(host, { force: true });
    if (dev) await call("unlink", { mem: `/ext/${rel}` });
    return;
  } else {
    data = payloadOf(c);
    if (!data) {
      data = Buffer.from(fs.readFileSync(host));
      if (c.flip !== undefined) data[c.flip] ^= 0xff;
      if (c.truncate !== undefined) data = data.subarray(0, c.truncate);
    }
  }
  fs.mkdirSync(path.dirname(host), { recursive: true });
  fs.writeFileSync(host, data);
  if (dev) await call("write", { mem: `/ext/${rel}`, data: new Uint8Array(data) });
}

async function handle(c) {
  switch (c.cmd) {
    case "boot": {
      const r = await boot(c);
      if (r.hw) Object.assign(hw, r.hw);
      if (r.powered === false) await powerOff();
      saveHw();
      return r;
    }
    case "power": // {"cmd":"power","on":false}: cut power now
      if (c.on) return handle({ ...c, cmd: "boot" });
      await powerOff(); saveHw();
      return { ok: true, powered: false };
    case "edit": case "restore": case "remove":
      await editFile(c);
      return { ok: true };
    case "quit":
      await powerOff(); saveHw();
      return { ok: true, quit: true };
  }
  if (!dev) {
    // unpowered: the clock runs and the cover can be opened; the latch records it (D9)
    if (c.cmd === "tick") { hw.now += c.s || 1; saveHw(); return { ok: true, powered: false, hw }; }
    if (c.cmd === "cover") {
      hw.cover = !!c.open;
      if (c.open) hw.latch = true;
      saveHw();
      return { ok: true, powered: false, hw };
    }
    return { ok: false, error: "powered-off", powered: false };
  }
  const r = await call("step", { line: JSON.stringify(c) });
  if (r.hw) Object.assign(hw, r.hw);
  saveHw();
  if (r.powered === false) await powerOff();
  return r;
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
const queue = [];
let busy = false;
async function pump() {
  if (busy) return;
  busy = true;
  while (queue.length) {
    const line = queue.shift();
    let c, r;
    try {
      c = JSON.parse(line);
      r = await handle(c);
    } catch (e) {
      r = { ok: false, error: String(e && e.message ? e.message : e) };
    }
    if (c && c.id !== undefined) r.id = c.id;
    process.stdout.write(JSON.stringify(r) + "\n");
    if (r.quit) process.exit(0);
  }
  busy = false;
}
rl.on("line", (line) => { if (line.trim()) { queue.push(line); pump(); } });
rl.on("close", async () => {
  while (busy || queue.length) await new Promise((r) => setTimeout(r, 10));
  await powerOff();
  saveHw();
  process.exit(0);
});
