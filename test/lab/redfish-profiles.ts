/**
 * Vendor profiles of the lab Redfish BMC: what real BMCs list for ComputerSystem.Reset and
 * Boot.BootSourceOverrideTarget (from their public Redfish mockups and docs), so clients meet
 * the differences they will meet in a rack: no PowerCycle (iDRAC 8, iLO 5), values only in an
 * ActionInfo resource (iLO), no BootSourceOverrideMode (older Supermicro).
 */
export interface RedfishProfile {
  readonly name: string;
  readonly vendor: string;
  readonly resetTypes: readonly string[];
  /** AllowableValues through @Redfish.ActionInfo instead of inline. */
  readonly resetInActionInfo: boolean;
  readonly bootTargets: readonly string[];
  /** Has a writable BootSourceOverrideMode. */
  readonly bootMode: boolean;
}

export const REDFISH_PROFILES: Record<string, RedfishProfile> = {
  generic: {
    name: 'generic', vendor: 'metalboot lab', resetInActionInfo: false, bootMode: true,
    resetTypes: ['On', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart', 'Nmi', 'ForceOn', 'PushPowerButton', 'PowerCycle'],
    bootTargets: ['None', 'Pxe', 'Hdd', 'Cd', 'BiosSetup', 'UefiHttp', 'UefiShell'],
  },
  dell: {
    name: 'dell', vendor: 'Dell', resetInActionInfo: false, bootMode: true,
    resetTypes: ['On', 'ForceOff', 'ForceRestart', 'GracefulShutdown', 'PushPowerButton', 'Nmi'],
    bootTargets: ['None', 'Pxe', 'Floppy', 'Cd', 'Hdd', 'BiosSetup', 'Utilities', 'UefiTarget', 'SDCard', 'UefiHttp'],
  },
  hpe: {
    name: 'hpe', vendor: 'HPE', resetInActionInfo: true, bootMode: true,
    resetTypes: ['On', 'ForceOff', 'GracefulShutdown', 'ForceRestart', 'Nmi', 'PushPowerButton', 'GracefulRestart'],
    bootTargets: ['None', 'Cd', 'Hdd', 'Usb', 'SDCard', 'Utilities', 'Diags', 'BiosSetup', 'Pxe', 'UefiShell', 'UefiHttp', 'UefiTarget'],
  },
  supermicro: {
    name: 'supermicro', vendor: 'Supermicro', resetInActionInfo: false, bootMode: false,
    resetTypes: ['On', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart', 'Nmi', 'ForceOn'],
    bootTargets: ['None', 'Pxe', 'Hdd', 'Diags', 'Cd', 'BiosSetup', 'FloppyRemovableMedia', 'UsbKey', 'UsbHdd', 'UsbFloppy', 'UsbCd', 'UefiUsbKey', 'UefiCd', 'UefiHdd', 'UefiUsbHdd', 'UefiUsbCd'],
  },
};
