/**
 * Capture (CloudStack's backup): the agent streams one of the machine's disks into the image
 * store as a new image (PUT /agent/v1/<mac>/capture, written sparse by the store), which records
 * its sha256; the agent reads the disk's own sha256 and the operation succeeds only when the two
 * agree. The new image can be deployed to another machine or used as a golden image for sanboot.
 */
import type { Readable } from 'node:stream';
import type { Mac } from '../net/mac.js';
import type { ImageInfo } from '../storage/backend.js';
import type { Operation } from './operations.js';
import { startAgentOperation, type AgentOperationDeps } from './agent-operation.js';
import { MachineError } from './record.js';

export interface CaptureDeps extends AgentOperationDeps {
  readonly images: { get(id: string): Promise<unknown>; importStream(id: string, body: Readable, format: 'raw', sizeBytes: number | undefined): Promise<ImageInfo> };
}

export interface CaptureSpec {
  readonly image: string;
  /** A disk name or serial; absent: the machine's smallest disk. */
  readonly disk?: string;
}

export async function capture(d: CaptureDeps, mac: Mac, spec: CaptureSpec, actor: string): Promise<Operation> {
  d.records.require(mac);
  if ((await d.images.get(spec.image)) !== undefined) throw new MachineError(mac, 'conflict', `image ${spec.image} exists already (capture not started)`);
  let stored: ImageInfo | undefined;
  return startAgentOperation(d, mac, {
    kind: 'capture', busy: 'capturing', end: (from) => from, powerOn: true,
    task: { kind: 'capture', then: 'poweroff', captureImage: spec.image, ...(spec.disk ? { disk: spec.disk } : {}) },
    onCapture: async (body, sizeBytes) => {
      if (stored) throw new MachineError(mac, 'conflict', `image ${spec.image} was uploaded already`);
      stored = await d.images.importStream(spec.image, body, 'raw', sizeBytes);
      return stored;
    },
    result: (r) => {
      const disk = (typeof r === 'object' && r ? r : {}) as { sha256?: unknown };
      if (!stored) throw new Error('the agent finished without uploading the disk');
      if (disk.sha256 !== stored.sha256) throw new Error(`image ${stored.id} has sha256 ${stored.sha256}, the disk read ${String(disk.sha256)}`);
      return { ...disk, image: stored.id, sizeBytes: stored.sizeBytes, sha256: stored.sha256 };
    },
  }, actor);
}
