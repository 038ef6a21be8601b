/**
 * The address, the defaults and every limit of both scripts, in one place.
 *
 * `settings` is one plain object, meant to be edited by hand in a lab:
 * change `host` to the server machine's address and every `deno run` picks
 * it up. Command-line flags override these values. The constants below it
 * are the limits that keep a run sane and a server safe; each has one name
 * here and is used from here (irtt keeps its defaults the same way).
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

// ------------------------------------------------------------ datagrams

/** The largest UDP payload over IPv4 (65535 - 20 IP - 8 UDP header bytes). */
export const MAX_UDP_PAYLOAD_V4 = 65507;
/** The largest UDP payload over IPv6 (65535 - 8 UDP header bytes; the IPv6
 * header is not counted in its payload length). */
export const MAX_UDP_PAYLOAD_V6 = 65527;
/** Receive buffers hold more than the largest payload: the runtime silently
 * cuts a datagram to the buffer it is given. */
export const RECEIVE_BUFFER_BYTES = 65536;

// ------------------------------------------------------------ the server

/** Longest `--prefix`: a reply may exceed its request by this much at most,
 * so the server is never much of an amplifier for a forged source. */
export const MAX_PREFIX_BYTES = 64;
/** Replies per second per source (address and port) unless `--rate` says
 * otherwise: generous for any pinger, a cap for a reflection attack. */
export const DEFAULT_RATE = 1000;
/** Highest `--rate`: far above what one server can answer. */
export const MAX_RATE = 1e9;
/** Client (address and port) rate-limit buckets remembered at once; past
 * it, a new client takes the place of one whose bucket has refilled. */
export const MAX_RATE_SOURCES = 10_000;
/**
 * All the ports of one address together get `rate ×` this. Eight clients at
 * full rate is more than a lab bench or a room behind one NAT runs at once,
 * and it still caps what a forger who varies the source port can aim at one
 * victim address to 8 × rate replies a second (10,000 ports would otherwise
 * give 10,000 × rate).
 */
export const ADDRESS_RATE_FACTOR = 8;
/** How many entries under the clock hand a newcomer to the rate limiter's
 * or the loop guard's full table looks at for one it may take the place
 * of: a bounded cost per datagram, never a table scan. */
export const EVICTION_SCAN = 8;
/** Distinct clients (address and port) the server counts. */
export const MAX_TRACKED_CLIENTS = 65536;
/** Client tokens whose request counts the server remembers for stamps. */
export const MAX_TRACKED_TOKENS = 10_000;
/** Longest a `--reorder` reply waits for a later reply to overtake it (then
 * the replies held for its client go out newest first): half the client's
 * default timeout, so that a held reply is never taken for a loss. */
export const MAX_REORDER_HOLD_MS = (settings.timeout * 1000) / 2;
/** Replies held back by `--delay`/`--reorder` at once; past it a reply is
 * dropped and counted as `overflow`. */
export const MAX_HELD_REPLIES = 10_000;
/** Bytes of replies held back at once (16 MiB). */
export const MAX_HELD_BYTES = 16 * 1024 * 1024;
/** Replies held back at once for one client (address and port): two
 * seconds of replies at `DEFAULT_RATE`, so the lab's `--delay 2000` at full
 * rate never overflows. */
export const MAX_HELD_REPLIES_PER_CLIENT = 2 * DEFAULT_RATE;
/** Replies held back at once for all the ports of one address, a quarter
 * of `MAX_HELD_REPLIES`: one address cannot take what another needs. */
export const MAX_HELD_REPLIES_PER_ADDRESS = MAX_HELD_REPLIES / 4;
/** Bytes of replies held back at once for one address (4 MiB). */
export const MAX_HELD_BYTES_PER_ADDRESS = MAX_HELD_BYTES / 4;
/** Longest `--delay` and `--jitter`, ms: a minute. */
export const MAX_DELAY_MS = 60_000;

// ------------------------------------------------------------ the loop guard (lib/server/loop_guard.ts)

/** A datagram from a peer less than this many ms after our last reply to it
 * left may be that reply bouncing back: a udping server or a C echo on a
 * LAN answers within it, and a client sending every 1 ms or more does not
 * (our reply takes well under 0.5 ms). */
export const FAST_BOUNCE_MS = 0.5;
/** Quick datagrams, less slow ones, from one peer that are still answered:
 * past it, each quick one is refused as a loop. A server stalled this many
 * ms (GC, a busy machine) reads a 1 ms client's queued datagrams back to
 * back, so it is well above any stall measured; a loop with every bounce
 * quick costs two servers at most `2 × (LOOP_BOUNCES + 1)` datagrams. */
export const LOOP_BOUNCES = 32;
/** A peer's loop score never grows past this, so that after a long loop
 * the peer is answered in full again after this many slow datagrams at
 * most. */
export const MAX_LOOP_SCORE = 2 * LOOP_BOUNCES;
/** Peers (address and port) whose last reply time is remembered; past it,
 * a new peer takes the place of one answered more than `FAST_BOUNCE_MS`
 * ago (which a new entry equals), else of the one under the clock hand. */
export const MAX_LOOP_ENTRIES = 4096;
/** Bytes of a datagram shown in a log line. */
export const PREVIEW_BYTES = 48;

// ------------------------------------------------------------ the client

/** Longest `-i`, `-W` and `-w`, in seconds: a day. */
export const MAX_SECONDS = 86_400;
/** Shortest `-i` (and `--send`'s), ms: an interval the client keeps with
 * a reply to read between sends. Below it the runtime falls behind its
 * schedule and the socket buffers overflow, which showed as loss the
 * network never had (96% at `-i 0.00001`). It is also what a udping server
 * answers by default (`DEFAULT_RATE`). `-f` goes faster, each request once
 * the previous reply is in. */
export const MIN_INTERVAL_MS = 1;
/** Most requests one run may send (`-c`): 2^32, the sequence space. */
export const MAX_COUNT = 2 ** 32;
/** With `-f`, the longest wait between sends while a reply is outstanding:
 * ping -f's 100 requests per second at the least. */
export const FLOOD_GAP_MS = 10;
/** After the last request is settled, how long a run still listens for a
 * duplicate sent right behind its original. */
export const LINGER_MS = 10;
/** Most requests a run remembers at once (2^20 slots, 50 MB): a reply to
 * an older one by the time it comes is counted as stray. */
export const MAX_REMEMBERED_REQUESTS = 2 ** 20;
/** Most times `--chat --retries` resends a line. */
export const MAX_RETRIES = 100;
/** Width, in bytes, of a reply's payload shown by `-v` and `--chat`. */
export const SHOWN_PAYLOAD_BYTES = 200;
/** Up to this many RTTs of a run, percentiles are exact (the samples are
 * kept); past it they are read from a histogram (within 1%). */
export const EXACT_SAMPLES = 4096;
/** Earlier `--chat` lines a late or duplicate reply is still matched to
 * (each up to a datagram's size, so at most 6.5 MB). */
export const CHAT_LINES_REMEMBERED = 100;

// ------------------------------------------------------------ the heartbeat monitor and the log

/** Sources the heartbeat monitor remembers. */
export const MAX_HEARTBEAT_SOURCES = 10_000;
/** Sequence numbers, up to the highest, whose arrival the heartbeat monitor
 * remembers per source; a heartbeat further back cannot be told from a
 * replay and is not counted. */
export const HEARTBEAT_WINDOW = 1024;
/** The largest jump between heartbeat sequence numbers, either way, still
 * read as the same sequence: ten days of heartbeats at the lab's 1 s
 * interval; past it the sequence restarts. */
export const MAX_HEARTBEAT_JUMP = 1_000_000;
/** The shortest interval the heartbeat monitor assumes of a source, ms: a
 * source's lost count grows by at most the time since its last heartbeat
 * over its interval (the shortest seen between two consecutive ones, at
 * least this). */
export const MIN_HEARTBEAT_INTERVAL_MS = 1;
/** Sources listed one by one in the server's heartbeat summary (those with
 * the most heartbeats); the rest are added up in one line. */
export const MAX_HEARTBEAT_SUMMARY_SOURCES = 100;
/** Characters of log lines the server holds while its output is slow (1 Mi);
 * past it, lines are dropped and counted rather than wait. */
export const MAX_PENDING_LOG_CHARS = 1024 * 1024;
/** Longest a log line waits for others to share its write, ms. Each write
 * of standard output costs the runtime a hand-off to a worker thread, about
 * 70-100 µs of CPU (more than serving a datagram): a write per line held
 * the server, pinned to one CPU, to 0.28x a bare Deno loop's reply rate.
 * Longer waits keep more lines alive across collections: under a flood, 1
 * ms gave 30,000 replies/s and a 95 MB peak RSS, 10 ms 25,000-27,000 and
 * 118 MB (a write per line: 15,600 and 78 MB). */
export const LOG_FLUSH_MS = 1;

// ------------------------------------------------------------ the C library's sockets (--allow-ffi) and the timers

/** Longest the fast server socket (`--fast`) blocks the event loop in one
 * wait before it lets it run: signals and `close()` are seen within it. */
export const FAST_SOCKET_WAKE_MS = 100;
/** Datagrams the fast server socket receives in one `recvmmsg` and replies
 * sent in one `sendmmsg`: one call into the C library per burst. */
export const FAST_SOCKET_BATCH = 64;
/** Longest one `poll` of the kernel-stamped client socket waits: its
 * `close()` waits for the poll still running, so this bounds it. */
export const STAMPED_SOCKET_POLL_MS = 50;
/** How often the heartbeat monitor looks for sources gone silent. */
export const HEARTBEAT_CHECK_MS = 250;
/** How fast an alarm's learned timer lateness follows a change (an
 * exponential average over about this many wake-ups). */
export const TIMER_LEARNING_WINDOW = 16;
/** An alarm never aims earlier than this, ms, whatever lateness it learned. */
export const MAX_TIMER_COMPENSATION_MS = 4;
