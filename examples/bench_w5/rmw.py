#!/usr/bin/env python3
"""Atomic read-modify-writes a run, by function, from two callgrind profiles (BENCHMARKS.md,
"Issue 20, sixth pass (in memory)"): the instructions with a `lock` prefix, or an `xchg` with
memory, that each function executed, in the difference of the two profiles, / N.

    valgrind --tool=callgrind --dump-instr=yes --compress-pos=no --compress-strings=no \
        --callgrind-out-file=A target/release/examples/bench_w5 --profile --n 2000 --variants w5
    (the same with --n 4000 into B)
    python3 examples/bench_w5/rmw.py A B 2000
"""
import sys, re, subprocess, collections
def parse(path):
    counts = collections.Counter()
    ob = fn = None
    skip = False
    obs = {}
    fns = {}
    for line in open(path):
        line = line.rstrip('\n')
        if skip:
            skip = False; continue
        if line.startswith('ob='):
            ob = line[3:]; continue
        if line.startswith('fn='):
            fn = line[3:]; continue
        if line.startswith('calls='):
            skip = True; continue
        if line.startswith(('cob=','cfi=','cfn=','fl=','fi=','fe=')):
            continue
        if line.startswith('0x'):
            p = line.split()
            counts[(ob, fn, int(p[0],16))] += int(p[2]) if len(p) > 2 else 0
    return counts
a = parse(sys.argv[1]); b = parse(sys.argv[2]); N = float(sys.argv[3])
obs = set(k[0] for k in b)
atomic_addrs = {}
for ob in obs:
    if not ob.startswith('/'): continue
    out = subprocess.run(['objdump','-d','--no-show-raw-insn',ob],capture_output=True,text=True).stdout
    s=set()
    for l in out.splitlines():
        m = re.match(r'\s*([0-9a-f]+):\s+(.*)', l)
        if not m: continue
        ins = m.group(2)
        if ins.startswith('lock ') or (ins.startswith('xchg') and '(' in ins):
            s.add((int(m.group(1),16), ins.split('#')[0].strip()))
    atomic_addrs[ob] = dict(s)
per = collections.Counter(); total = 0
detail = collections.defaultdict(list)
for k, v in b.items():
    ob, fn, addr = k
    d = v - a.get(k, 0)
    if d and ob in atomic_addrs and addr in atomic_addrs[ob]:
        per[fn] += d/N; total += d/N
        detail[fn].append((hex(addr), atomic_addrs[ob][addr], d/N))
for fn, c in per.most_common():
    if c < 0.01: continue
    print(f"{c:7.2f}  {fn}")
    for x in sorted(detail[fn]):
        if x[2] >= 0.01: print("           ", x)
print("total", total)
