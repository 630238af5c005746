"""safetensors read and written by hand for the golden generators (no safetensors package on Debian's Python):
an 8-byte little-endian header length, the JSON header padded with spaces to 8 bytes, then raw little-endian data."""
import json
import struct

import numpy as np

DTYPES = {'F32': np.float32, 'F16': np.float16, 'I64': np.int64, 'I32': np.int32, 'U8': np.uint8}
CODES = {np.dtype(v): k for k, v in DTYPES.items()}


def read(path):
    """name -> numpy array (copies, writable)."""
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == '__metadata__':
            continue
        a, b = e['data_offsets']
        out[name] = np.frombuffer(data[a:b], dtype=DTYPES[e['dtype']]).reshape(e['shape']).copy()
    return out


def write(path, tensors, metadata=None, sort=True):
    """tensors: name -> numpy array or torch tensor; sorted by name unless sort=False (then in the mapping's order)."""
    header = {'__metadata__': metadata} if metadata else {}
    blobs, off = [], 0
    for name in (sorted(tensors) if sort else list(tensors)):
        a = tensors[name]
        if hasattr(a, 'detach'):
            a = a.detach().contiguous().numpy()
        a = np.array(a, order='C')  # not ascontiguousarray: it turns a 0-d tensor (logit_scale) into shape [1]
        b = a.astype(a.dtype.newbyteorder('<')).tobytes()
        header[name] = {'dtype': CODES[a.dtype], 'shape': list(a.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
