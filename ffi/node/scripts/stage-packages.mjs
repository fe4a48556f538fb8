// Stages the npm packages to publish (the napi-rs layout), in OUT_DIR:
//   OUT_DIR/mcp-session-core/        this package, its package.json given
//                                    `optionalDependencies` on every
//                                    per-platform package (same version)
//   OUT_DIR/<platform>/              this machine's per-platform package
//                                    (npm/<platform>/ + the library)
// Then `npm publish` (or `npm pack`) each directory; a release job runs this
// on each platform for its library and publishes the main package once.
// The checked-in package.json has no optionalDependencies, so a checkout's
// `npm ci` never fetches an unpublished (or someone else's) package name.
//
// Usage: node scripts/stage-packages.mjs OUT_DIR [LIBRARY]
// LIBRARY defaults to <repo>/target/release (or $CARGO_TARGET_DIR/release).
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { platformPackageName } from '../index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeDir = path.resolve(here, '..');
const repo = path.resolve(nodeDir, '..', '..');
const [outArg, libArg] = process.argv.slice(2);
if (!outArg) {
  console.error('usage: node scripts/stage-packages.mjs OUT_DIR [LIBRARY]');
  process.exit(2);
}
const out = path.resolve(outArg);
const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));
const main = readJson(path.join(nodeDir, 'package.json'));

// The per-platform packages, all at the main package's version.
const optional = {};
for (const dir of readdirSync(path.join(nodeDir, 'npm'), { withFileTypes: true })) {
  if (!dir.isDirectory()) continue;
  const pkg = readJson(path.join(nodeDir, 'npm', dir.name, 'package.json'));
  if (pkg.name !== `mcp-session-core-${dir.name}` || pkg.version !== main.version) {
    console.error(`error: npm/${dir.name}: ${pkg.name}@${pkg.version}, want mcp-session-core-${dir.name}@${main.version}`);
    process.exit(1);
  }
  optional[pkg.name] = pkg.version;
}

// The main package: its `files`, and the manifest with optionalDependencies.
const mainOut = path.join(out, 'mcp-session-core');
mkdirSync(mainOut, { recursive: true });
for (const file of main.files) cpSync(path.join(nodeDir, file), path.join(mainOut, file), { recursive: true });
writeFileSync(path.join(mainOut, 'package.json'), `${JSON.stringify({ ...main, optionalDependencies: optional }, null, 2)}\n`);

// This machine's per-platform package, with the library.
const name = platformPackageName();
const platform = name.slice('mcp-session-core-'.length);
const platformDir = path.join(nodeDir, 'npm', platform);
if (!existsSync(platformDir)) {
  console.error(`error: no per-platform package for ${name} (npm/${platform} is missing)`);
  process.exit(1);
}
const pkg = readJson(path.join(platformDir, 'package.json'));
const [libFile] = pkg.files;
const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(repo, process.env.CARGO_TARGET_DIR) : path.join(repo, 'target');
const library = libArg ?? path.join(targetDir, 'release', libFile);
if (!existsSync(library)) {
  console.error(`error: ${library} not found: run \`cargo build --release\` at the repository root first`);
  process.exit(1);
}
const platformOut = path.join(out, platform);
mkdirSync(platformOut, { recursive: true });
copyFileSync(path.join(platformDir, 'package.json'), path.join(platformOut, 'package.json'));
copyFileSync(library, path.join(platformOut, libFile));
console.log(`staged ${main.name}@${main.version} and ${name}@${pkg.version} (${library}) in ${out}`);
