#!/usr/bin/env python3
"""Joins the rounds of tf_bench.py and wgflow-bench --cpu-only that scripts/bench-vs-tf.sh ran
into one markdown table: per case, each side's median per round and wgflow's speed over TF's
(TF time / wgflow time) per round, with the issue's target where it has one.

Usage: vs_tf.py DIR ROUNDS   (DIR holds tf-N.json, tf-digits-N.json, tf-mobilenet-N.json and
wgflow-N/latest.json)
"""
import json
import platform
import sys

# wgflow-bench entry -> (tf_bench case, mode, target speed or None). wgflow's resident entries
# run the op as a target without fetching it, as tf_bench's "noreturn" mode does.
CASES = [
    ("conv2d 8x64x64x32 * 3x3x32x64 s1", ("conv2d [8,64,64,32]x[3,3,32,64] s1 SAME", "noreturn"), 0.95),
    ("conv2d 1x224x224x3 * 7x7x3x64 s2", ("conv2d [1,224,224,3]x[7,7,3,64] s2 SAME", "noreturn"), 0.95),
    ("matmul 1024x1024x1024", ("matmul 1024x1024x1024", "noreturn"), 0.95),
    ("relu(a*b+c) 16M resident fused", ("relu(a*b+c) 16M f32", "noreturn"), 1.5),
    ("relu(a*b+c) 1M resident fused", ("relu(a*b+c) 1M f32", "noreturn"), None),
    ("add 16M resident", ("add 16M f32", "noreturn"), 1.3),
    ("add 16M fed", ("add 16M f32", "feed"), None),
    ("add 1M resident", ("add 1M f32", "noreturn"), None),
    ("add 1M fed", ("add 1M f32", "feed"), None),
    ("run overhead (1 tiny op, fetched)", ("session.run(scalar const)", "-"), None),
    ("digits CNN training step (batch 64)", ("digits CNN training step (batch 64)", "feed"), 1.0),
    ("MobileNetV2 0.35 96x96 inference (batch 1)", ("MobileNetV2 0.35 96x96 inference (batch 1)", "feed"), None),
    ("MobileNetV2 0.35 96x96 inference (batch 8)", ("MobileNetV2 0.35 96x96 inference (batch 8)", "feed"), None),
]
# The extra TF scripts' results, tf-NAME-N.json beside tf_bench.py's tf-N.json.
EXTRAS = ["digits", "mobilenet"]


def fmt_ms(ms):
    return f"{ms * 1e3:.1f} µs" if ms < 0.1 else f"{ms:.2f} ms"


def main():
    folder, rounds = sys.argv[1], int(sys.argv[2])
    tf_runs, wg_runs, tf_version = [], [], "?"
    for i in range(1, rounds + 1):
        with open(f"{folder}/tf-{i}.json") as f:
            d = json.load(f)
        tf_version = d.get("tf_version", tf_version)
        results = d["results"]
        for extra in EXTRAS:
            try:
                with open(f"{folder}/tf-{extra}-{i}.json") as f:
                    results = results + json.load(f)["results"]
            except FileNotFoundError:
                pass
        tf_runs.append({(r["case"], r["mode"]): r["median_ms"] for r in results})
        with open(f"{folder}/wgflow-{i}/latest.json") as f:
            d = json.load(f)
        entries = d["runs"][0]["entries"]
        wg_runs.append({e["name"]: e["policies"]["all-CPU"]["median_s"] * 1e3 for e in entries})
    print(f"wgflow (CPU) against TensorFlow {tf_version} (CPU, its default oneDNN build), on "
          f"{platform.machine()} with the machine's cores; {rounds} rounds run alternately "
          "(TF, wgflow, ...). Medians per round; speed = TF time / wgflow time, per round.\n")
    print("| case | TF median | wgflow median | wgflow / TF speed | target | met? |")
    print("|---|---|---|---|---|---|")
    for name, key, target in CASES:
        tf = [r.get(key) for r in tf_runs]
        wg = [r.get(name) for r in wg_runs]
        if any(v is None for v in tf + wg):
            print(f"| {name} | — | — | missing from a run | | |")
            continue
        speeds = [t / w for t, w in zip(tf, wg)]
        shown = ", ".join(f"{s:.2f}x" for s in speeds)
        met = "" if target is None else ("yes" if min(speeds) >= target else "no")
        goal = "" if target is None else f"≥ {target:.2f}x"
        print(f"| {name} | {', '.join(fmt_ms(t) for t in tf)} | {', '.join(fmt_ms(w) for w in wg)} | "
              f"{shown} | {goal} | {met} |")


if __name__ == "__main__":
    main()
