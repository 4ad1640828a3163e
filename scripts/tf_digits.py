#!/usr/bin/env python3
"""TensorFlow's side of wgflow-bench's "digits CNN training step (batch 64)": the same model
as examples/train_digits.rs and the bench's entry, built as a TF1 graph (conv 3x3x1x16 SAME +
bias + relu, 2x2 max pool, dense 256x10, sparse softmax cross-entropy, Adam 0.01), one
session.run of [train_op, loss] per step with the batch fed, timed as tf_bench.py times its
cases (3 warm-up runs, then at least 5 runs and up to 1 s or 200 runs; median and min ms).

Usage: tf_digits.py --json OUT.json   (the results in tf_bench.py's JSON layout)
"""
import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

CASE = "digits CNN training step (batch 64)"
BATCH = 64


def build():
    tf1 = tf.compat.v1
    rng = np.random.RandomState(0)
    x = tf1.placeholder(tf.float32, [None, 8, 8, 1])
    y = tf1.placeholder(tf.int32, [None])
    k = tf1.Variable(rng.uniform(-0.4, 0.4, (3, 3, 1, 16)).astype(np.float32), name="conv/kernel")
    kb = tf1.Variable(np.zeros(16, np.float32), name="conv/bias")
    w = tf1.Variable(rng.uniform(-0.1, 0.1, (256, 10)).astype(np.float32), name="dense/kernel")
    wb = tf1.Variable(np.zeros(10, np.float32), name="dense/bias")
    conv = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, k, [1, 1, 1, 1], "SAME"), kb))
    pooled = tf.nn.max_pool2d(conv, [1, 2, 2, 1], [1, 2, 2, 1], "VALID")
    logits = tf.nn.bias_add(tf.matmul(tf.reshape(pooled, [-1, 256]), w), wb)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    train = tf1.train.AdamOptimizer(0.01).minimize(loss)
    feed = {
        x: rng.uniform(0.0, 1.0, (BATCH, 8, 8, 1)).astype(np.float32),
        y: np.array([i * 7 % 10 for i in range(BATCH)], np.int32),
    }
    return [train, loss], feed


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--json", required=True)
    args = p.parse_args()
    tf1 = tf.compat.v1
    tf1.disable_v2_behavior()
    g = tf.Graph()
    with g.as_default():
        fetches, feed = build()
        with tf1.Session(graph=g) as s:
            s.run(tf1.global_variables_initializer())
            for _ in range(3):
                s.run(fetches, feed_dict=feed)
            times = []
            end = time.perf_counter() + 1.0
            while len(times) < 5 or (time.perf_counter() < end and len(times) < 200):
                t0 = time.perf_counter()
                s.run(fetches, feed_dict=feed)
                times.append((time.perf_counter() - t0) * 1e3)
    med, mn = statistics.median(times), min(times)
    print(f"  {CASE:<44} feed      median {med:9.3f} ms   min {mn:9.3f} ms   n={len(times)}")
    result = {"case": CASE, "mode": "feed", "median_ms": round(med, 4), "min_ms": round(mn, 4), "runs": len(times)}
    with open(args.json, "w") as f:
        json.dump({"tf_version": tf.__version__, "results": [result]}, f, indent=1)


if __name__ == "__main__":
    main()
