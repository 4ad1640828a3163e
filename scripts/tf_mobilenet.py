#!/usr/bin/env python3
"""TensorFlow's side of wgflow-bench's "MobileNetV2 0.35 96x96 inference (batch N)" entries:
the same frozen file (../shared/graphdefs/mobilenet_v2_frozen.pb, or WGFLOW_MOBILENET_PB),
imported with tf.compat.v1.import_graph_def and run in a TF1 session with a random batch fed to
input:0 and Identity:0 fetched, for batches 1 and 8, timed as tf_bench.py times its cases
(3 warm-up runs, then at least 5 runs and up to 1 s or 200 runs; median and min ms).

Usage: tf_mobilenet.py --json OUT.json   (the results in tf_bench.py's JSON layout)
"""
import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PB = os.path.join(HERE, "..", "..", "shared", "graphdefs", "mobilenet_v2_frozen.pb")
BATCHES = [1, 8]


def case_name(batch):
    return f"MobileNetV2 0.35 96x96 inference (batch {batch})"


def time_runs(run):
    for _ in range(3):
        run()
    times = []
    end = time.perf_counter() + 1.0
    while len(times) < 5 or (time.perf_counter() < end and len(times) < 200):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times), len(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--json", required=True)
    args = p.parse_args()
    tf1 = tf.compat.v1
    tf1.disable_v2_behavior()
    graph_def = tf1.GraphDef()
    with open(os.environ.get("WGFLOW_MOBILENET_PB", DEFAULT_PB), "rb") as f:
        graph_def.ParseFromString(f.read())
    g = tf.Graph()
    with g.as_default():
        tf1.import_graph_def(graph_def, name="")
    results = []
    rng = np.random.RandomState(7)
    with tf1.Session(graph=g) as s:
        x, y = g.get_tensor_by_name("input:0"), g.get_tensor_by_name("Identity:0")
        for batch in BATCHES:
            feed = {x: rng.uniform(-1, 1, (batch, 96, 96, 3)).astype(np.float32)}
            med, mn, n = time_runs(lambda: s.run(y, feed_dict=feed))
            print(f"  {case_name(batch):<44} feed      median {med:9.3f} ms   min {mn:9.3f} ms   n={n}")
            results.append({"case": case_name(batch), "mode": "feed", "median_ms": round(med, 4),
                            "min_ms": round(mn, 4), "runs": n})
    with open(args.json, "w") as f:
        json.dump({"tf_version": tf.__version__, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
