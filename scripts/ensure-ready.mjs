#!/usr/bin/env node
// Makes `npm start`, `npm test` and the benchmarks work on a fresh clone with no manual step:
// installs dependencies when node_modules is missing or older than the lockfile, and
// compiles TypeScript when dist/ is missing or older than any source file.
// Uses only Node built-ins, because it runs before dependencies exist.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function newestIn(dir) {
  let newest = 0;
  if (!existsSync(dir)) return newest;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestIn(full) : mtime(full));
  }
  return newest;
}

function run(args) {
  console.error(`[metaq] ${args.join(' ')}`);
  const result = spawnSync(args[0], args.slice(1), { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`[metaq] '${args.join(' ')}' failed (exit ${result.status ?? result.signal}).`);
    process.exit(result.status ?? 1);
  }
}

const installedMarker = join(root, 'node_modules', '.package-lock.json');
const lockfile = join(root, 'package-lock.json');
if (!existsSync(installedMarker) || mtime(installedMarker) < mtime(lockfile)) {
  run([npm, existsSync(lockfile) ? 'ci' : 'install', '--no-audit', '--no-fund']);
}

const builtMarker = join(root, 'dist', 'src', 'cli', 'metaq-server.js');
const sourcesChanged = Math.max(newestIn(join(root, 'src')), mtime(join(root, 'tsconfig.json')), mtime(join(root, 'tsconfig.build.json')));
if (!existsSync(builtMarker) || mtime(builtMarker) < sourcesChanged) {
  run([process.execPath, join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json']);
}
