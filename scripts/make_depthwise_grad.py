#!/usr/bin/env python3
"""Writes tests/data/depthwise_grad.json with real TensorFlow: for a few depthwise convolutions
(multipliers 1 and 2, strides, SAME and VALID, a dilation), a seeded input, filter and upstream
gradient dy, and TF's gradients of sum(depthwise_conv2d(x, f) * dy) with respect to x and f
(DepthwiseConv2dNativeBackpropInput and ...Filter).

Usage: .venv-tf/bin/python scripts/make_depthwise_grad.py   (TF from scripts/bench-vs-tf.sh's venv)
"""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")
rng = np.random.RandomState(20261206)

# (input NHWC, filter [KH, KW, C, M], strides, padding, dilations)
CASES = [
    ([2, 7, 6, 3], [3, 3, 3, 2], [1, 2, 2, 1], "SAME", [1, 1]),
    ([1, 9, 8, 5], [3, 2, 5, 1], [1, 1, 1, 1], "VALID", [1, 1]),
    ([1, 8, 8, 4], [3, 3, 4, 1], [1, 1, 1, 1], "SAME", [2, 2]),
    ([2, 6, 7, 8], [5, 5, 8, 1], [1, 2, 1, 1], "SAME", [1, 1]),
]


def enc(a):
    a = np.asarray(a, dtype=np.float32)
    return {"dtype": "float32", "shape": list(a.shape), "data": [float(v) for v in a.ravel()]}


out = []
for xs, fs, strides, padding, dil in CASES:
    x = tf.constant(rng.uniform(-1, 1, xs).astype(np.float32))
    f = tf.constant(rng.uniform(-1, 1, fs).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, f])
        y = tf.nn.depthwise_conv2d(x, f, strides, padding, dilations=dil)
        dy = tf.constant(rng.uniform(-1, 1, y.shape).astype(np.float32))
        loss = tf.reduce_sum(y * dy)
    gx, gf = tape.gradient(loss, [x, f])
    out.append({"strides": strides, "padding": padding, "dilations": [1, dil[0], dil[1], 1],
                "x": enc(x), "filter": enc(f), "y": enc(y), "dy": enc(dy),
                "dx": enc(gx), "dfilter": enc(gf)})

os.makedirs(here, exist_ok=True)
with open(os.path.join(here, "depthwise_grad.json"), "w") as fh:
    json.dump({"tensorflow": tf.__version__, "cases": out}, fh)
print(f"wrote {len(out)} cases with TF {tf.__version__}")
