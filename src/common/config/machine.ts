/**
 * The machine-dependent defaults of `server.ini` (host name, thread counts, home directory),
 * gathered in one place so tests can pin them.
 */
import os from 'node:os';

/** Facts about the machine that some configuration defaults derive from. */
export interface MachineDefaults {
  /** Default `hostName`: the first non-internal IPv4 address, else `127.0.0.1`. */
  readonly hostName: string;
  /** CPU count; `get/putProcessThreadCount` default to 10 × this, as in MetaQ. */
  readonly cpuCount: number;
  /** The user's home directory; `dataPath` defaults to `<homeDir>/meta`, as MetaQ's `${user.home}/meta`. */
  readonly homeDir: string;
}

/** The first non-internal IPv4 address of this machine, or `127.0.0.1` when there is none. */
export function firstNonInternalIpv4(): string {
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const address of addresses ?? []) {
      // `family` was the number 4 in Node 18.0–18.3; accept both spellings.
      const family: unknown = address.family;
      if ((family === 'IPv4' || family === 4) && !address.internal) return address.address;
    }
  }
  return '127.0.0.1';
}

/** Reads the machine defaults from the running system. */
export function detectMachineDefaults(): MachineDefaults {
  return {
    hostName: firstNonInternalIpv4(),
    cpuCount: Math.max(1, os.availableParallelism()),
    homeDir: os.homedir(),
  };
}
