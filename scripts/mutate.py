#!/usr/bin/env python3
"""Mutation testing of the Raft core and its driver (`make mutate`; docs/design/mutation.md).

Plants one small bug at a time in src/core/*.c and src/runtime/driver.c, rebuilds the
simulator and the core's unit tests in build/mutate, and runs them. A mutant is *killed*
when a test fails (or hangs past the timeout), *survives* when everything passes, and is
*stillborn* when it does not compile (not counted). Prints every survivor with its file,
line and change, so a person can judge whether it is equivalent (changes no behaviour) or
a place where the suites are blind, and the score: killed / (killed + survived).

The mutation operators: a relational operator flipped (< <= > >= == !=), && and ||
swapped, an off-by-one (+ 1 and - 1 swapped), true and false swapped, and a simple
statement dropped (an assignment or a call on a line of its own). Comments, assertions,
trace lines, preprocessor lines and string literals are never mutated.

  scripts/mutate.py [--mutants N] [--seed S] [--seeds A-B] [--timeout SECONDS]
                    [--list] [--only FILE:LINE]

--mutants N picks N mutants at random (seeded by --seed) out of all of them; --list only
prints how many there are per file and operator. The source files are restored after
each mutant, also when the script is interrupted.
"""
import argparse
import os
import random
import re
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = sorted(
    [os.path.join("src/core", f) for f in os.listdir(os.path.join(ROOT, "src/core"))
     if f.endswith(".c")] + ["src/runtime/driver.c"])
OUT = "build/mutate"           # release: the simulator
OUT_ASAN = "build/mutate-asan"  # ASan+UBSan (leaks too): the core's unit tests
UNIT_TESTS = ["test_core", "test_core_features", "test_core_validation", "test_core_votes",
              "test_core_cost", "test_quorum"]
ASAN_SCENARIOS = ["raft/initial-election-2a", "raft/snapshot-install-2d", "member/*",
                  "read/linearizable-kv"]

SKIP_LINE = re.compile(
    r"^\s*(#|//|/\*|\*|CRAFT_ASSERT|CRAFT_UNREACHABLE|TRACE\(|CRAFT_TRACE|static_assert|"
    r"_Static_assert)")
RELATIONAL = [("<=", "<"), (">=", ">"), ("==", "!="), ("!=", "==")]
STRICT = [("<", "<="), (">", ">=")]


def code_part(line):
    """The line with string literals and a trailing comment blanked (same length)."""
    out, i, n = [], 0, len(line)
    while i < n:
        c = line[i]
        if c == '"':
            j = i + 1
            while j < n and line[j] != '"':
                j += 2 if line[j] == "\\" else 1
            out.append('"' + " " * (min(j, n - 1) - i - 1) + '"' if j < n else " " * (n - i))
            i = j + 1
            continue
        if line.startswith("/*", i) or line.startswith("//", i):
            out.append(" " * (n - i))
            break
        out.append(c)
        i += 1
    return "".join(out)[:n]


def mutants_of_line(path, lineno, line):
    if SKIP_LINE.match(line):
        return []
    code = code_part(line)
    found = []

    def add(col, old, new, kind):
        found.append((path, lineno, col, old, new, kind))

    for old, new in RELATIONAL:
        for m in re.finditer(re.escape(old), code):
            add(m.start(), old, new, "relational")
    for old, new in STRICT:
        # a lone < or >: not <=, <<, ->, >>, >=, not an #include <...>
        pat = r"(?<![<>\-=!])" + re.escape(old) + r"(?![<>=])"
        for m in re.finditer(pat, code):
            add(m.start(), old, new, "relational")
    for old, new in (("&&", "||"), ("||", "&&")):
        for m in re.finditer(re.escape(old), code):
            add(m.start(), old, new, "logical")
    for old, new in ((" + 1", " - 1"), (" - 1", " + 1")):
        for m in re.finditer(re.escape(old) + r"(?![0-9])", code):
            add(m.start(), old, new, "off-by-one")
    for old, new in (("true", "false"), ("false", "true")):
        for m in re.finditer(r"\b" + old + r"\b", code):
            add(m.start(), old, new, "boolean")
    stripped = code.strip()
    # A simple statement on its own line: an assignment or a call, ending the line.
    if (re.match(r"^[a-z_][\w\.\->\[\]]*\s*(=|\+=|-=|\|=|&=|\+\+|--)", stripped) or
            re.match(r"^[a-z_]\w*\(.*\);$", stripped)) and stripped.endswith(";") and \
            not re.match(r"^(return|break|continue|goto|case|default)\b", stripped) and \
            not re.match(r"^(const\s+)?(struct\s+)?\w+\s+\**\w+\s*=", stripped):
        indent = len(line) - len(line.lstrip())
        add(indent, line[indent:].rstrip("\n"), ";", "drop")
    return found


def all_mutants():
    out = []
    for path in TARGETS:
        with open(os.path.join(ROOT, path)) as f:
            lines = f.readlines()
        depth = 0  # inside a function body only (no mutants in tables or declarations)
        for i, line in enumerate(lines):
            code = code_part(line)
            if depth > 0:
                out.extend(mutants_of_line(path, i + 1, line))
            depth += code.count("{") - code.count("}")
    return out


def apply(text_lines, m):
    path, lineno, col, old, new, kind = m
    line = text_lines[lineno - 1]
    assert line[col:col + len(old)] == old, (m, line)
    lines = list(text_lines)
    lines[lineno - 1] = line[:col] + new + line[col + len(old):]
    if kind == "drop":
        lines[lineno - 1] = line[:col] + ";" + ("\n" if line.endswith("\n") else "")
    return lines


def run(cmd, timeout):
    """(returncode, output); returncode None on timeout (the process group is killed)."""
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True, text=True)
    try:
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        return None, out


def build(jobs):
    # No -Werror: a mutant may leave a variable unused or mix && and || without
    # parentheses, and is still a program whose behaviour the tests should judge.
    rc, out = run(["make", f"OUT={OUT}", f"-j{jobs}", "WARN=-w", f"{OUT}/bin/craft-sim"], 600)
    if rc != 0:
        return False, out
    targets = [f"{OUT_ASAN}/tests/{t}" for t in UNIT_TESTS] + [f"{OUT_ASAN}/bin/craft-sim"]
    rc, out = run(["make", "BUILD=asan", f"OUT={OUT_ASAN}", f"-j{jobs}", "WARN=-w"] + targets,
                  600)
    return rc == 0, out


def failure(rc, out):
    """What failed, for the report: the first failing scenario and seed (replay it with
    `craft-sim run NAME --seed S --trace`), else the timeout or exit status."""
    failing = re.findall(r"^FAIL (\S+) seed=(\d+)", out, re.M)
    if failing:
        return f"{failing[0][0]} seed {failing[0][1]}"
    return "timeout" if rc is None else "exit %d" % rc


def verdict(args):
    """'killed' with the failing test, or 'survived'. The unit tests run under ASan and
    UBSan, as the test command runs them, so a dropped free or a bad index counts; a few
    scenarios run under ASan too (its leak check sees the driver's frees), then every
    scenario in the release build."""
    for t in UNIT_TESTS:
        rc, out = run([f"{OUT_ASAN}/tests/{t}"], args.timeout)
        if rc != 0:
            return "killed", f"{t} ({failure(rc, out)})"
    sims = [("craft-sim (ASan)", f"{OUT_ASAN}/bin/craft-sim", ASAN_SCENARIOS, "1-2"),
            ("craft-sim", f"{OUT}/bin/craft-sim", ["all"], args.seeds)]
    for name, sim, scenarios, seeds in sims:
        rc, out = run([sim, "run"] + scenarios + ["--seeds", seeds, "--jobs", str(args.jobs)],
                      args.timeout)
        if rc != 0:
            return "killed", f"{name}: {failure(rc, out)}"
    return "survived", ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mutants", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seeds", default="1-10", help="simulator seeds per scenario")
    ap.add_argument("--timeout", type=int, default=60,
                    help="seconds per test run (the unmutated ones take a few)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--only", help="FILE:LINE: the mutants of that line only")
    args = ap.parse_args()

    def interrupted_by(signum, frame):
        raise KeyboardInterrupt  # also when started in the background (SIGINT ignored)

    signal.signal(signal.SIGINT, interrupted_by)
    signal.signal(signal.SIGTERM, interrupted_by)

    mutants = all_mutants()
    if args.list:
        counts = {}
        for m in mutants:
            counts[(m[0], m[5])] = counts.get((m[0], m[5]), 0) + 1
        for (path, kind), n in sorted(counts.items()):
            print(f"{path:32} {kind:12} {n}")
        print(f"{len(mutants)} mutants")
        return 0
    if args.only:
        path, line = args.only.rsplit(":", 1)
        chosen = [m for m in mutants if m[0] == path and m[1] == int(line)]
    else:
        rnd = random.Random(args.seed)
        chosen = rnd.sample(mutants, min(args.mutants, len(mutants)))
    print(f"mutate: {len(chosen)} of {len(mutants)} mutants (seed {args.seed}), "
          f"simulator seeds {args.seeds}", flush=True)

    ok, out = build(args.jobs)
    if not ok:
        print(out[-3000:])
        print("mutate: the unmutated tree does not build")
        return 2
    v, why = verdict(args)
    if v != "survived":
        print(f"mutate: the unmutated tree fails its tests ({why})")
        return 2

    originals = {}
    results = []
    interrupted = False

    def restore():
        for path, text in originals.items():
            with open(os.path.join(ROOT, path), "w") as f:
                f.writelines(text)

    try:
        for k, m in enumerate(chosen):
            path = m[0]
            if path not in originals:
                with open(os.path.join(ROOT, path)) as f:
                    originals[path] = f.readlines()
            mutated = apply(originals[path], m)
            with open(os.path.join(ROOT, path), "w") as f:
                f.writelines(mutated)
            t0 = time.time()
            ok, out = build(args.jobs)
            if not ok:
                v, why = "stillborn", "does not compile"
            else:
                v, why = verdict(args)
            with open(os.path.join(ROOT, path), "w") as f:
                f.writelines(originals[path])
            desc = (f"drop `{m[3].strip()}`" if m[5] == "drop"
                    else f"`{m[3].strip()}` -> `{m[4].strip()}`")
            results.append((v, m, desc, why))
            print(f"[{k + 1}/{len(chosen)}] {v:9} {path}:{m[1]} {m[5]}: {desc}"
                  f"{' (' + why + ')' if why else ''} {time.time() - t0:.0f}s", flush=True)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        restore()
        build(args.jobs)  # leave build/mutate matching the sources

    killed = sum(1 for r in results if r[0] == "killed")
    survived = [r for r in results if r[0] == "survived"]
    stillborn = sum(1 for r in results if r[0] == "stillborn")
    print()
    print("survivors (equivalent, or where the suites are blind):")
    for v, m, desc, why in survived:
        with open(os.path.join(ROOT, m[0])) as f:
            src = f.readlines()[m[1] - 1].strip()
        print(f"  {m[0]}:{m[1]} {m[5]}: {desc}    | {src}")
    counted = killed + len(survived)
    score = 100.0 * killed / counted if counted else 0.0
    print(f"mutate: {killed} killed, {len(survived)} survived, {stillborn} stillborn: "
          f"score {score:.1f}%{' (interrupted)' if interrupted else ''}")
    return 1 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
