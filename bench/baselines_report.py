#!/usr/bin/env python3
"""Compare the adasoftmax tool's JSON Lines outputs against an exact run.

    baselines_report.py EXACT.jsonl LABEL=RUN.jsonl [LABEL=RUN.jsonl ...]
        [--plot OUT.dat] [--ref-top FILE] [--labels L.npy] [--labels-hs L.npy]

For every run: median ns per query, speed-up (median exact ns / median ns,
both from this one invocation of the benchmark), mean samples (multiply-adds
with the method's matrices), top-1 and top-5 agreement with the exact run
(top-5: the whole set equal, and the mean overlap), the median relative
error of the top-1 probability (when the top-1 agrees) and the median
|log_norm - exact log_norm|. Only the queries present in both files count
(an ada run with --calibrate N reports queries N.. only).

A LABEL of the form "hs:..." is a different model (hierarchical softmax):
its agreement is computed against --ref-top (fastText's own predictions,
one line per query with up to 5 label indices) when given, and its
probability / normalizer errors are not comparable, so they are left out.
--labels / --labels-hs ('<i4' .npy, one true class per query, in the
flat head's / the hs model's class order) add the top-1 accuracy on the
true next word: the one figure that compares the two models.

Prints a markdown table; with --plot writes "label speedup top1" rows for
gnuplot. Standard library only.
"""
import json
import statistics
import sys


def load(path):
    rows, summary = {}, None
    with open(path) as f:
        for line in f:
            obj = json.loads(line)
            if "summary" in obj:
                summary = obj["summary"]
            else:
                rows[obj["query"]] = obj
    return rows, summary


def load_labels(path):
    """A 1-D '<i4' .npy (format 1.0), as a list."""
    with open(path, "rb") as f:
        b = f.read()
    if b[:6] != b"\x93NUMPY" or b[6] != 1:
        sys.exit(f"{path}: not a .npy 1.0 file")
    hl = int.from_bytes(b[8:10], "little")
    hdr = b[10:10 + hl].decode("latin1")
    if "'<i4'" not in hdr:
        sys.exit(f"{path}: dtype is not '<i4'")
    data = b[10 + hl:]
    return [int.from_bytes(data[i:i + 4], "little", signed=True)
            for i in range(0, len(data) - 3, 4)]


def load_ref_top(path):
    tops = {}
    with open(path) as f:
        for q, line in enumerate(f):
            tops[q] = [int(t) for t in line.split()]
    return tops


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main(argv):
    args, plot, ref_top_path = [], None, None
    labels = labels_hs = None
    i = 1
    while i < len(argv):
        if argv[i] == "--plot":
            plot = argv[i + 1]
            i += 2
        elif argv[i] == "--ref-top":
            ref_top_path = argv[i + 1]
            i += 2
        elif argv[i] == "--labels":
            labels = load_labels(argv[i + 1])
            i += 2
        elif argv[i] == "--labels-hs":
            labels_hs = load_labels(argv[i + 1])
            i += 2
        else:
            args.append(argv[i])
            i += 1
    if len(args) < 2:
        sys.exit(__doc__)
    exact, _ = load(args[0])
    ref_top = load_ref_top(ref_top_path) if ref_top_path else None
    exact_ns = statistics.median(r["ns"] for r in exact.values())
    def accuracy(rows, qs, lab):
        if lab is None:
            return None
        qs = [q for q in qs if q < len(lab)]
        return sum(rows[q]["top"][:1] == [lab[q]] for q in qs) / len(qs)

    print("| method | params | median us | speed-up | samples | top-1 agree "
          "| top-5 set agree | top-5 overlap | median rel err p1 "
          "| median abs err log_norm | true-label top-1 |")
    print("|:--|:--|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    acc = accuracy(exact, sorted(exact), labels)
    print(f"| exact | | {exact_ns / 1e3:.1f} | 1.00 | "
          f"{statistics.mean(r['samples'] for r in exact.values()):.3g} "
          f"| 100% | 100% | 1.000 | 0 | 0 | {fmt(acc and acc * 100, '.1f')}% |"
          .replace("-%", "-"))
    plot_rows = []
    for spec in args[1:]:
        label, path = spec.rsplit("=", 1)  # labels may hold "="
        rows, _ = load(path)
        hs = label.startswith("hs")
        if hs and ref_top is not None:
            ref = {q: ref_top[q] for q in rows if q in ref_top}
        elif hs:
            ref = None
        else:
            ref = {q: exact[q]["top"] for q in rows if q in exact}
        qs = sorted(rows) if ref is None else sorted(q for q in rows if q in ref)
        if not qs:
            continue
        ns = statistics.median(rows[q]["ns"] for q in qs)
        speedup = exact_ns / ns
        samples = statistics.mean(rows[q]["samples"] for q in qs)
        top1 = top5 = overlap = p_err = ln_err = None
        if ref is not None:
            top1 = sum(rows[q]["top"][:1] == ref[q][:1] for q in qs) / len(qs)
            k = min(5, min(len(rows[q]["top"]) for q in qs))
            if k >= 5:
                top5 = sum(set(rows[q]["top"][:5]) == set(ref[q][:5])
                           for q in qs) / len(qs)
                overlap = statistics.mean(
                    len(set(rows[q]["top"][:5]) & set(ref[q][:5])) / 5
                    for q in qs)
        if not hs:
            errs = [abs(rows[q]["p"][0] - exact[q]["p"][0]) / exact[q]["p"][0]
                    for q in qs
                    if rows[q]["top"][:1] == exact[q]["top"][:1]
                    and exact[q]["p"][0] > 0]
            p_err = statistics.median(errs) if errs else None
            ln_err = statistics.median(
                abs(rows[q]["log_norm"] - exact[q]["log_norm"]) for q in qs)
        name, _, params = label.partition(":")
        acc = accuracy(rows, qs, labels_hs if hs else labels)
        print(f"| {name} | {params} | {ns / 1e3:.1f} | {speedup:.2f} | "
              f"{samples:.3g} | {fmt(top1 and top1 * 100, '.1f')}% | "
              f"{fmt(top5 and top5 * 100, '.1f')}% | {fmt(overlap, '.3f')} | "
              f"{fmt(p_err, '.2e')} | {fmt(ln_err, '.2e')} | "
              f"{fmt(acc and acc * 100, '.1f')}% |"
              .replace("-%", "-"))
        if top1 is not None:
            plot_rows.append((name, params or name, speedup, top1 * 100))
    if plot:
        with open(plot, "w") as f:
            for name, params, s, t in plot_rows:
                f.write(f'{name} "{params}" {s:.4f} {t:.3f}\n')


if __name__ == "__main__":
    main(sys.argv)
