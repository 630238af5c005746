// A pickle virtual machine that cannot run code. Python's unpickler imports whatever module and
// calls whatever callable the stream names; this one resolves every GLOBAL through a caller-given
// allowlist and refuses the rest at the GLOBAL opcode itself, before anything could be called.
// The only "calls" that ever happen are the TypeScript handlers the allowlist hands back.
//
// Values: None -> null, bool -> boolean, int -> number (bigint beyond 2^53), float -> number,
// str -> string, bytes -> Uint8Array, tuple/list -> array, dict -> Map, set -> Set.
//
// The VM is a loop, never recursive, so nesting costs no call stack. What a stream may build is
// bounded (IO_LIMITS): every value pushed, memoized or added to a container counts, so a few MB of
// one-byte opcodes cannot become gigabytes of objects, and big integers cannot take quadratic time.
import { IO_LIMITS } from './limits.js';

/** A global the allowlist admits: what REDUCE (`call`) and NEWOBJ (`construct`) do with it. */
export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly impl: {
      call?: (args: unknown[]) => unknown;
      construct?: (args: unknown[]) => unknown;
    } = {},
  ) {}
  get qualname(): string { return `${this.module}.${this.name}`; }
}

/**
 * An instance of an admitted class that we do not know how to build (TorchScript's `__torch__.*`
 * modules): only its constructor arguments and BUILD state are recorded, nothing runs.
 */
export class PickleObject {
  state: unknown = undefined;
  constructor(readonly className: string, readonly args: unknown[]) {}
}

/** The stream asked for a global outside the allowlist. Thrown before it could be used. */
export class PickleRefusedError extends Error {
  constructor(readonly module: string, readonly globalName: string, reason?: string) {
    super(`the pickle asks for global ${module}.${globalName}, which ${reason ?? 'is not part of a tensor state dict'}`);
    this.name = 'PickleRefusedError';
  }
}

/** A malformed or unsupported stream (truncation, unknown opcode, type mismatch). */
export class PickleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PickleError';
  }
}

export interface UnpickleOptions {
  /** Return the global's stand-in, or undefined to refuse it. */
  findGlobal(module: string, name: string): PickleGlobal | undefined;
  /** Resolve a persistent id (torch: storages). Without it, persistent ids are an error. */
  persistentLoad?(pid: unknown): unknown;
  /** BUILD on something other than a PickleObject; return false to reject the state. */
  build?(obj: unknown, state: unknown): boolean;
  /** Values the stream may create, memoize or hold (default IO_LIMITS.pickleMaxValues). */
  maxValues?: number;
}

const MARK = Symbol('mark');

export function unpickle(data: Uint8Array, opts: UnpickleOptions): unknown {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let pos = 0;
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();
  const maxValues = opts.maxValues ?? IO_LIMITS.pickleMaxValues;
  let values = 0;
  const count = (n: number): void => {
    values += n;
    if (values > maxValues) throw new PickleError(`pickle builds more than ${maxValues} values (at offset ${pos}); refusing it as a memory bomb`);
  };

  const need = (n: number): number => {
    if (n < 0 || pos + n > data.length) throw new PickleError(`pickle is truncated (needs ${n} bytes at offset ${pos}, has ${data.length - pos})`);
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = (): number => dv.getUint8(need(1));
  const u16 = (): number => dv.getUint16(need(2), true);
  const u32 = (): number => dv.getUint32(need(4), true);
  const u64 = (): number => {
    const v = dv.getBigUint64(need(8), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new PickleError(`length ${v} is too large`);
    return Number(v);
  };
  const bytes = (n: number): Uint8Array => {
    const at = need(n);
    return data.slice(at, at + n);
  };
  const str = (n: number): string => {
    const at = need(n);
    try {
      return utf8.decode(data.subarray(at, at + n));
    } catch {
      throw new PickleError(`invalid UTF-8 string at offset ${at}`);
    }
  };
  const line = (): string => {
    const nl = data.indexOf(0x0a, pos);
    if (nl < 0) throw new PickleError(`pickle is truncated (unterminated line at offset ${pos})`);
    const s = new TextDecoder('latin1').decode(data.subarray(pos, nl));
    pos = nl + 1;
    return s;
  };
  // Reads `stack` only when called: an argument like popMark() may swap the stack first.
  // A dict, set or bytes object costs several times an array or a string (about 200 bytes empty), so it counts more.
  const push = (v: unknown): void => { count(v instanceof Map || v instanceof Set || v instanceof PickleObject || v instanceof Uint8Array ? 4 : 1); stack.push(v); };
  const pop = (): unknown => {
    if (stack.length === 0) throw new PickleError(`stack underflow at offset ${pos - 1}`);
    const v = stack.pop();
    if (v === MARK) throw new PickleError(`unexpected MARK at offset ${pos - 1}`);
    return v;
  };
  const top = (): unknown => {
    if (stack.length === 0) throw new PickleError(`stack underflow at offset ${pos - 1}`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = metastack.pop();
    if (!prev) throw new PickleError(`MARK missing at offset ${pos - 1}`);
    stack = prev;
    return items;
  };
  const global = (module: string, name: string): PickleGlobal => {
    const g = opts.findGlobal(module, name);
    if (!g) throw new PickleRefusedError(module, name);
    return g;
  };
  const memoGet = (i: number): unknown => {
    if (!memo.has(i)) throw new PickleError(`memo key ${i} is not set`);
    return memo.get(i);
  };
  const setItems = (dict: unknown, kv: unknown[]): void => {
    if (!(dict instanceof Map)) throw new PickleError(`SETITEM(S) on ${describe(dict)}, not a dict`);
    if (kv.length % 2) throw new PickleError('SETITEMS with an odd number of items');
    count(kv.length / 2);
    for (let i = 0; i < kv.length; i += 2) dict.set(kv[i], kv[i + 1]);
  };
  const appendItems = (list: unknown, items: unknown[]): void => {
    if (!Array.isArray(list) || Object.isFrozen(list)) throw new PickleError(`APPEND(S) on ${describe(list)}, not a list`);
    count(items.length);
    for (const v of items) list.push(v);
  };
  const asArgs = (v: unknown, op: string): unknown[] => {
    if (!Array.isArray(v)) throw new PickleError(`${op} arguments are ${describe(v)}, not a tuple`);
    return v;
  };
  const tuple = (items: unknown[]): unknown[] => Object.freeze(items) as unknown[];
  const memoPut = (i: number): void => { count(1); memo.set(i, top()); };
  const intBytes = (n: number): Uint8Array => {
    if (n > IO_LIMITS.pickleMaxIntBytes) throw new PickleError(`integer of ${n} bytes at offset ${pos}, more than the limit of ${IO_LIMITS.pickleMaxIntBytes}`);
    return bytes(n);
  };
  const intLine = (): string => {
    const s = line();
    if (s.length > IO_LIMITS.pickleMaxIntBytes) throw new PickleError(`integer of ${s.length} digits at offset ${pos}, more than the limit of ${IO_LIMITS.pickleMaxIntBytes}`);
    return s;
  };

  for (;;) {
    const opAt = pos;
    const op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v > 5) throw new PickleError(`unsupported pickle protocol ${v}`);
        break;
      }
      case 0x95: u64(); break; // FRAME: framing is only a read-ahead hint
      case 0x2e: { // STOP
        const v = pop();
        return v;
      }
      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x4a: push(dv.getInt32(need(4), true)); break; // BININT
      case 0x4b: push(u8()); break; // BININT1
      case 0x4d: push(u16()); break; // BININT2
      case 0x8a: push(decodeLong(intBytes(u8()))); break; // LONG1
      case 0x8b: { // LONG4
        const n = dv.getInt32(need(4), true);
        if (n < 0) throw new PickleError('LONG4 with negative length');
        push(decodeLong(intBytes(n)));
        break;
      }
      case 0x47: push(dv.getFloat64(need(8), false)); break; // BINFLOAT (big-endian, per the spec)
      case 0x49: { // INT (text): also how protocol 0/1 spell booleans
        const s = intLine();
        if (s === '01') push(true);
        else if (s === '00') push(false);
        else push(parseIntText(s));
        break;
      }
      case 0x4c: push(parseIntText(intLine().replace(/L$/, ''))); break; // LONG (text)
      case 0x46: { // FLOAT (text)
        const v = Number(line());
        if (Number.isNaN(v)) throw new PickleError(`bad FLOAT at offset ${opAt}`);
        push(v);
        break;
      }
      case 0x58: push(str(u32())); break; // BINUNICODE
      case 0x8c: push(str(u8())); break; // SHORT_BINUNICODE
      case 0x8d: push(str(u64())); break; // BINUNICODE8
      case 0x54: push(new TextDecoder('latin1').decode(bytes(dv.getInt32(need(4), true)))); break; // BINSTRING (py2 str)
      case 0x55: push(new TextDecoder('latin1').decode(bytes(u8()))); break; // SHORT_BINSTRING
      case 0x42: push(bytes(u32())); break; // BINBYTES
      case 0x43: push(bytes(u8())); break; // SHORT_BINBYTES
      case 0x8e: push(bytes(u64())); break; // BINBYTES8
      case 0x96: push(bytes(u64())); break; // BYTEARRAY8
      case 0x7d: push(new Map()); break; // EMPTY_DICT
      case 0x5d: push([]); break; // EMPTY_LIST
      case 0x29: push(tuple([])); break; // EMPTY_TUPLE
      case 0x8f: push(new Set()); break; // EMPTY_SET
      case 0x28: count(1); metastack.push(stack); stack = []; break; // MARK
      case 0x74: push(tuple(popMark())); break; // TUPLE
      case 0x85: push(tuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); push(tuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); push(tuple([a, b, c])); break; } // TUPLE3
      case 0x6c: push(popMark()); break; // LIST
      case 0x64: { const d = new Map(); setItems(d, popMark()); push(d); break; } // DICT
      case 0x91: push(Object.freeze(new Set(popMark()))); break; // FROZENSET
      case 0x90: { // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) throw new PickleError(`ADDITEMS on ${describe(s)}, not a set`);
        count(items.length);
        for (const v of items) s.add(v);
        break;
      }
      case 0x61: { const v = pop(); appendItems(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); appendItems(top(), items); break; } // APPENDS
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(top(), kv); break; } // SETITEMS
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: push(top()); break; // DUP
      case 0x71: memoPut(u8()); break; // BINPUT
      case 0x72: memoPut(u32()); break; // LONG_BINPUT
      case 0x94: memoPut(memo.size); break; // MEMOIZE
      case 0x70: memoPut(parseIntNumber(intLine())); break; // PUT
      case 0x68: push(memoGet(u8())); break; // BINGET
      case 0x6a: push(memoGet(u32())); break; // LONG_BINGET
      case 0x67: push(memoGet(parseIntNumber(intLine()))); break; // GET
      case 0x63: { // GLOBAL
        const module = line();
        const name = line();
        push(global(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw new PickleError(`STACK_GLOBAL needs two strings at offset ${opAt}`);
        push(global(module, name));
        break;
      }
      case 0x69: { // INST: module/name inline, arguments since MARK
        const module = line();
        const name = line();
        const g = global(module, name);
        push(construct(g, popMark(), 'INST'));
        break;
      }
      case 0x6f: { // OBJ: class and arguments since MARK
        const items = popMark();
        const g = items.shift();
        push(construct(g, items, 'OBJ'));
        break;
      }
      case 0x52: { // REDUCE
        const args = asArgs(pop(), 'REDUCE');
        const f = pop();
        if (!(f instanceof PickleGlobal) || !f.impl.call) throw new PickleError(`REDUCE on ${describe(f)}, which cannot be called`);
        push(f.impl.call(args));
        break;
      }
      case 0x81: { // NEWOBJ
        const args = asArgs(pop(), 'NEWOBJ');
        push(construct(pop(), args, 'NEWOBJ'));
        break;
      }
      case 0x92: { // NEWOBJ_EX
        const kwargs = pop();
        const args = asArgs(pop(), 'NEWOBJ_EX');
        const cls = pop();
        if (!(kwargs instanceof Map) || kwargs.size) throw new PickleError('NEWOBJ_EX with keyword arguments is not supported');
        push(construct(cls, args, 'NEWOBJ_EX'));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        if (obj instanceof PickleObject) obj.state = state;
        else if (!opts.build?.(obj, state)) throw new PickleError(`BUILD on ${describe(obj)} is not supported`);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) throw new PickleError('pickle uses persistent ids, but none are expected here');
        push(opts.persistentLoad(pid));
        break;
      }
      case 0x50: { // PERSID
        const pid = line();
        if (!opts.persistentLoad) throw new PickleError('pickle uses persistent ids, but none are expected here');
        push(opts.persistentLoad(pid));
        break;
      }
      case 0x82: case 0x83: case 0x84: // EXT1/2/4: the copyreg extension registry names arbitrary callables
        throw new PickleError(`pickle uses the extension registry (opcode 0x${op.toString(16)}), which is not supported`);
      case 0x97: case 0x98: // NEXT_BUFFER / READONLY_BUFFER
        throw new PickleError('pickle uses out-of-band buffers, which are not supported');
      default:
        throw new PickleError(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} at offset ${opAt}`);
    }
  }

  function construct(cls: unknown, args: unknown[], op: string): unknown {
    if (!(cls instanceof PickleGlobal) || !cls.impl.construct) throw new PickleError(`${op} on ${describe(cls)}, which cannot be instantiated`);
    return cls.impl.construct(args);
  }
}

/** Little-endian two's complement, as LONG1/LONG4 store it. */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  return Number.isSafeInteger(Number(v)) && BigInt(Number(v)) === v ? Number(v) : v;
}

function parseIntText(s: string): number | bigint {
  if (!/^[+-]?\d+$/.test(s.trim())) throw new PickleError(`bad integer literal "${s}"`);
  const v = BigInt(s.trim());
  return Number.isSafeInteger(Number(v)) ? Number(v) : v;
}

function parseIntNumber(s: string): number {
  const v = parseIntText(s);
  if (typeof v !== 'number' || v < 0) throw new PickleError(`bad memo index "${s}"`);
  return v;
}

/** Short description of a pickled value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return 'None';
  if (v instanceof PickleGlobal) return v.qualname;
  if (v instanceof PickleObject) return `a ${v.className} object`;
  if (v instanceof Map) return 'a dict';
  if (v instanceof Set) return 'a set';
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return Object.isFrozen(v) ? `a ${v.length}-tuple` : 'a list';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v)}`;
  if (typeof v === 'object' && v !== null) return `a ${v.constructor?.name ?? 'object'}`;
  return `${typeof v} ${String(v)}`;
}
