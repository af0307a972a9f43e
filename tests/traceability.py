#!/usr/bin/env python3
"""Requirement traceability check for async_socket.

Usage: python3 tests/traceability.py [REPO_ROOT]

The requirement IDs are those defined in the requirements documents devdoc/*_requirements.md,
one bullet per ID: "- **SRS_<MODULE>_xx_yyy**: ..." (SRS_ASYNC_SOCKET_LINUX_ for
async_socket_linux, other prefixes for other modules). When the seed document
(REPO_ROOT/../shared/seed/async_socket_linux_requirements.md) is present, each of its IDs must be
defined in a devdoc as well; the devdocs are authoritative because the seed may be absent.

For every ID the check requires:
  - an entry in the devdoc,
  - a Codes_<ID> tag in src/ or tools/ (*.c, *.h; tools/ holds the asock-echo and asock-load
    programs and the *.sh script of `make run`),
  - a Tests_<ID> tag in tests/ (*.c, or *.py for the test drivers of the tools).
It also fails on references that name an ID the devdoc does not define (typos), on malformed
tags (e.g. "Test_SRS_..."), on Codes_ tags outside src/ and tools/ or Tests_ tags outside tests/,
and on IDs defined twice in the devdoc.

Prints a summary table and the missing lists; exits 1 when anything is wrong, 0 otherwise.
Python 3 standard library only.
"""

import re
import sys
from pathlib import Path

DEVDOC_DIR = Path("devdoc")
DEVDOC_GLOB = "*_requirements.md"
SEED = Path("..") / "shared" / "seed" / "async_socket_linux_requirements.md"

# A well-formed ID: SRS_, an upper-case module name, two numbers, and no further digit (so
# 11_0431 is not read as 11_043).
ID_RE = re.compile(r"SRS_[A-Z][A-Z0-9]*(?:_[A-Z][A-Z0-9]*)*_\d+_\d+(?!\d)")
# A definition line in a devdoc: a list bullet whose text starts with the bold ID.
DEFINITION_RE = re.compile(r"^\s*[-*]\s+\*\*(SRS_[A-Z][A-Z0-9_]*?_\d+_\d+)\*\*")
# Any identifier-like token that contains an ID prefix, with whatever is glued to it.
TOKEN_RE = re.compile(r"[A-Za-z0-9_]*SRS_[A-Z][A-Za-z0-9_]*")
WELL_FORMED_RE = re.compile(r"^(Codes_|Tests_)?(SRS_[A-Z][A-Z0-9]*(?:_[A-Z][A-Z0-9]*)*_\d+_\d+)$")
NUMBERS_RE = re.compile(r"^(.*?)_(\d+)_(\d+)$")


def id_key(requirement_id):
    """Sorts by module, then numerically: SRS_X_04_001 < SRS_X_11_001 < SRS_X_99_001."""
    module, major, minor = NUMBERS_RE.match(requirement_id).groups()
    return (module, int(major), int(minor))


def read_text(path):
    return path.read_text(encoding="utf-8", errors="replace")


def source_files(directory, suffixes):
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in suffixes)


def parse_devdoc(path):
    """Returns (defined IDs in order, duplicates, IDs mentioned anywhere in the file)."""
    defined = []
    seen = set()
    duplicates = []
    text = read_text(path)
    for line in text.splitlines():
        match = DEFINITION_RE.match(line)
        if match:
            requirement_id = match.group(1)
            if requirement_id in seen:
                duplicates.append(requirement_id)
            seen.add(requirement_id)
            defined.append(requirement_id)
    mentioned = set(ID_RE.findall(text))
    return defined, duplicates, mentioned


def scan_tags(root, directory, suffixes):
    """Yields (relative path, line number, token) for every token naming an ID in the files."""
    for path in source_files(root / directory, suffixes):
        if path.resolve() == Path(__file__).resolve():
            continue  # this script names IDs in its examples
        for number, line in enumerate(read_text(path).splitlines(), start=1):
            for token in TOKEN_RE.findall(line):
                yield path.relative_to(root), number, token


def print_list(title, items):
    if not items:
        return
    print("")
    print("%s (%d):" % (title, len(items)))
    for item in items:
        print("  " + item)


def main(argv):
    if len(argv) > 2:
        print("usage: traceability.py [REPO_ROOT]", file=sys.stderr)
        return 2
    root = Path(argv[1] if len(argv) == 2 else Path(__file__).resolve().parent.parent).resolve()

    devdoc_paths = sorted((root / DEVDOC_DIR).glob(DEVDOC_GLOB))
    if not devdoc_paths:
        print("traceability: no %s in %s" % (DEVDOC_GLOB, root / DEVDOC_DIR))
        return 1
    defined, duplicates, mentions_by_doc = [], [], []
    for devdoc_path in devdoc_paths:
        doc_defined, doc_duplicates, doc_mentions = parse_devdoc(devdoc_path)
        duplicates += [i for i in doc_defined if i in defined] + doc_duplicates
        defined += doc_defined
        mentions_by_doc.append((devdoc_path.relative_to(root), doc_mentions))
    defined_set = set(defined)

    seed_path = (root / SEED).resolve()
    seed_ids = set()
    if seed_path.is_file():
        seed_ids = set(ID_RE.findall(read_text(seed_path)))

    all_ids = sorted(defined_set | seed_ids, key=id_key)
    # A seed ID missing from the devdoc is reported once, as missing from the devdoc; its tags
    # still count, so that the report does not repeat the same omission three times.
    known = set(all_ids)

    codes = set()
    tests = set()
    problems = []  # malformed, unknown or misplaced references
    scans = [
        ("src", {".c", ".h"}, "Codes_"),
        ("tools", {".c", ".h", ".sh"}, "Codes_"),
        ("tests", {".c", ".h", ".py"}, "Tests_"),
        ("include", {".h"}, None),
    ]
    for directory, suffixes, expected_prefix in scans:
        for relative, number, token in scan_tags(root, directory, suffixes):
            where = "%s:%d: %s" % (relative, number, token)
            match = WELL_FORMED_RE.match(token)
            if match is None:
                problems.append(where + " (malformed: expected Codes_<ID>, Tests_<ID> or <ID>)")
                continue
            prefix, requirement_id = match.group(1), match.group(2)
            if requirement_id not in known:
                problems.append(where + " (names an ID that the devdoc does not define)")
                continue
            if prefix is not None and prefix != expected_prefix:
                problems.append(where + " (%s tag outside %s)" % (
                    prefix, "src/ and tools/" if prefix == "Codes_" else "tests/"))
                continue
            if prefix == "Codes_":
                codes.add(requirement_id)
            elif prefix == "Tests_" and relative.suffix in (".c", ".py"):
                tests.add(requirement_id)

    for relative, doc_mentions in mentions_by_doc:
        for requirement_id in sorted(doc_mentions - defined_set, key=id_key):
            problems.append("%s: mentions %s, which no devdoc defines" % (relative, requirement_id))
    for requirement_id in duplicates:
        problems.append("devdoc: %s is defined more than once" % requirement_id)

    missing_devdoc = [i for i in all_ids if i not in defined_set]
    missing_codes = [i for i in all_ids if i not in codes]
    missing_tests = [i for i in all_ids if i not in tests]

    if seed_ids:
        print("traceability: %d requirement IDs (%d from the seed, %d added in %d devdoc(s))"
              % (len(all_ids), len(seed_ids), len(defined_set - seed_ids), len(devdoc_paths)))
    else:
        print("traceability: %d requirement IDs (from the devdoc; seed document not found at %s)"
              % (len(all_ids), seed_path))
    print("")
    rows = [
        ("devdoc entry (%s/%s)" % (DEVDOC_DIR.as_posix(), DEVDOC_GLOB), len(all_ids) - len(missing_devdoc), len(missing_devdoc)),
        ("Codes_ tag (src/, tools/)", len(all_ids) - len(missing_codes), len(missing_codes)),
        ("Tests_ tag (tests/)", len(all_ids) - len(missing_tests), len(missing_tests)),
    ]
    bad_label = "bad references (typos, misplaced, duplicates)"
    width = max([len(row[0]) for row in rows] + [len(bad_label)])
    print("%-*s  %7s  %7s" % (width, "check", "present", "missing"))
    for name, present, missing in rows:
        print("%-*s  %7d  %7d" % (width, name, present, missing))
    print("%-*s  %7s  %7d" % (width, bad_label, "-", len(problems)))

    print_list("missing from the devdoc", missing_devdoc)
    print_list("missing Codes_ tag in src/ or tools/", missing_codes)
    print_list("missing Tests_ tag in tests/", missing_tests)
    print_list("bad references", problems)

    failed = bool(missing_devdoc or missing_codes or missing_tests or problems)
    print("")
    print("traceability: %s" % ("FAILED" if failed else "OK"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
