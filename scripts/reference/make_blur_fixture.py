"""Expected values for `Image.gaussianBlurred`, from scipy's `ndimage.gaussian_filter` (mode "nearest": the edge
pixels repeated past the border), on a random 3-channel 7 x 9 picture, each channel filtered alone (sigma 0 along the
channel axis) -> Tests/AttendVisionTests/Fixtures/gaussian_blur.json

The cases cover a blur narrower than a pixel (sigma 0.3: radius 1), the everyday one (1.0), a shorter truncation
(1.5 at truncate 2: radius 3) and one wider than the picture (sigma 3: radius 12 > 9, so whole lines of edge values
are repeated).

Run: .cache/venv/bin/python scripts/reference/make_blur_fixture.py   (needs numpy and scipy)
"""
import json, os
import numpy as np
from scipy import ndimage

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../..")
rng = np.random.default_rng(3)
picture = rng.random((3, 7, 9)).astype(np.float32)   # channels x height x width
cases = []
for sigma, truncate in [(0.3, 4.0), (1.0, 4.0), (1.5, 2.0), (3.0, 4.0)]:
    out = ndimage.gaussian_filter(picture.astype(np.float64), sigma=(0, sigma, sigma), mode="nearest", truncate=truncate)
    cases.append({"sigma": sigma, "truncate": truncate, "pixels": [float(v) for v in out.ravel()]})
path = os.path.join(root, "Tests/AttendVisionTests/Fixtures/gaussian_blur.json")
with open(path, "w") as f:
    json.dump({"width": 9, "height": 7, "channels": 3, "pixels": [float(v) for v in picture.ravel()], "cases": cases}, f)
print("wrote", path)
