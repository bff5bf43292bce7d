/**
 * The storage seam's export description: how tgtd reaches a backend's volume. Each backend says
 * it for its own disks (files: rdwr + a path; lvm: aio + /dev/VG/LV; rbd: rbd + pool/image), so
 * the iSCSI layer never asks which backend it is talking to.
 */

export const BS_TYPES = ['aio', 'rdwr', 'rbd'] as const;
/** tgtd's backing-store type (tgtadm --bstype). */
export type BsType = (typeof BS_TYPES)[number];

export interface VolumeExport {
  readonly bstype: BsType;
  /** tgtadm --backing-store: an absolute path (aio, rdwr) or pool/image (rbd). */
  readonly backingStore: string;
  /** tgtadm --bsopts, e.g. the rbd backstore's `conf=…;id=…`; absent when none. */
  readonly bsopts?: string;
}

/** The backing-store types of a volume that is a path on this host (a file, a block device). */
export const PATH_BS_TYPES = ['aio', 'rdwr'] as const;
export type PathBsType = (typeof PATH_BS_TYPES)[number];
