// `node dist/client/man/generate.js DIR`: writes cgm.1, cgmanager.8 and cgproxy.8 into DIR
// (the build puts them in dist/man, which package.json's "man" installs).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { renderManPages } from './pages';

const dir = process.argv[2];
if (dir === undefined) {
  process.stderr.write('usage: generate.js <output-directory>\n');
  process.exit(1);
}
fs.mkdirSync(dir, { recursive: true });
for (const page of renderManPages()) fs.writeFileSync(path.join(dir, page.file), page.text);
