"""A tiny GGUF v3 file with one tensor of each type Attend reads (F32, F16, Q4_0, Q4_1, Q8_0), written and
quantized by llama.cpp's `gguf` Python package, with the values its own dequantizer gives. The GGUF test
requires Attend's dequantization to equal them (SmolLM2 covers Q4_1 and Q8_0 on a real file; this is the
only Q4_0 check, as no real Q4_0 file is at hand).

    .cache/venv/bin/python scripts/reference/make_gguf_fixtures.py Tests/AttendModelsTests/Fixtures
"""
import json
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFWriter, quants


def main(out):
    rng = np.random.default_rng(0)
    writer = GGUFWriter(f"{out}/tiny_types.gguf", "llama")
    expected = {}
    for name, kind in (("f32", T.F32), ("f16", T.F16), ("q4_0", T.Q4_0), ("q4_1", T.Q4_1), ("q8_0", T.Q8_0)):
        x = rng.standard_normal((3, 64)).astype(np.float32)
        if kind == T.F32:
            writer.add_tensor(name, x)
            expected[name] = x
        elif kind == T.F16:
            writer.add_tensor(name, x.astype(np.float16))
            expected[name] = x.astype(np.float16).astype(np.float32)
        else:
            q = quants.quantize(x, kind)
            writer.add_tensor(name, q, raw_shape=q.shape, raw_dtype=kind)
            expected[name] = quants.dequantize(q, kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    json.dump({k: v.reshape(-1).astype(float).tolist() for k, v in expected.items()}, open(f"{out}/tiny_types_expected.json", "w"))


if __name__ == "__main__":
    main(sys.argv[1])
