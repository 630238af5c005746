// PyTorch checkpoints without Python: the zip archives written by torch.save (pytorch_model.bin,
// *.pt) and by torch.jit.save (OpenAI's released CLIP .pt files). data.pkl is unpickled by the
// allowlisted VM in pickle.ts, so a checkpoint can only describe tensors, never run code.
// Tensor bytes stay in the archive until asked for; `get` reads just that tensor's span.
import { openSync, readSync, closeSync } from 'node:fs';
import { type DType, type RawTensor, type TensorSource, DTYPE_BYTES, numel } from './tensor.js';
import { ZipError, ZipReader } from './zip.js';
import { IO_LIMITS } from './limits.js';
import { PickleGlobal, PickleObject, PickleRefusedError, describe, unpickle } from './pickle.js';

export { PickleRefusedError } from './pickle.js';

// torch.save names each storage by its legacy typed class, which fixes the element type.
const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16', DoubleStorage: 'float64',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8',
  ByteStorage: 'uint8', BoolStorage: 'bool',
};

// `torch.float16` etc. appear as globals when a rebuild function takes an explicit dtype.
const TORCH_DTYPES: Record<string, DType> = {
  float32: 'float32', float: 'float32', float16: 'float16', half: 'float16', bfloat16: 'bfloat16',
  float64: 'float64', double: 'float64', int64: 'int64', long: 'int64', int32: 'int32', int: 'int32',
  int16: 'int16', short: 'int16', int8: 'int8', uint8: 'uint8', bool: 'bool',
};

/** Keys under which training scripts commonly nest the real state dict. */
const WRAPPER_KEYS = ['state_dict', 'model_state_dict', 'model'];

// Storage classes and dtype objects are pickled by reference and used as values, so the global
// itself is the value; these subclasses carry what it means.
class StorageGlobal extends PickleGlobal {
  constructor(module: string, name: string, readonly dtype: DType | undefined) { super(module, name); }
}
class DTypeGlobal extends PickleGlobal {
  constructor(module: string, name: string, readonly dtype: DType) { super(module, name); }
}
class StorageRef {
  constructor(readonly entry: string, readonly dtype: DType, readonly numel: number) {}
}
/** A tensor as a view into a storage entry; bytes are read only by `get`. */
class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly dtype: DType,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

export type TorchFormat = 'torch.save' | 'torchscript';

export class TorchCheckpoint implements TensorSource {
  readonly format: TorchFormat;
  /** Entries of the state dict that are not tensors (ints, extra state), by name: skipped. */
  readonly skipped: string[] = [];
  /** The wrapper key the state dict was found under (`state_dict`, `model`, ...), if any. */
  readonly unwrapped: string | undefined;
  private readonly zip: ZipReader;
  private readonly tensors = new Map<string, TensorRef>();
  private readonly bigEndian: boolean;

  constructor(readonly origin: string) {
    let zip: ZipReader;
    try {
      zip = new ZipReader(origin);
    } catch (e) {
      throw new Error(describeOpenFailure(origin, e), { cause: e });
    }
    this.zip = zip;
    try {
      const prefix = findPrefix(zip, origin);
      const pklName = `${prefix}data.pkl`;
      const byteorder = zip.has(`${prefix}byteorder`)
        ? new TextDecoder().decode(zip.read(`${prefix}byteorder`, { maxBytes: 64, role: 'the byteorder marker' })).trim()
        : 'little';
      if (byteorder !== 'little' && byteorder !== 'big') throw new Error(`${origin}: unknown byteorder ${JSON.stringify(byteorder)}`);
      this.bigEndian = byteorder === 'big';
      // jit.save writes the TorchScript code and constants beside data.pkl; only then are `__torch__` classes expected.
      const torchscript = zip.has(`${prefix}constants.pkl`) || zip.names().some((n) => n.startsWith(`${prefix}code/`));
      this.format = torchscript ? 'torchscript' : 'torch.save';
      const root = this.unpickleEntry(pklName, `${prefix}data/`, torchscript);
      if (torchscript) {
        if (!(root instanceof PickleObject)) throw new Error(`${origin}: TorchScript data.pkl holds ${describe(root)}, not a module`);
        const decls = readModuleDeclarations(zip, prefix);
        collectModuleTensors(origin, root, decls, this.tensors, this.skipped);
      } else {
        this.unwrapped = this.collectStateDict(root);
      }
      for (const [name, t] of this.tensors) checkView(origin, name, t);
      if (this.tensors.size === 0) throw new Error(`${origin}: the checkpoint holds no tensors`);
    } catch (e) {
      zip.close();
      throw e;
    }
  }

  keys(): string[] { return [...this.tensors.keys()]; }
  has(name: string): boolean { return this.tensors.has(name); }
  info(name: string): { dtype: DType; shape: number[] } | undefined {
    const t = this.tensors.get(name);
    return t && { dtype: t.dtype, shape: [...t.shape] };
  }

  get(name: string): RawTensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`${this.origin}: no tensor named "${name}"`);
    const el = DTYPE_BYTES[t.dtype];
    const n = numel(t.shape);
    if (n === 0) return { dtype: t.dtype, shape: [...t.shape], bytes: new Uint8Array(0) };
    // Read only the span of the storage this view touches (strides are never negative in torch).
    let span = 1;
    for (let i = 0; i < t.shape.length; i++) span += (t.shape[i]! - 1) * t.stride[i]!;
    const raw = this.zip.readRange(t.storage.entry, t.offset * el, span * el);
    const bytes = isContiguous(t.shape, t.stride) ? raw : gather(raw, el, t.shape, t.stride);
    if (this.bigEndian) swapBytes(bytes, el);
    return { dtype: t.dtype, shape: [...t.shape], bytes };
  }

  close(): void { this.zip.close(); }

  private unpickleEntry(pklName: string, dataDir: string, torchscript: boolean): unknown {
    const zip = this.zip;
    const storages = new Map<string, StorageRef>();
    try {
      return unpickle(zip.read(pklName, { maxBytes: IO_LIMITS.pickleMaxBytes, role: 'a pickle' }), {
        findGlobal: (module, name) => findTorchGlobal(module, name, torchscript),
        persistentLoad: (pid) => {
          // ('storage', storage_type, key, location, numel): the bytes are the archive entry data/<key>.
          if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) throw new Error(`unsupported persistent id ${describe(pid)}`);
          const [, type, key, , count] = pid as unknown[];
          if (!(type instanceof StorageGlobal)) throw new Error(`persistent id names ${describe(type)}, not a storage type`);
          const dtype = type.dtype;
          if (!dtype) throw new Error(`storage type ${type.qualname} is not supported`);
          if (typeof key !== 'string' || !/^[\w.-]+$/.test(key)) throw new Error(`bad storage key ${describe(key)}`);
          if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) throw new Error(`bad storage size ${describe(count)}`);
          let s = storages.get(key);
          if (!s) {
            const entry = `${dataDir}${key}`;
            const z = zip.entry(entry);
            if (!z) throw new Error(`storage ${key} is missing from the archive (no entry ${entry})`);
            if (z.size < count * DTYPE_BYTES[dtype]) throw new Error(`storage ${key} has ${z.size} bytes, fewer than its ${count} ${dtype} elements need`);
            s = new StorageRef(entry, dtype, count);
            storages.set(key, s);
          }
          return s;
        },
        // OrderedDict pickles its instance attributes (state_dict()._metadata) as BUILD state: plain data, safe to drop.
        build: (obj, state) => obj instanceof Map && (state === null || state instanceof Map),
      });
    } catch (e) {
      if (e instanceof PickleRefusedError) {
        throw new Error(`refusing to load ${this.origin}: ${e.message} (in ${pklName}); nothing in it was executed`, { cause: e });
      }
      if (e instanceof ZipError) throw e;
      throw new Error(`${this.origin}: cannot read ${pklName}: ${(e as Error).message}`, { cause: e });
    }
  }

  private collectStateDict(root: unknown): string | undefined {
    if (root instanceof TensorRef) throw new Error(`${this.origin}: the checkpoint is a single tensor, not a state dict`);
    if (!(root instanceof Map)) throw new Error(`${this.origin}: data.pkl holds ${describe(root)}, not a state dict`);
    let dict: Map<unknown, unknown> = root;
    let unwrapped: string | undefined;
    if (![...root.values()].some((v) => v instanceof TensorRef)) {
      unwrapped = WRAPPER_KEYS.find((k) => root.get(k) instanceof Map);
      if (!unwrapped) {
        const keys = [...root.keys()].map((k) => String(k)).slice(0, 10).join(', ');
        throw new Error(`${this.origin}: no tensors at the top level of the checkpoint and no ${WRAPPER_KEYS.join('/')} entry holding them (top-level keys: ${keys})`);
      }
      dict = root.get(unwrapped) as Map<unknown, unknown>;
    }
    for (const [k, v] of dict) {
      if (v instanceof TensorRef && typeof k === 'string') this.tensors.set(k, v);
      else this.skipped.push(String(k));
    }
    return unwrapped;
  }
}

/** Open a torch.save or torch.jit.save archive as a TensorSource. */
export function loadTorchCheckpoint(path: string): TorchCheckpoint {
  return new TorchCheckpoint(path);
}

function describeOpenFailure(origin: string, e: unknown): string {
  if (!(e instanceof ZipError && e.notZip)) return (e as Error).message;
  // Before PyTorch 1.6, torch.save wrote a bare pickle stream (or, earlier still, a tar file).
  const head = readHead(origin, 512);
  const legacyPickle = head.length >= 2 && head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5;
  const legacyTar = head.length >= 262 && new TextDecoder('latin1').decode(head.subarray(257, 262)) === 'ustar';
  const resave = 're-save it with PyTorch >= 1.6 (torch.save(torch.load(path), new_path)) or convert it to safetensors';
  if (legacyPickle || legacyTar) {
    return `${origin}: this is a legacy (pre-1.6, ${legacyTar ? 'tar' : 'non-zip pickle'}) torch.save file, which is not supported; ${resave}`;
  }
  return `${origin}: not a zip archive, so not a PyTorch checkpoint (torch.save has written zip files since PyTorch 1.6; `
    + `if this is an older checkpoint, ${resave})`;
}

function readHead(path: string, n: number): Uint8Array {
  try {
    const fd = openSync(path, 'r');
    try {
      const b = new Uint8Array(n);
      return b.subarray(0, readSync(fd, b, 0, n, 0));
    } finally {
      closeSync(fd);
    }
  } catch {
    return new Uint8Array(0);
  }
}

/** torch writes every entry under one top-level folder; data.pkl names it. */
function findPrefix(zip: ZipReader, origin: string): string {
  const prefixes = zip.names().filter((n) => /^([^/]+\/)?data\.pkl$/.test(n)).map((n) => n.slice(0, -'data.pkl'.length));
  if (prefixes.length === 0) throw new Error(`${origin}: zip archive has no data.pkl, so it is not a PyTorch checkpoint`);
  if (prefixes.length > 1) throw new Error(`${origin}: zip archive has several data.pkl (${prefixes.map((p) => p + 'data.pkl').join(', ')})`);
  return prefixes[0]!;
}

function findTorchGlobal(module: string, name: string, torchscript: boolean): PickleGlobal | undefined {
  const g = (impl: PickleGlobal['impl'] = {}): PickleGlobal => new PickleGlobal(module, name, impl);
  if (module === 'collections' && name === 'OrderedDict') {
    const make = (args: unknown[]): Map<unknown, unknown> => {
      const m = new Map<unknown, unknown>();
      if (args.length && Array.isArray(args[0])) for (const kv of args[0]) if (Array.isArray(kv) && kv.length === 2) m.set(kv[0], kv[1]);
      return m;
    };
    return g({ call: make, construct: make });
  }
  if (module === 'torch._utils') {
    switch (name) {
      case '_rebuild_tensor': // (storage, offset, size, stride)
      case '_rebuild_tensor_v2': // (storage, offset, size, stride, requires_grad, backward_hooks[, metadata])
        return g({ call: (a) => rebuildTensor(a[0], a[1], a[2], a[3], undefined) });
      case '_rebuild_tensor_v3': // (..., backward_hooks, dtype[, metadata]): dtype given explicitly
        return g({ call: (a) => rebuildTensor(a[0], a[1], a[2], a[3], a[6]) });
      case '_rebuild_parameter': // (data, requires_grad, backward_hooks): a Parameter is just its data here
      case '_rebuild_parameter_with_state':
        return g({ call: (a) => asTensor(a[0]) });
    }
    return undefined;
  }
  if (module === 'torch._tensor' && name === '_rebuild_from_type_v2') {
    // (func, new_type, args, state): used for Tensor subclasses; only our own rebuild functions may be func.
    return g({
      call: (a) => {
        const [func, type, args] = a;
        if (!(func instanceof PickleGlobal) || func.module !== 'torch._utils' || !func.impl.call) throw new Error(`_rebuild_from_type_v2 with ${describe(func)}`);
        if (!(type instanceof PickleGlobal) || !['torch.Tensor', 'torch.nn.parameter.Parameter'].includes(type.qualname)) throw new Error(`_rebuild_from_type_v2 to type ${describe(type)}`);
        if (!Array.isArray(args)) throw new Error('_rebuild_from_type_v2 without an argument tuple');
        return func.impl.call(args);
      },
    });
  }
  // Inert type markers: usable only as _rebuild_from_type_v2's new_type.
  if ((module === 'torch' && name === 'Tensor') || (module === 'torch.nn.parameter' && name === 'Parameter')) return g();
  if (module === 'torch' || module === 'torch.cuda') {
    if (/^[A-Z]\w*Storage$/.test(name)) return new StorageGlobal(module, name, STORAGE_DTYPES[name]);
    if (module === 'torch' && Object.hasOwn(TORCH_DTYPES, name)) return new DTypeGlobal(module, name, TORCH_DTYPES[name]!);
    return undefined;
  }
  if (torchscript) {
    // Module classes from the archive's own code/ folder: instances are inert records of their attributes.
    if (module === '__torch__' || module.startsWith('__torch__.')) {
      return g({ construct: (args) => new PickleObject(`${module}.${name}`, args) });
    }
    // TorchScript's typed-container helpers: identity functions on already-built lists.
    if (module === 'torch.jit._pickle') {
      if (['build_intlist', 'build_doublelist', 'build_boollist', 'build_tensorlist', 'build_list'].includes(name)) return g({ call: (a) => a[0] });
      if (name === 'restore_type_tag') return g({ call: (a) => a[0] });
    }
  }
  return undefined;
}

function asTensor(v: unknown): TensorRef {
  if (!(v instanceof TensorRef)) throw new Error(`expected a tensor, got ${describe(v)}`);
  return v;
}

function intList(v: unknown, what: string): number[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) {
    throw new Error(`tensor ${what} is ${describe(v)}, not a tuple of non-negative ints`);
  }
  if (v.length > IO_LIMITS.tensorMaxRank) throw new Error(`tensor ${what} has ${v.length} dimensions, more than the limit of ${IO_LIMITS.tensorMaxRank}`);
  return [...v] as number[];
}

function rebuildTensor(storage: unknown, offset: unknown, size: unknown, stride: unknown, dtype: unknown): TensorRef {
  if (!(storage instanceof StorageRef)) throw new Error(`tensor storage is ${describe(storage)}`);
  if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0) throw new Error(`bad storage offset ${describe(offset)}`);
  const shape = intList(size, 'size');
  const strides = intList(stride, 'stride');
  if (shape.length !== strides.length) throw new Error(`tensor size ${shape.length}-d but stride ${strides.length}-d`);
  let dt = storage.dtype;
  if (dtype !== undefined) {
    if (!(dtype instanceof DTypeGlobal)) throw new Error(`tensor dtype is ${describe(dtype)}`);
    // A dtype of another width would reinterpret the storage; torch only does this for same-size views.
    if (DTYPE_BYTES[dtype.dtype] !== DTYPE_BYTES[storage.dtype]) throw new Error(`tensor dtype ${dtype.dtype} does not match its ${storage.dtype} storage`);
    dt = dtype.dtype;
  }
  return new TensorRef(storage, dt, offset, shape, strides);
}

/**
 * A view must stay inside its storage, and may repeat elements (stride 0, as expand() saves) only up
 * to a small bound: checked for every named tensor at load, long before `get` allocates anything.
 */
function checkView(origin: string, name: string, t: TensorRef): void {
  const n = numel(t.shape);
  const where = `${origin}: tensor "${name}" (size [${t.shape.join(', ')}], stride [${t.stride.join(', ')}], offset ${t.offset})`;
  if (n === 0) return;
  // Products of safe integers may leave the exact range; anything that large is past any storage anyway.
  let last = t.offset;
  for (let i = 0; i < t.shape.length; i++) last += (t.shape[i]! - 1) * t.stride[i]!;
  if (!Number.isSafeInteger(last) || last >= t.storage.numel) {
    throw new Error(`${where} reaches past its ${t.storage.numel}-element storage (${t.storage.entry})`);
  }
  if (n > t.storage.numel && n > IO_LIMITS.viewMaxExpandedElements) {
    throw new Error(`${where} repeats its ${t.storage.numel}-element storage into ${n} elements, more than the limit of ${IO_LIMITS.viewMaxExpandedElements} for an expanded view`);
  }
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i]!;
  }
  return true;
}

/**
 * Copy a strided view into contiguous row-major bytes; `src` starts at the view's first element and
 * its ArrayBuffer at offset 0 (readRange gives a fresh one). Elements move as whole words, never byte
 * by byte through temporary views.
 */
function gather(src: Uint8Array, el: number, shape: number[], stride: number[]): Uint8Array {
  const nd = shape.length;
  const out = new Uint8Array(new ArrayBuffer(numel(shape) * el));
  // 8-byte elements move as two 32-bit words.
  const word = el === 8 ? 4 : el;
  const per = el / word;
  const Words = word === 4 ? Uint32Array : word === 2 ? Uint16Array : Uint8Array;
  const from = new Words(src.buffer as ArrayBuffer, src.byteOffset, src.byteLength / word);
  const to = new Words(out.buffer);
  const innerLen = shape[nd - 1]!;
  const innerStride = stride[nd - 1]! * per;
  const idx = new Array<number>(nd - 1).fill(0);
  const rows = numel(shape.slice(0, nd - 1));
  let o = 0;
  for (let r = 0; r < rows; r++) {
    let base = 0;
    for (let d = 0; d < nd - 1; d++) base += idx[d]! * stride[d]!;
    base *= per;
    if (innerStride === per) {
      // The innermost dimension is dense: one block.
      to.set(from.subarray(base, base + innerLen * per), o);
      o += innerLen * per;
    } else {
      for (let j = 0, s = base; j < innerLen; j++, s += innerStride) for (let w = 0; w < per; w++) to[o++] = from[s + w]!;
    }
    for (let d = nd - 2; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

function swapBytes(b: Uint8Array, el: number): void {
  if (el === 1) return;
  for (let i = 0; i < b.length; i += el) {
    for (let lo = i, hi = i + el - 1; lo < hi; lo++, hi--) {
      const x = b[lo]!;
      b[lo] = b[hi]!;
      b[hi] = x;
    }
  }
}

interface ModuleDecl { tensors: Set<string> }

/**
 * jit.save writes each class's source under code/; its `__parameters__` and `__buffers__` lines
 * say which tensor attributes belong to the state dict. The text is only scanned line by line (linear
 * in its size, whatever it holds); nothing else in it is interpreted.
 */
function readModuleDeclarations(zip: ZipReader, prefix: string): Map<string, ModuleDecl> {
  const decls = new Map<string, ModuleDecl>();
  const codeDir = `${prefix}code/`;
  const files = zip.entries().filter((e) => e.name.startsWith(codeDir) && e.name.endsWith('.py'));
  const total = files.reduce((n, e) => n + e.size, 0);
  if (total > IO_LIMITS.torchscriptMaxCodeBytes) {
    throw new Error(`${zip.path}: the ${files.length} TorchScript source files under ${codeDir} declare ${total} bytes, more than the limit of ${IO_LIMITS.torchscriptMaxCodeBytes}`);
  }
  for (const { name } of files) {
    // code/__torch__/model/___torch_mangle_0.py declares classes of module __torch__.model.___torch_mangle_0
    const module = name.slice(codeDir.length, -3).split('/').join('.');
    const text = new TextDecoder().decode(zip.read(name, { maxBytes: IO_LIMITS.torchscriptMaxCodeBytes, role: 'TorchScript code' }));
    for (const [cls, decl] of scanModuleClasses(text)) decls.set(`${module}.${cls}`, decl);
  }
  return decls;
}

/**
 * `class Name(Module):` at column 0 opens a class; its body is the following indented or blank lines.
 * A class counts only when its body has both a `__parameters__ = [...]` and a `__buffers__ = [...]` line.
 */
function scanModuleClasses(text: string): Map<string, ModuleDecl> {
  const found = new Map<string, ModuleDecl>();
  let cls: string | undefined;
  let params: string | undefined;
  let buffers: string | undefined;
  const close = (): void => {
    if (cls !== undefined && params !== undefined && buffers !== undefined) found.set(cls, { tensors: new Set([...quoted(params), ...quoted(buffers)]) });
    cls = params = buffers = undefined;
  };
  for (let at = 0; at < text.length;) {
    let nl = text.indexOf('\n', at);
    if (nl < 0) nl = text.length;
    const line = text.slice(at, nl);
    at = nl + 1;
    const indented = line.startsWith(' ') || line.startsWith('\t');
    if (!indented && line.trim() !== '') {
      close();
      const header = /^class (\w+)\(Module\):\s*$/.exec(line);
      if (header) cls = header[1];
      continue;
    }
    if (cls === undefined) continue;
    const body = line.trim();
    if (params === undefined) params = listValue(body, '__parameters__');
    if (buffers === undefined) buffers = listValue(body, '__buffers__');
  }
  close();
  return found;
}

/** The text between the brackets of `key = [...]`, or undefined when the line is something else. */
function listValue(line: string, key: string): string | undefined {
  if (!line.startsWith(key) || !line.endsWith(']')) return undefined;
  const rest = line.slice(key.length).trimStart();
  if (!rest.startsWith('=')) return undefined;
  const list = rest.slice(1).trimStart();
  return list.startsWith('[') ? list.slice(1, -1) : undefined;
}

/** The "double-quoted" names in a list's text. */
function quoted(s: string): string[] {
  const names: string[] = [];
  for (let i = s.indexOf('"'); i >= 0;) {
    const j = s.indexOf('"', i + 1);
    if (j < 0) break;
    names.push(s.slice(i + 1, j));
    i = s.indexOf('"', j + 1);
  }
  return names;
}

/**
 * Walk TorchScript module objects: tensor attributes become `path.name`, submodules are entered in
 * place (depth first, attributes in order). Iterative with a depth bound, so a pickle that nests
 * modules 200k deep gets an error that says so rather than a stack overflow.
 */
function collectModuleTensors(
  origin: string, root: PickleObject, decls: Map<string, ModuleDecl>, out: Map<string, TensorRef>, skipped: string[],
): void {
  const seen = new Set<PickleObject>();
  const stack: { prefix: string; decl: ModuleDecl | undefined; items: Iterator<[unknown, unknown]> }[] = [];
  const enter = (obj: PickleObject, prefix: string): void => {
    if (seen.has(obj)) return; // a submodule shared by two parents is listed once, under its first path
    seen.add(obj);
    if (!(obj.state instanceof Map)) return;
    if (stack.length >= IO_LIMITS.torchscriptMaxModuleDepth) {
      throw new Error(`${origin}: TorchScript modules nest deeper than ${IO_LIMITS.torchscriptMaxModuleDepth} levels (at "${prefix.slice(0, 200)}...")`);
    }
    stack.push({ prefix, decl: decls.get(obj.className), items: (obj.state as Map<unknown, unknown>).entries() });
  };
  enter(root, '');
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const next = top.items.next();
    if (next.done) { stack.pop(); continue; }
    const [k, v] = next.value;
    if (typeof k !== 'string') continue;
    if (v instanceof TensorRef) {
      // Without a declaration (code/ stripped) every tensor attribute is kept.
      if (!top.decl || top.decl.tensors.has(k)) out.set(top.prefix + k, v);
      else skipped.push(top.prefix + k);
    } else if (v instanceof PickleObject) {
      enter(v, `${top.prefix}${k}.`);
    }
  }
}
