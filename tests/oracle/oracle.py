#!/usr/bin/env python3
"""The conformance oracle: every case of ``docs/conformance.md`` whose anchor is Trio,
AnyIO or asyncio is played on the real library and compared with the Rust test.

    python3 tests/oracle/oracle.py            # run everything, print the report
    python3 tests/oracle/oracle.py --write    # ...and write the table's Result column
    python3 tests/oracle/oracle.py --check    # ...and fail if the table says otherwise (CI)
    python3 tests/oracle/oracle.py --only S01 G05 -v

Steps: (1) ``cargo test --test conformance`` with ``CONFORMANCE_TRACE_DIR`` set, so
every Rust ``Log`` writes its trace; (2) every twin in ``tests/oracle/cases/`` runs on
its library with a virtual clock (see ``harness.py``); (3) traces are compared; (4) the
Result column is produced: ``match (<library version>)``, or ``differs on purpose``
with the reason the twin declares. An undeclared difference, a declared one that is
not there, an anchored row without a twin, or (``--check``) a table that says
something else makes the run fail.

Needs ``trio`` and ``anyio`` (``pip install trio==0.35.0 anyio==4.16.0``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import traceback

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TABLE = ROOT / "docs" / "conformance.md"
sys.path.insert(0, str(HERE))

import harness  # noqa: E402

EXTERNAL = re.compile(r"\b(trio|anyio|asyncio)\b", re.IGNORECASE)
ROW = re.compile(r"^\| (?P<id>[SDGCRX]\d+[a-z]?) \|(?P<rest>.*)\|\s*$")


def rust_traces(dir: pathlib.Path) -> None:
    if dir.exists():
        shutil.rmtree(dir)
    env = dict(os.environ, CONFORMANCE_TRACE_DIR=str(dir))
    print("== cargo test --test conformance (writing traces)", flush=True)
    subprocess.run(
        ["cargo", "test", "--quiet", "--test", "conformance"], cwd=ROOT, env=env, check=True
    )


def load_trace(dir: pathlib.Path, test: str):
    path = dir / f"{test}.jsonl"
    if not path.exists():
        return None
    logs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    logs.sort(key=lambda l: l["log"])
    return [[(t, e) for t, e in l["events"]] for l in logs]


def table_rows():
    """id -> (line index, cells [scenario, test, anchor, result])."""
    rows = {}
    lines = TABLE.read_text().splitlines()
    for i, line in enumerate(lines):
        m = ROW.match(line)
        if not m:
            continue
        cells = [c.strip() for c in m.group("rest").split(" | ")]
        if len(cells) != 4:
            raise SystemExit(f"conformance.md line {i + 1}: expected 5 cells: {line}")
        rows[m.group("id")] = (i, cells)
    return lines, rows


def tests_of(cell: str) -> list[str]:
    return re.findall(r"`([a-z_]+::[a-z0-9_]+)`", cell)


def load_cases() -> None:
    for path in sorted((HERE / "cases").glob("*.py")):
        importlib.import_module(f"cases.{path.stem}")


def describe(labels: list[str], versions: dict[str, str]) -> str:
    names = []
    for label in labels:
        if label.startswith("anyio/"):
            name = f"{versions['anyio']} ({label.split('/')[1]} backend)"
        else:
            name = versions[label]
        if name not in names:
            names.append(name)
    return ", ".join(names)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--traces", type=pathlib.Path, help="use these Rust traces (skip cargo)")
    ap.add_argument("--write", action="store_true", help="write the Result column")
    ap.add_argument("--check", action="store_true", help="fail if the table differs")
    ap.add_argument("--only", nargs="*", help="only these case ids")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every trace")
    args = ap.parse_args()

    trace_dir = args.traces or ROOT / "target" / "conformance-traces"
    if not args.traces:
        rust_traces(trace_dir)
    load_cases()
    lines, rows = table_rows()
    versions = harness.versions()
    problems: list[str] = []
    results: dict[str, str] = {}
    by_id: dict[str, list[harness.Case]] = {}
    for c in harness.CASES:
        by_id.setdefault(c.id, []).append(c)

    for id, cases in by_id.items():
        if args.only and id not in args.only:
            continue
        if id not in rows:
            problems.append(f"{id}: a twin exists but docs/conformance.md has no row")
            continue
        row_tests = tests_of(rows[id][1][1])
        matched: list[str] = []
        declared: list[tuple[str, str, str]] = []  # (label, test, why)
        for c in cases:
            test = c.rust or (row_tests[0] if len(row_tests) == 1 else None)
            if test is None:
                problems.append(f"{id}: the row lists {row_tests}; say which with rust=")
                continue
            ours = load_trace(trace_dir, test)
            if ours is None:
                problems.append(f"{id}: no trace from {test} (does it use a Log, and pass?)")
                continue
            for label, run in harness.runs(c):
                try:
                    theirs = run()
                except Exception:
                    problems.append(f"{id} [{label}]: the twin raised:\n{traceback.format_exc()}")
                    continue
                same = harness.normalize(ours, c.order) == harness.normalize(theirs, c.order)
                if args.verbose or (not same and not c.differs):
                    print(f"-- {id} [{label}] vs {test}: {'same' if same else 'DIFFERENT'}")
                    if not same or args.verbose:
                        print(harness.diff(ours, theirs) or "  (identical)")
                if same and c.differs:
                    problems.append(
                        f"{id} [{label}]: declared to differ ({c.differs!r}) but the traces agree"
                    )
                elif same:
                    matched.append(label)
                elif c.differs:
                    declared.append((label, test, c.differs))
                else:
                    problems.append(f"{id} [{label}]: differs from {test} and is not declared")
        several_tests = len({c.rust or "" for c in cases}) > 1
        parts = []
        if matched:
            parts.append(f"match ({describe(matched, versions)})")
        for why in dict.fromkeys(w for _, _, w in declared):
            where = [(l, t) for l, t, w in declared if w == why]
            libs = describe([l for l, _ in where], versions)
            tests = ", ".join(dict.fromkeys(f"`{t.split('::')[1]}`" for _, t in where))
            scope = f"{tests} on {libs}" if several_tests else libs
            parts.append(f"differs on purpose ({scope}): {why}")
        if parts:
            results[id] = "; ".join(parts)

    # Rows anchored on a Python library need a twin; the others are this project's
    # own rules: their Rust tests are the check, so each must exist and not be ignored
    # (step 1 ran them all and failed on any failure).
    for id, (_, cells) in rows.items():
        if args.only and id not in args.only:
            continue
        if id not in by_id and EXTERNAL.search(cells[2]):
            problems.append(f"{id}: anchored on {cells[2]!r} but has no twin in tests/oracle/cases/")
        for test in tests_of(cells[1]):
            file, name = test.split("::")
            src = ROOT / "tests" / "conformance" / f"{file}.rs"
            text = src.read_text() if src.exists() else ""
            at = text.find(f"fn {name}(")
            if at < 0:
                problems.append(f"{id}: the table names {test}, which does not exist")
            elif "#[ignore" in text[text.rfind("\n}\n", 0, at) + 1 : at]:
                # An ignored test checks nothing (and writes no trace): the row would
                # claim a result nobody verified.
                problems.append(f"{id}: {test} is #[ignore]d")

    changed = []
    for id, result in results.items():
        i, cells = rows[id]
        if cells[3] != result:
            changed.append(f"{id}: table says {cells[3]!r}\n       oracle: {result!r}")
            cells = cells[:3] + [result]
            lines[i] = f"| {id} | " + " | ".join(cells) + " |"
    print(f"== oracle: {len(results)} cases compared, {len(changed)} table cells to update, "
          f"{len(problems)} problems")
    for p in problems:
        print(f"PROBLEM {p}")
    if args.write and changed:
        TABLE.write_text("\n".join(lines) + "\n")
        print(f"wrote {TABLE.relative_to(ROOT)}")
    elif args.check and changed:
        for c in changed:
            print(f"STALE {c}")
        problems.append("docs/conformance.md is not what the oracle produces (run with --write)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
