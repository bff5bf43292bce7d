/**
 * iPXE scripts (pure renderers). For now the only machine metalboot knows
 * nothing about; the per-machine sanboot scripts build on this.
 */
import type { Mac } from '../net/mac.js';

/**
 * A machine with no boot configuration: say so on its console and let the
 * firmware go on to the next boot device, so a PXE-first machine that is not
 * metalboot's still boots its local disk.
 */
export function renderUnknownMachineScript(mac: Mac): string {
  return ['#!ipxe', `echo metalboot: no boot configuration for ${mac}, trying the next boot device`, 'sleep 3', 'exit 1', ''].join('\n');
}
