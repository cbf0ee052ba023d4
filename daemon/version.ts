// The package version, read once from package.json so the CLIs and the daemon agree.
import * as fs from 'node:fs';
import * as path from 'node:path';

function readVersion(): string {
  for (const candidate of [path.join(__dirname, '..', 'package.json'), path.join(__dirname, '..', '..', 'package.json')]) {
    try {
      const pkg = JSON.parse(fs.readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'cgmanager' && pkg.version) return pkg.version;
    } catch {
      // next
    }
  }
  return '0.0.0';
}

export const VERSION = readVersion();
