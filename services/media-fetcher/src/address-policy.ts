import { ConfigError } from '@holdfast/core';
import ipaddr from 'ipaddr.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/**
 * Which IP addresses media may be fetched from: public unicast ones, and any inside a network of
 * HOLDFAST_MEDIA_ALLOWED_NETWORKS. Everything ipaddr.js does not classify as `unicast` (private,
 * loopback, link-local, unique-local, CGNAT, multicast, unspecified, broadcast, reserved, NAT64,
 * 6to4, Teredo, …) is refused: a media URL comes from outside and must not reach our own network.
 */
export class AddressPolicy {
  readonly #allowed: readonly [Address, number][];

  /** @param networks CIDR blocks (`127.0.0.0/8`, `::1/128`); a malformed one is a ConfigError. */
  constructor(networks: readonly string[]) {
    this.#allowed = Object.freeze(
      networks.map((cidr) => {
        try {
          const [network, bits] = ipaddr.parseCIDR(cidr);
          // Addresses are judged unmapped, so a mapped network (::ffff:10.0.0.0/104) is kept as IPv4.
          const v4 = unmapped(network);
          return (v4 !== network && bits >= 96 ? [v4, bits - 96] : [network, bits]) as [Address, number];
        } catch {
          throw new ConfigError(
            'HOLDFAST_MEDIA_ALLOWED_NETWORKS',
            `${JSON.stringify(cidr)} is not a CIDR block like 10.0.0.0/8 or fd00::/8`,
          );
        }
      }),
    );
  }

  /** `undefined` when the address may be connected to, else the range that refuses it. */
  refusal(address: string): string | undefined {
    let parsed: Address;
    try {
      parsed = unmapped(ipaddr.parse(address));
    } catch {
      return 'not an IP address';
    }
    if (
      this.#allowed.some(([network, bits]) => network.kind() === parsed.kind() && parsed.match(network, bits))
    ) {
      return undefined;
    }
    const range = parsed.range();
    return range === 'unicast' ? undefined : range;
  }
}

/** An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) reaches the IPv4 host: judge it as that. */
function unmapped(address: Address): Address {
  return address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()
    ? (address as ipaddr.IPv6).toIPv4Address()
    : address;
}
