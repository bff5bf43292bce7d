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
