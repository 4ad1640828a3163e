#!/usr/bin/env python3
"""Writes tests/data/more_ops.pb and tests/data/more_ops.json with real TensorFlow: a TF1 graph
with the op types the GraphDef importer reads beyond ../shared/graphdefs/ (FusedBatchNormV3 in
inference mode, Shape, Fill, Split, SplitV, Unpack, IdentityN, Tile, GatherV2 along axis 0 with 2-D
indices and along axis 1), a seeded input and TF's outputs.

Usage: .venv-tf/bin/python scripts/make_more_ops_pb.py   (TF from scripts/bench-vs-tf.sh's venv)
"""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf1 = tf.compat.v1
tf1.disable_v2_behavior()
here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")
rng = np.random.RandomState(20261206)

g = tf.Graph()
with g.as_default():
    x = tf1.placeholder(tf.float32, [2, 3, 4, 6], name="x")
    scale = tf.constant(rng.uniform(0.5, 1.5, 6).astype(np.float32))
    offset = tf.constant(rng.uniform(-0.5, 0.5, 6).astype(np.float32))
    mean = tf.constant(rng.uniform(-0.2, 0.2, 6).astype(np.float32))
    var = tf.constant(rng.uniform(0.5, 2.0, 6).astype(np.float32))
    bn, _, _ = tf1.nn.fused_batch_norm(x, scale, offset, mean=mean, variance=var, epsilon=1e-3,
                                       is_training=False, name="bn")
    tf.identity(bn, name="bn_out")
    shape = tf.shape(x, name="shape_of_x")
    tf.identity(shape, name="shape_out")
    tf.fill([2, 3], 1.5, name="filled")
    tf.add(tf.cast(shape, tf.float32)[0], bn, name="bn_plus_batch")
    a, b, c = tf.split(x, 3, axis=3, name="split3")
    tf.identity(b, name="split_mid")
    tf.add(a, c, name="split_sum")
    p, q = tf.split(x, [1, -1], axis=2, name="splitv")
    tf.identity(q, name="splitv_last")
    rows = tf.unstack(x, axis=1, name="unpack")
    tf.identity(rows[2], name="unpack_last")
    both = tf.identity_n([a, rows[0]], name="identity_n")
    tf.identity(both[1], name="identity_n_second")
    tf.tile(x, [1, 2, 1, 3], name="tiled")
    tf.gather(x, tf.constant([[1, 0], [1, 1]], dtype=tf.int32), axis=0, name="gather_rows")
    tf.gather(x, tf.constant([2, 0, 2], dtype=tf.int32), axis=1, name="gather_axis1")

feed = rng.uniform(-1, 1, (2, 3, 4, 6)).astype(np.float32)
fetches = ["bn_out:0", "shape_out:0", "filled:0", "bn_plus_batch:0", "split_mid:0", "split_sum:0",
           "splitv_last:0", "unpack_last:0", "identity_n_second:0", "tiled:0", "gather_rows:0",
           "gather_axis1:0"]
with tf1.Session(graph=g) as s:
    outs = s.run(fetches, {"x:0": feed})


def enc(a):
    a = np.asarray(a)
    dtype = {np.dtype("float32"): "float32", np.dtype("int32"): "int32"}[a.dtype]
    return {"dtype": dtype, "shape": list(a.shape), "data": [float(v) if dtype == "float32" else int(v) for v in a.ravel()]}


os.makedirs(here, exist_ok=True)
tf.io.write_graph(g.as_graph_def(), here, "more_ops.pb", as_text=False)
with open(os.path.join(here, "more_ops.json"), "w") as f:
    json.dump({"tensorflow": tf.__version__, "feeds": {"x:0": enc(feed)},
               "expected": {k: enc(v) for k, v in zip(fetches, outs)}}, f)
print("wrote", [k for k in fetches])
