import { type LookupAddress, type LookupAllOptions, lookup } from 'node:dns';
import type { LookupFunction } from 'node:net';
import type { AddressPolicy } from './address-policy.ts';
import { MediaAddressRefusedError } from './errors.ts';

/** Resolves a host name to all its addresses (the system resolver by default). */
export type Resolve = (hostname: string, options: LookupAllOptions) => Promise<LookupAddress[]>;

const systemResolve: Resolve = (hostname, options) =>
  new Promise((resolve, reject) => {
    lookup(hostname, options, (error, addresses) => (error ? reject(error) : resolve(addresses)));
  });

/**
 * A `lookup` for the sockets media is downloaded over: it resolves the name, refuses it when any
 * address it resolves to is refused by the policy, and hands the socket exactly the addresses it
 * checked. The check and the connection use one resolution, so there is no window for DNS
 * rebinding between them. Refusing on any bad address (not just skipping it) keeps a name that
 * mixes public and internal addresses from being used at all.
 */
export function safeLookup(policy: AddressPolicy, resolve: Resolve = systemResolve): LookupFunction {
  return (hostname, options, callback) => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : (options.family ?? 0);
    const hints = options.hints === undefined ? {} : { hints: options.hints };
    // Separate success and failure handlers: an exception thrown by the callback cannot run it twice.
    resolve(hostname, { all: true, family, ...hints }).then(
      (addresses) => {
        let refused: Error | undefined;
        if (addresses.length === 0) {
          refused = Object.assign(new Error(`${hostname} has no addresses`), { code: 'ENOTFOUND' });
        }
        for (const { address } of addresses) {
          const refusal = policy.refusal(address);
          if (refusal !== undefined && !refused)
            refused = new MediaAddressRefusedError(hostname, address, refusal);
        }
        if (refused) callback(refused, '');
        else if (options.all) callback(null, addresses);
        else callback(null, addresses[0]!.address, addresses[0]!.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, ''),
    );
  };
}
