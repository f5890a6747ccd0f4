// sharp reference worker for the thumbnail benchmarks: the same job as our resizers, driven over stdin/stdout.
//
// Job: decode once (sharp's shrink-on-load), apply EXIF orientation, 1024x1024 "inside" box -> encode; the 256x256 box
// is made from the 1024 pixels (not a second decode) -> encode. JPEG q80, 4:2:0 chroma, baseline, optimised Huffman
// tables unless told otherwise (as our Pillow resizer), mozjpeg off, to match our encoders; WebP q80 effort 4 for inputs with alpha.
// Caches off (sharp.cache(false)), one libvips thread (sharp.concurrency(1)), one job at a time.
//
// Protocol (one JSON object per line, same as benchmarks/worker.py):
//   -> {"op":"load","id":ID,"path":P}   <- {"ok":true}
//   -> {"op":"run","id":ID,"save_dir":D|null}  <- {"ok":true,"wall_ms","cpu_ms","outputs":[{name,width,height,format,bytes,path?}]}
//   -> {"op":"mem"}                     <- {"ok":true,"hwm_kb","rss_kb"}
//   -> {"op":"exit"}
// First line written: {"ready":true,"variant":"sharp","versions":{...},"pid":N,"hwm_kb","rss_kb"}
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');

let sharp;
try {
  sharp = require('sharp');
} catch (err) {
  process.stdout.write(JSON.stringify({ ready: false, error: { code: 'BENCH_REFERENCE_MISSING',
    message: `Expected the npm package sharp in benchmarks/node_modules (run make bench-deps) but received: ${err.message}` } }) + '\n');
  process.exit(3);
}

sharp.cache(false);
sharp.concurrency(1);

const SIZES = [['large', 1024, 1024], ['small', 256, 256]];
// Encoder options: defaults here, overridden by the JSON object in argv[2] (benchmarks/workers.py passes the values
// from benchmarks/imaging.py so every variant shares one source of truth).
const CONFIG = process.argv[2] ? JSON.parse(process.argv[2]) : {};
const JPEG = { quality: 80, chromaSubsampling: '4:2:0', progressive: false, optimiseCoding: true, mozjpeg: false, ...(CONFIG.jpeg || {}) };
const WEBP = { quality: 80, effort: 4, ...(CONFIG.webp || {}) };
const inputs = new Map();

function mem() {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (key) => {
    const m = status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : null;
  };
  return { hwm_kb: kb('VmHWM'), rss_kb: kb('VmRSS') };
}

function encode(pipeline, fmt) {
  return fmt === 'webp' ? pipeline.webp(WEBP).toBuffer({ resolveWithObject: true })
    : pipeline.jpeg(JPEG).toBuffer({ resolveWithObject: true });
}

async function job(data) {
  const input = Buffer.from(data); // copy the bytes, as the Python variants do
  const [, w0, h0] = SIZES[0];
  const first = await sharp(input, { failOn: 'error' })
    .autoOrient()
    .resize(w0, h0, { fit: 'inside', withoutEnlargement: true })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const raw = { width: first.info.width, height: first.info.height, channels: first.info.channels };
  const fmt = raw.channels === 4 || raw.channels === 2 ? 'webp' : 'jpeg';
  const outputs = [];
  const large = await encode(sharp(first.data, { raw }), fmt);
  outputs.push(['large', large]);
  for (const [name, w, h] of SIZES.slice(1)) {
    const out = await encode(sharp(first.data, { raw }).resize(w, h, { fit: 'inside', withoutEnlargement: true }), fmt);
    outputs.push([name, out]);
  }
  return outputs.map(([name, o]) => ({ name, width: o.info.width, height: o.info.height, format: fmt, data: o.data }));
}

async function handle(req) {
  switch (req.op) {
    case 'load': {
      inputs.set(req.id, fs.readFileSync(req.path));
      return { ok: true };
    }
    case 'run': {
      const data = inputs.get(req.id);
      if (!data) {
        return { ok: false, error: { code: 'BENCH_INVALID_ARGUMENT', message: `Expected a loaded input id for run but received ${JSON.stringify(req.id)}` } };
      }
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      const outs = await job(data);
      const t1 = process.hrtime.bigint();
      const c1 = process.cpuUsage(c0);
      const outputs = outs.map((o) => {
        const rec = { name: o.name, width: o.width, height: o.height, format: o.format, bytes: o.data.length };
        if (req.save_dir) {
          rec.path = path.join(req.save_dir, `${o.name}.${o.format === 'jpeg' ? 'jpg' : o.format}`);
          fs.writeFileSync(rec.path, o.data);
        }
        return rec;
      });
      return { ok: true, wall_ms: Number(t1 - t0) / 1e6, cpu_ms: (c1.user + c1.system) / 1000, outputs };
    }
    case 'mem':
      return { ok: true, ...mem() };
    default:
      return { ok: false, error: { code: 'BENCH_INVALID_ARGUMENT', message: `Expected op load|run|mem|exit but received ${JSON.stringify(req.op)}` } };
  }
}

async function main() {
  const versions = { sharp: sharp.versions.sharp, libvips: sharp.versions.vips, node: process.versions.node };
  process.stdout.write(JSON.stringify({ ready: true, variant: 'sharp', versions, pid: process.pid, ...mem() }) + '\n');
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let req;
    try {
      req = JSON.parse(line);
    } catch (err) {
      process.stdout.write(JSON.stringify({ ok: false, error: { code: 'BENCH_INVALID_ARGUMENT', message: `Expected one JSON object per line but received ${JSON.stringify(line.slice(0, 80))}` } }) + '\n');
      continue;
    }
    if (req.op === 'exit') break;
    let res;
    try {
      res = await handle(req);
    } catch (err) {
      const oom = /memory|alloc/i.test(String(err && err.message));
      res = { ok: false, error: { code: oom ? 'BENCH_OUT_OF_MEMORY' : 'BENCH_WORKER_FAILED', message: String(err && err.message) } };
    }
    process.stdout.write(JSON.stringify(res) + '\n');
  }
  process.exit(0);
}

main();
