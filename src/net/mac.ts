/** A MAC address, normalised to lower-case colon form ("52:54:00:12:34:56"). */
export type Mac = string & { readonly __brand: 'Mac' };

export class MacParseError extends Error {
  constructor(readonly input: string) {
    super(`not a MAC address: ${JSON.stringify(input.slice(0, 64))}`);
    this.name = 'MacParseError';
  }
}

const MAC_RE = /^([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})$/i;

/** Parses "52:54:00:12:34:56", "52-54-00-12-34-56" or "525400123456". */
export function parseMac(input: string): Mac {
  const m = MAC_RE.exec(input.trim());
  if (!m) throw new MacParseError(input);
  return m.slice(1, 7).join(':').toLowerCase() as Mac;
}

export function tryParseMac(input: string): Mac | undefined {
  try {
    return parseMac(input);
  } catch {
    return undefined;
  }
}

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** A 6-byte hardware address from a buffer (e.g. chaddr); on every DHCP packet, so no intermediate arrays. */
export function macFromBytes(bytes: Uint8Array): Mac {
  if (bytes.length !== 6) throw new MacParseError(`<${bytes.length} bytes>`);
  return `${HEX[bytes[0]!]}:${HEX[bytes[1]!]}:${HEX[bytes[2]!]}:${HEX[bytes[3]!]}:${HEX[bytes[4]!]}:${HEX[bytes[5]!]}` as Mac;
}

/**
 * Why a MAC cannot belong to one machine, or undefined when it can. IEEE 802-2014 §8.2: the
 * least significant bit of the first octet is the group (multicast) bit; ff:ff:ff:ff:ff:ff is the
 * broadcast address; all-zero is no address at all. None of them ever sends a DHCPDISCOVER of its
 * own, so enrolling one only creates a record that something spoofing it could claim.
 */
export function nonUnicastMacReason(mac: Mac): string | undefined {
  if (mac === '00:00:00:00:00:00') return 'the all-zero address';
  if (mac === 'ff:ff:ff:ff:ff:ff') return 'the broadcast address';
  if (parseInt(mac.slice(0, 2), 16) & 1) return 'a multicast address';
  return undefined;
}
