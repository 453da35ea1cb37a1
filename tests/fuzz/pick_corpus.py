#!/usr/bin/python3
"""pick_corpus.py FUZZER OUTDIR MAX CORPUSDIR...

Keeps a checked-in corpus small (it replays in ctest): libFuzzer's -merge=1
measures the features of every input in CORPUSDIRs (its control file), then
a greedy set cover takes the input adding the most features not yet covered,
again and again, until MAX inputs or nothing new; those are copied to OUTDIR
(emptied first) under their names (seeds keep theirs, libFuzzer's finds are
named by their SHA-1). Prints how
many features the pick covers out of all.
"""
import os
import shutil
import subprocess
import sys
import tempfile


def main():
    fuzzer, outdir, limit, dirs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    with tempfile.TemporaryDirectory(prefix="fz9-pick-") as tmp:
        control = os.path.join(tmp, "control")
        empty = os.path.join(tmp, "out")
        os.mkdir(empty)
        subprocess.run(["nice", "-n", "19", fuzzer, "-merge=1", "-merge_control_file=" + control,
                        "-rss_limit_mb=2048", "-timeout=10", empty, *dirs],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        files, feats = [], {}
        with open(control) as fp:
            n = int(fp.readline())
            fp.readline()
            files = [fp.readline().rstrip("\n") for _ in range(n)]
            for line in fp:
                parts = line.split()
                if parts and parts[0] == "FT":
                    feats[int(parts[1])] = set(map(int, parts[2:]))
    allf = set().union(*feats.values()) if feats else set()
    covered, picked = set(), []
    while len(picked) < limit:
        best, gain = None, 0
        for idx, f in feats.items():
            g = len(f - covered)
            if g > gain or (g == gain and g > 0 and os.path.getsize(files[idx]) < os.path.getsize(files[best])):
                best, gain = idx, g
        if best is None or gain == 0:
            break
        covered |= feats.pop(best)
        picked.append(best)
    if os.path.isdir(outdir):
        shutil.rmtree(outdir)
    os.makedirs(outdir)
    for idx in picked:
        shutil.copyfile(files[idx], os.path.join(outdir, os.path.basename(files[idx])))
    print("%d inputs, %d of %d features" % (len(picked), len(covered), len(allf)))


if __name__ == "__main__":
    main()
