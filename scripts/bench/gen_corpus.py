#!/usr/bin/env python3
"""Deterministic benchmark corpus for rsops vs sops.

Writes, into the output directory:
  {tiny,medium,large}.yaml  YAML with comments, nested maps and lists of maps
  {tiny,medium,large}.json  the same shape as JSON
  medium.env                dotenv
  scale-{10,25,50,100}k.{yaml,json,env}  for the scaling check
  many/f000.yaml ... f199.yaml           200 tiny files

Sizes: tiny = 10 values, medium = 10k values (~1 MB), large = 100k values (~10 MB).
The same seed always gives the same bytes.
"""
import json
import os
import random
import sys

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
         "india", "juliett", "kilo", "lima", "mike", "november", "oscar", "papa"]


def scalar(rng):
    k = rng.randrange(10)
    if k < 6:
        # secret-looking strings (tokens, keys) of 60-250 bytes
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                       for _ in range(rng.randrange(60, 250)))
    if k == 5:
        return rng.randrange(-100000, 100000)
    if k == 6:
        return round(rng.uniform(-1000, 1000), 3)
    if k == 7:
        return rng.choice([True, False])
    if k == 8:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randrange(2, 8)))
    return "postgres://user:%s@db-%d.internal:5432/app" % (rng.randrange(10**8), rng.randrange(100))


def tree(rng, n_values):
    """A list of top-level services, each a map with nested maps and lists of maps."""
    doc = {}
    count = 0
    i = 0
    while count < n_values:
        svc = {}
        for j in range(rng.randrange(3, 8)):
            svc["key_%d" % j] = scalar(rng)
            count += 1
        svc["nested"] = {"password": scalar(rng), "user": scalar(rng), "port": rng.randrange(1, 65535)}
        count += 3
        svc["replicas"] = [{"name": "r%d" % r, "token": scalar(rng)} for r in range(rng.randrange(1, 4))]
        count += 2 * len(svc["replicas"])
        doc["service_%d" % i] = svc
        i += 1
    return doc


def yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v)  # a double-quoted YAML string


def write_yaml(doc, rng, out):
    lines = ["# generated benchmark corpus"]
    for name, svc in doc.items():
        if rng.randrange(4) == 0:
            lines.append("# service %s" % name)
        lines.append("%s:" % name)
        for k, v in svc.items():
            if k == "nested":
                lines.append("    nested:")
                for nk, nv in v.items():
                    lines.append("        %s: %s" % (nk, yaml_scalar(nv)))
            elif k == "replicas":
                lines.append("    replicas:")
                for r in v:
                    lines.append("        - name: %s" % yaml_scalar(r["name"]))
                    lines.append("          token: %s" % yaml_scalar(r["token"]))
            else:
                comment = "  # note" if rng.randrange(10) == 0 else ""
                lines.append("    %s: %s%s" % (k, yaml_scalar(v), comment))
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


def write_json(doc, out):
    with open(out, "w") as f:
        json.dump(doc, f, indent="\t")
        f.write("\n")


def write_env(n_values, rng, out):
    with open(out, "w") as f:
        f.write("# generated benchmark corpus\n")
        for i in range(n_values):
            v = scalar(rng)
            if isinstance(v, bool):
                v = "true" if v else "false"
            f.write("VAR_%d=%s\n" % (i, v))


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "target/bench-corpus"
    os.makedirs(os.path.join(out_dir, "many"), exist_ok=True)
    sizes = {"tiny": 10, "medium": 10_000, "large": 100_000,
             "scale-10k": 10_000, "scale-25k": 25_000, "scale-50k": 50_000, "scale-100k": 100_000}
    for name, n in sizes.items():
        rng = random.Random(sum(map(ord, name)))
        doc = tree(rng, n)
        write_yaml(doc, random.Random(1), os.path.join(out_dir, name + ".yaml"))
        write_json(doc, os.path.join(out_dir, name + ".json"))
        if name in ("medium",) or name.startswith("scale"):
            write_env(n, random.Random(2), os.path.join(out_dir, name + ".env"))
    for i in range(200):
        rng = random.Random(1000 + i)
        write_yaml(tree(rng, 10), random.Random(i), os.path.join(out_dir, "many", "f%03d.yaml" % i))
    print(out_dir)


if __name__ == "__main__":
    main()
