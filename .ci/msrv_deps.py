#!/usr/bin/env python3
"""Fails when a locked dependency needs a newer Rust than the workspace's
rust-version says.

Only one toolchain exists on the CI machines and no other can be fetched, so
the minimum is checked in two halves: clippy's `incompatible_msrv` lint (in
the clippy step, warnings denied) refuses std APIs newer than rust-version in
our code, and this script refuses dependencies (as locked, for the Linux
targets we build) whose own rust-version is newer. Neither sees language
features (let-chains need 1.88): those were reviewed by hand when
rust-version was set.
"""
import json
import subprocess
import sys

TARGET = "x86_64-unknown-linux-gnu"


def version(v):
    parts = [int(x) for x in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def built():
    """(name, version) of every package built for TARGET: what `cargo tree`
    shows (cargo metadata's resolve also holds features nobody enables)."""
    out = subprocess.run(
        ["cargo", "tree", "--workspace", "--locked", "--target", TARGET,
         "-e", "normal,build,dev", "--prefix", "none", "-f", "{p}"],
        check=True, capture_output=True, text=True,
    ).stdout
    return {tuple(line.split()[:2]) for line in out.splitlines() if line.strip()}


def main():
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked"],
            check=True, capture_output=True, text=True,
        ).stdout
    )
    ours = {p["id"]: p for p in meta["packages"]}
    members = set(meta["workspace_members"])
    floor = max(version(ours[m]["rust_version"]) for m in members)
    floor_text = ".".join(map(str, floor))
    used = built()
    too_new = sorted(
        (p["name"], p["version"], p["rust_version"])
        for p in ours.values()
        if (p["name"], "v" + p["version"]) in used and p.get("rust_version") and version(p["rust_version"]) > floor
    )
    for name, ver, rv in too_new:
        print(f"{name} {ver} needs Rust {rv}, newer than rust-version {floor_text}")
    if too_new:
        sys.exit(1)
    print(f"every locked dependency builds with Rust {floor_text}")


if __name__ == "__main__":
    main()
