// Which Host (and Origin) a request may name. A page on evil.example can rebind its DNS name to 127.0.0.1 and
// then read this API as same-origin; its requests still carry `Host: evil.example`, so answering only the names
// the server is bound under closes that door. Besides the listed names, the address a connection actually
// arrived on is allowed (that covers a 0.0.0.0 bind reached as http://192.168.1.5:8080/): an IP literal in
// Host is never a rebinding, since the page's origin is then the server itself.

const LOOPBACK = ['localhost', '127.0.0.1', '[::1]'];

/** `name`, `name:port`, `[v6]:port`, or a bare IPv6 address → the lower-case host name as a URL spells it. */
export function hostName(value: string): string | undefined {
  let v = value.trim();
  if (!v) return undefined;
  // A bare IPv6 address (from --host ::1 or an allow list) has no brackets and several colons.
  if (!v.startsWith('[') && v.indexOf(':') !== v.lastIndexOf(':')) v = `[${v}]`;
  try {
    const u = new URL(`http://${v}`);
    // Host may carry only a host and a port; anything else (user info, a path) is not a Host value.
    if (u.username || u.password || u.pathname !== '/' || u.search || u.hash) return undefined;
    return u.hostname.replace(/\.$/, '');
  } catch {
    return undefined;
  }
}

export class HostPolicy {
  readonly any: boolean;
  private readonly names = new Set<string>();
  /** Entries starting with a dot allow the domain and every subdomain. */
  private readonly suffixes: string[] = [];

  /**
   * @param bindHost the address the server listens on (`--host`), always allowed
   * @param extra further names (`photos.lan`, `.example.org`), or `*` for any Host at all
   */
  constructor(bindHost: string | undefined, extra: string[] = []) {
    this.any = extra.some((e) => e.trim() === '*');
    const bound = bindHost === undefined ? undefined : hostName(bindHost);
    const names = [...LOOPBACK, ...(bound ? [bound] : [])];
    for (const e of extra) {
      const t = e.trim().toLowerCase();
      if (!t || t === '*') continue;
      if (t.startsWith('.')) {
        const base = hostName(t.slice(1));
        if (!base) throw new Error(`allowed host "${e}" is not a host name`);
        this.suffixes.push(base);
        continue;
      }
      const n = hostName(t);
      if (!n) throw new Error(`allowed host "${e}" is not a host name`);
      names.push(n);
    }
    for (const n of names) {
      const h = hostName(n);
      if (h) this.names.add(h);
    }
  }

  /** The host names allowed (for /health and messages); `*` when any is. */
  get list(): string[] {
    return this.any ? ['*'] : [...this.names, ...this.suffixes.map((s) => `.${s}`)];
  }

  /** @param localAddress the server-side address of the connection the request came on */
  allows(host: string | undefined, localAddress?: string): boolean {
    if (this.any) return true;
    if (host === undefined) return false;
    const n = hostName(host);
    if (!n) return false;
    if (this.names.has(n) || this.suffixes.some((s) => n === s || n.endsWith(`.${s}`))) return true;
    return localAddress !== undefined && n === hostName(localAddress.replace(/^::ffff:(?=\d+\.)/, ''));
  }

  /**
   * Why a request must be refused, or undefined when it may proceed. The Origin check matters for
   * requests a foreign page makes without reading the answer (a form POST): they never pass the Host
   * check's protection of the response, but they do spend model time.
   */
  refusal(host: string | undefined, origin: string | undefined, localAddress?: string): string | undefined {
    if (this.any) return undefined;
    if (host === undefined) return 'the Host header is required';
    if (!this.allows(host, localAddress)) {
      return `Host "${clip(host)}" is not served here; allowed: ${this.list.join(', ')} (start clip serve with --allowed-hosts to add names)`;
    }
    if (origin !== undefined) {
      let originHost: string | undefined;
      try {
        const u = new URL(origin);
        if (u.protocol === 'http:' || u.protocol === 'https:') originHost = u.host;
      } catch { /* "null" and other opaque origins */ }
      if (!originHost || !this.allows(originHost, localAddress)) return `Origin "${clip(origin)}" may not use this server`;
    }
    return undefined;
  }
}

const clip = (s: string): string => (s.length > 100 ? `${s.slice(0, 100)}...` : s);
