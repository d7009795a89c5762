"""Writes small torch.save files in both formats (ZIP since PyTorch 1.6, and the legacy pickle) and the values
PyTorch itself reads back from them, for Tests/AttendTensorTests/TorchCheckpointTests.swift.

Run: .cache/venv/bin/python scripts/reference/make_torch_fixtures.py   (Benchmarks/setup-peers.sh makes the venv)
"""
import collections, io, json, os, pickle, sys
import torch

out = os.path.join(os.path.dirname(__file__), "../../Tests/AttendTensorTests/Fixtures/torch")
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)

base = torch.randn(6, 5)
state = collections.OrderedDict()
state["conv.weight"] = torch.randn(4, 3, 3, 3)
state["conv.bias"] = torch.nn.Parameter(torch.randn(4))           # _rebuild_parameter
state["transposed"] = base.t()                                      # strides (1, 5)
state["sliced"] = base[2:5, 1:4]                                    # storage offset, shared storage with "transposed"
state["half"] = torch.randn(7).half()
state["bfloat"] = torch.randn(3, 2).bfloat16()
state["double"] = torch.randn(2, 2).double()
state["long"] = torch.tensor([-3, 0, 5, 1 << 40])
state["int8"] = torch.tensor([-128, -1, 0, 127], dtype=torch.int8)
state["uint8"] = torch.tensor([0, 1, 255], dtype=torch.uint8)
state["bool"] = torch.tensor([True, False, True])
state["scalar"] = torch.tensor(2.5)
state["empty"] = torch.zeros(0, 3)
state["num_batches_tracked"] = torch.tensor(17)

expected = {}
for name, t in state.items():
    t = t.detach()
    expected[name] = {"shape": list(t.shape), "values": t.float().flatten().tolist()}

torch.save(state, os.path.join(out, "state-zip.pt"))
torch.save(state, os.path.join(out, "state-legacy.pt"), _use_new_zipfile_serialization=False)
# A training checkpoint: the tensors under "state_dict", beside an epoch count.
torch.save({"epoch": 3, "state_dict": collections.OrderedDict(list(state.items())[:2])}, os.path.join(out, "nested-zip.pt"))

# Read back by PyTorch itself, so the expected values are what torch.load gives.
for f in ["state-zip.pt", "state-legacy.pt"]:
    back = torch.load(os.path.join(out, f), weights_only=True)
    for name, t in back.items():
        assert t.float().flatten().tolist() == expected[name]["values"], (f, name)

# A pickle that asks for os.system: a safe loader must refuse it (torch.load with weights_only=True does too).
class Evil:
    def __reduce__(self):
        return (os.system, ("echo attend-was-here",))
buf = io.BytesIO()
torch.save({"weight": torch.ones(2), "payload": Evil()}, buf)
open(os.path.join(out, "evil-zip.pt"), "wb").write(buf.getvalue())

# A view with a zero stride claiming 2^30 elements from a one-element storage: refused before allocating.
torch.save({"huge": torch.zeros(1).expand(1 << 30)}, os.path.join(out, "expanded-huge-zip.pt"))

json.dump(expected, open(os.path.join(out, "expected.json"), "w"), indent=0)
print("torch", torch.__version__, "->", out)
