/**
 * `metalboot images …`: list, show, import and delete golden images. `import --file` streams a
 * file on this host to the daemon (PUT, application/octet-stream, Content-Length); `import
 * --server-path` asks the daemon to read a file on its own host, inside its images.importDir.
 */
import { UsageError, type CliIo } from './api-client.js';
import { COMMON_USAGE, noMore, oneOf, openClient, parse, runCli } from './common.js';
import { formatBytes, formatFields, formatImageTable, json, type ImageRow } from './tables.js';

const FORMATS = ['raw', 'qcow2'] as const;

export const IMAGES_USAGE = [
  '  images [list]',
  '  images show ID',
  '  images import ID (--file PATH | --server-path PATH) [--format raw|qcow2]',
  '                   --file: a file on this host, streamed; --server-path: a file in the daemon\'s images.importDir',
  '  images rm ID                         refused while a machine\'s disk comes from it',
].join('\n');

function idArg(raw: string | undefined): string {
  if (raw === undefined || raw === '') throw new UsageError('image ID is missing');
  // The daemon checks the name; this only keeps the URL path one segment.
  if (raw.includes('/') || raw.length > 128) throw new UsageError(`${JSON.stringify(raw.slice(0, 60))} is not an image ID`);
  return raw;
}

function formatImage(i: ImageRow): string {
  return formatFields([['ID', i.id], ['Size', `${formatBytes(i.sizeBytes)} (${i.sizeBytes} bytes)`], ['SHA256', i.sha256], ['Read-only', i.readOnly ? 'yes' : 'no']]);
}

export async function runImagesCommand(argv: string[], io: CliIo): Promise<number> {
  const usage = `${IMAGES_USAGE}\n${COMMON_USAGE}`;
  return runCli(io, 'images', usage, async () => {
    const { values, positionals } = parse(argv, { file: { type: 'string' }, 'server-path': { type: 'string' }, format: { type: 'string' } });
    const [verb = 'list', ...args] = positionals;
    if ((values.file !== undefined || values['server-path'] !== undefined || values.format !== undefined) && verb !== 'import') {
      throw new UsageError('--file, --server-path and --format go with images import');
    }
    switch (verb) {
      case 'list': {
        noMore(args);
        const api = await openClient(values, io);
        const r = await api.get<{ images: ImageRow[] }>('/api/v1/images');
        io.out(values.json ? json(r.images) : formatImageTable(r.images));
        return 0;
      }
      case 'show': {
        const id = idArg(args[0]);
        noMore(args.slice(1));
        const api = await openClient(values, io);
        const i = await api.get<ImageRow>(`/api/v1/images/${encodeURIComponent(id)}`);
        io.out(values.json ? json(i) : formatImage(i));
        return 0;
      }
      case 'import': {
        const id = idArg(args[0]);
        noMore(args.slice(1));
        const format = oneOf(values.format, FORMATS, '--format');
        if ((values.file === undefined) === (values['server-path'] === undefined)) throw new UsageError('give exactly one of --file PATH (on this host) or --server-path PATH (on the daemon\'s host)');
        const api = await openClient(values, io);
        const i = values.file !== undefined
          ? await api.upload<ImageRow>(`/api/v1/images/${encodeURIComponent(id)}`, values.file, { query: { format } })
          : await api.post<ImageRow>(`/api/v1/images/${encodeURIComponent(id)}/import`, { body: { path: values['server-path'], ...(format ? { format } : {}) } });
        io.out(values.json ? json(i) : `imported ${i.id}: ${formatBytes(i.sizeBytes)} (${i.sizeBytes} bytes), sha256 ${i.sha256}\n`);
        return 0;
      }
      case 'rm': {
        const id = idArg(args[0]);
        noMore(args.slice(1));
        const api = await openClient(values, io);
        await api.delete(`/api/v1/images/${encodeURIComponent(id)}`);
        io.out(values.json ? json({ id, deleted: true }) : `deleted image ${id}\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown images command ${JSON.stringify(verb.slice(0, 40))}`);
    }
  });
}
