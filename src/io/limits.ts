// Bounds on what a checkpoint file may make the readers do. Nothing in a checkpoint is trusted: a few
// KB of zip, pickle or JSON can otherwise ask for gigabytes or hours. Each limit sits far above what
// real CLIP checkpoints need; a program with unusual files may raise them (the object is mutable).
export const IO_LIMITS = {
  /** Entries in one zip archive (a torch.save archive has one per storage, plus a few). */
  zipMaxEntries: 200_000,
  /** Bytes in one zip entry name. */
  zipMaxNameBytes: 4096,
  /**
   * Bytes a deflated zip entry may inflate to. torch writes storages uncompressed, so this only
   * matters for re-zipped archives; it keeps a small deflated entry from becoming gigabytes.
   */
  zipMaxInflatedBytes: 128 * 2 ** 20,
  /**
   * All inflation from one archive, as a multiple of its file size plus a fixed allowance: real data
   * deflates by 1-10x and each entry is inflated about once, so this only stops an archive that makes
   * the reader inflate the same small bomb over and over (many tensors over one deflated storage).
   */
  zipMaxInflatedPerFileByte: 16,
  zipMaxInflatedAllowance: 64 * 2 ** 20,
  /** data.pkl / constants.pkl: the pickle describes tensors, it does not hold them. */
  pickleMaxBytes: 64 * 2 ** 20,
  /**
   * Values the unpickler may create, memoize or hold on its stack (a dict counts 4): about 200 MB at
   * worst; a torch.save state dict needs some 20 per tensor.
   */
  pickleMaxValues: 2_000_000,
  /** Bytes of one pickled integer (LONG1/LONG4, or INT/LONG text digits). */
  pickleMaxIntBytes: 1024,
  /** All TorchScript source under code/, together (only the declarations are read). */
  torchscriptMaxCodeBytes: 16 * 2 ** 20,
  /** Nesting depth of TorchScript submodules (real models nest < 20). */
  torchscriptMaxModuleDepth: 1000,
  /**
   * Elements a tensor view may have beyond those of its storage (a stride-0, expanded view repeats
   * elements). Views within their storage are bounded by the file's size instead.
   */
  viewMaxExpandedElements: 2 ** 20,
  /** Dimensions of one tensor. */
  tensorMaxRank: 64,
  /** The safetensors JSON header, as the reference implementation bounds it. */
  safetensorsMaxHeaderBytes: 100_000_000,
  /** JSON values in that header (a tensor takes about 11: room for 180k tensors, and for < 500 MB to parse). */
  safetensorsMaxHeaderValues: 2_000_000,
  /** A sharded checkpoint's `*.index.json` (ViT-bigG's is ~60 KB: a weight_map of a few thousand names). */
  shardIndexMaxBytes: 16 * 2 ** 20,
  /** Tensor names in one shard index. */
  shardIndexMaxTensors: 200_000,
  /** Distinct shard files one index may name (each is opened: a file descriptor and a header apiece). */
  shardIndexMaxShards: 1024,
};
