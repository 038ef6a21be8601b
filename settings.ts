/**
 * The address and the defaults both scripts start from.
 *
 * One plain object, meant to be edited by hand in a lab: change `host` to
 * the server machine's address and every `deno run` picks it up. Command-line
 * flags override these values.
 *
 * @module
 */

/** The defaults of server.ts and client.ts. */
export const settings = {
  /** Where the server listens and where the client sends. Loopback keeps a
   * fresh install from exposing an echo service to the network. */
  host: "127.0.0.1",
  /** The port of the classic UDP Pinger lab. */
  port: 12000,
  /** Pings per run (`-c`). */
  count: 10,
  /** Seconds between sends (`-i`). */
  interval: 1,
  /** Seconds to wait for each reply (`-W`). */
  timeout: 1,
  /** Bytes in each request datagram (`-s`). */
  size: 64,
} as const;

/** The largest UDP payload over IPv4 (65535 - 20 IP - 8 UDP header bytes). */
export const MAX_UDP_PAYLOAD_V4 = 65507;
/** The largest UDP payload over IPv6 (65535 - 8 UDP header bytes; the IPv6
 * header is not counted in its payload length). */
export const MAX_UDP_PAYLOAD_V6 = 65527;
