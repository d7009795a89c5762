"""Writes a copy of a GGUF model with its Q4_1 matrices requantized to another type (Q4_0 or Q8_0) by the
`gguf` package (llama.cpp's reference quantizers in Python); everything else is copied as it is.
Used to benchmark Attend and llama.cpp on a Q4_0 model, the most common GGUF type, when only a Q4_1 file is
at hand. (Requantizing adds a second rounding: fine for speed and agreement, not for quality figures.)

    .cache/venv/bin/python scripts/requantize-gguf.py IN.gguf OUT.gguf Q4_0
"""
import os
import sys

import gguf
from gguf import GGMLQuantizationType as T
from gguf import quants


def main(src, dst, kind):
    target = T[kind]
    reader = gguf.GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    tmp = dst + ".partial"
    writer = gguf.GGUFWriter(tmp, arch)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        if field.name == "general.file_type":
            writer.add_file_type({T.Q4_0: 2, T.Q8_0: 7}[target])  # llama_ftype MOSTLY_Q4_0 / MOSTLY_Q8_0
            continue
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub)
    for t in reader.tensors:
        if t.tensor_type == T.Q4_1:
            x = quants.dequantize(t.data, t.tensor_type)
            q = quants.quantize(x, target)
            writer.add_tensor(t.name, q, raw_shape=q.shape, raw_dtype=target)
        else:
            writer.add_tensor(t.name, t.data, raw_shape=t.data.shape, raw_dtype=t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, dst)  # never leave half a model under the final name


if __name__ == "__main__":
    main(*sys.argv[1:4])
