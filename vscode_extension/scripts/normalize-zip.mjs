// Rewrites a zip with its entries in name order, one fixed timestamp, fixed modes and deflate:
// vsce stamps generated entries with the current time, which makes every package differ.
import { createWriteStream } from 'node:fs';
import yauzl from 'yauzl';
import yazl from 'yazl';

function readEntries(path) {
  return new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true }, (err, zip) => {
      if (err) return reject(err);
      const entries = [];
      zip.on('error', reject);
      zip.on('end', () => resolve(entries));
      zip.on('entry', (entry) => {
        if (entry.fileName.endsWith('/')) return zip.readEntry();
        zip.openReadStream(entry, (err2, stream) => {
          if (err2) return reject(err2);
          const chunks = [];
          stream.on('data', (chunk) => chunks.push(chunk));
          stream.on('error', reject);
          stream.on('end', () => {
            entries.push({ name: entry.fileName, data: Buffer.concat(chunks) });
            zip.readEntry();
          });
        });
      });
      zip.readEntry();
    });
  });
}

export async function normalizeZip(from, to, mtime) {
  const entries = await readEntries(from);
  // [Content_Types].xml first, as OPC readers expect, then the rest by name.
  entries.sort((a, b) => (a.name === '[Content_Types].xml' ? -1 : b.name === '[Content_Types].xml' ? 1
    : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const zip = new yazl.ZipFile();
  for (const entry of entries) {
    zip.addBuffer(entry.data, entry.name, { mtime, mode: 0o100644, compress: true, forceDosTimestamp: true });
  }
  zip.end();
  await new Promise((resolve, reject) => {
    const output = createWriteStream(to);
    output.on('close', resolve);
    output.on('error', reject);
    zip.outputStream.pipe(output);
  });
}
