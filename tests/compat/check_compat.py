#!/usr/bin/env python3
"""Coexistence checks for c-pal programs (tests/compat), without the network.

Usage: check_compat.py CASE --source DIR --build DIR --cc CC --nm NM [--flags "..."]

CASE is one of:
  symbols          the exported symbols of libasync_socket (shared and static) and, when built,
                   libasync_socket_tls equal tests/compat/expected_symbols_*.txt, and each starts
                   with one of the library's prefixes or is a c-pal API name; none is c-logging's,
                   macro-utils-c's or umock-c's.
  headers          every public header compiles with -Wall -Wextra -Werror alone (also with
                   -Wpedantic), and with the test-only macro-utils / umock_c_prod stand-ins
                   (tests/compat/include) included before or after it.
  enum_strings     tests/compat/enum_strings_program.c, with macro_compat.h alone and with the
                   stand-ins before and after, linked shared and static, prints the expected names.
  clogging_shared  tests/compat/clogging_program.c (c-logging's names in the program's own
  clogging_static  translation unit) compiles, links with the shared / static library and runs.

--flags: extra compile and link flags (the build's -fsanitize=..., so that the programs link with
a sanitized library). Prints one line per step; exits 1 on the first failure with the compiler's
output. Python 3 standard library only.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HEADERS_EXCLUDED_WITHOUT_TLS = {"async_socket_tls.h"}
# The library's own prefixes, and c-pal's API names that it implements.
ALLOWED_SYMBOL = re.compile(
    r"^(async_socket_|socket_transport_|platform_|completion_port_|execution_engine_|threadpool_"
    r"|MU_(ASYNC_SOCKET|SOCKET|ADDRESS_TYPE)[A-Z0-9_]*_ToString$)")
# Names that belong to c-logging, macro-utils-c or umock-c: none may be exported.
FORBIDDEN_SYMBOL = re.compile(r"^(logger_|log_|LOG|umock|umocktypes_|mu_|MU_[A-Z0-9_]*Strings$)")
# Symbols a sanitizer or coverage instrumentation may add to an instrumented build.
TOOLCHAIN_SYMBOL = re.compile(r"^(__asan|__odr_asan|__tsan|__ubsan|__sanitizer|__sancov|__start_|__stop_)")


def run(command, cwd=None):
    result = subprocess.run(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    return result.returncode, result.stdout


def step(label, command, cwd=None):
    code, output = run(command, cwd)
    if code != 0:
        print(f"FAIL  {label}\n      $ {' '.join(command)}")
        print("".join(f"      | {line}\n" for line in output.splitlines()))
        sys.exit(1)
    print(f"ok    {label}")
    return output


def exported_symbols(nm, library):
    if library.suffix == ".a":
        code, output = run([nm, "-g", "--defined-only", str(library)])
    else:
        code, output = run([nm, "-D", "--defined-only", str(library)])
    if code != 0:
        print(f"FAIL  nm {library}\n{output}")
        sys.exit(1)
    names = set()
    for line in output.splitlines():
        fields = line.split()
        if len(fields) == 3 and not TOOLCHAIN_SYMBOL.match(fields[2]):
            names.add(fields[2])
    return names


def check_symbols(args):
    # Tests_SRS_ASYNC_SOCKET_LINUX_99_100
    failed = False
    for name in ("async_socket", "async_socket_tls"):
        expected_file = args.source / "tests" / "compat" / f"expected_symbols_{name}.txt"
        expected = {line.strip() for line in expected_file.read_text().splitlines()
                    if line.strip() and not line.startswith("#")}
        for library in (args.build / f"lib{name}.so", args.build / f"lib{name}.a"):
            if not library.exists():
                if name == "async_socket":
                    print(f"FAIL  {library} was not built")
                    sys.exit(1)
                continue
            actual = exported_symbols(args.nm, library)
            problems = []
            for symbol in sorted(actual - expected):
                problems.append(f"exported but not expected: {symbol}")
            for symbol in sorted(expected - actual):
                problems.append(f"expected but not exported: {symbol}")
            for symbol in sorted(actual):
                if FORBIDDEN_SYMBOL.match(symbol) or not ALLOWED_SYMBOL.match(symbol):
                    problems.append(f"outside the library's prefixes and the c-pal API: {symbol}")
            if problems:
                failed = True
                print(f"FAIL  {library.name}: {len(actual)} symbols")
                print("".join(f"      | {p}\n" for p in problems), end="")
            else:
                print(f"ok    {library.name}: {len(actual)} exported symbols, as expected")
    if failed:
        sys.exit(1)


def public_headers(args):
    has_tls = (args.build / "libasync_socket_tls.so").exists()
    headers = sorted(p.name for p in (args.source / "include" / "c_pal").glob("*.h"))
    return [h for h in headers if has_tls or h not in HEADERS_EXCLUDED_WITHOUT_TLS]


def compile_text(args, label, text, extra, work):
    source = work / "tu.c"
    source.write_text(text + "typedef int compat_translation_unit_not_empty;\n")
    step(label, [args.cc, "-std=c11", "-Wall", "-Wextra", "-Werror", *extra, *args.flags,
                 "-I", str(args.source / "include"), "-c", str(source), "-o", str(work / "tu.o")])


def check_headers(args):
    # Tests_SRS_ASYNC_SOCKET_LINUX_99_103
    stand_ins = ["-I", str(args.source / "tests" / "compat" / "include")]
    macro_utils = '#include "macro_utils/macro_utils.h"\n'
    umock = '#include "umock_c/umock_c_prod.h"\n'
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        for header in public_headers(args):
            ours = f'#include "c_pal/{header}"\n'
            compile_text(args, f"{header} alone", ours, [], work)
            compile_text(args, f"{header} alone, -Wpedantic", ours, ["-Wpedantic"], work)
            compile_text(args, f"{header} after macro_utils.h", macro_utils + ours, stand_ins, work)
            compile_text(args, f"{header} before macro_utils.h", ours + macro_utils, stand_ins, work)
            compile_text(args, f"{header} after umock_c_prod.h", umock + ours, stand_ins, work)
            compile_text(args, f"{header} before umock_c_prod.h", ours + umock, stand_ins, work)
            compile_text(args, f"{header} between macro_utils.h and umock_c_prod.h", macro_utils + ours + umock, stand_ins, work)
            # macro_utils.h included first from a path the header cannot see: its guards apply
            compile_text(args, f"{header} after macro_utils.h, probe off", macro_utils + ours,
                         stand_ins + ["-DASYNC_SOCKET_NO_MACRO_UTILS_PROBE"], work)


EXPECTED_ENUM_OUTPUT = """ASYNC_SOCKET_OPEN_ERROR
UNKNOWN
SOCKET_ACCEPT_NO_CONNECTION (5)
SOCKET_SEND_OK (2)
ADDRESS_INET (1)
ASYNC_SOCKET_LOG_LEVEL_WARNING (2)
"""


def link_and_run(args, label, source, defines, linkage, work, expected=None):
    exe = work / "program"
    link = ([str(args.build / "libasync_socket.a")] if linkage == "static"
            else ["-L", str(args.build), "-lasync_socket", f"-Wl,-rpath,{args.build}"])
    step(f"{label}: compile and link ({linkage})",
         [args.cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-rdynamic", *defines, *args.flags,
          "-I", str(args.source / "include"), "-I", str(args.source / "tests" / "compat" / "include"),
          str(source), "-o", str(exe), *link, "-pthread"])
    output = step(f"{label}: run ({linkage})", [str(exe)])
    if expected is not None and output != expected:
        print(f"FAIL  {label}: printed\n{output}expected\n{expected}")
        sys.exit(1)
    print(output, end="")


def check_enum_strings(args):
    source = args.source / "tests" / "compat" / "enum_strings_program.c"
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        for label, defines in (("macro_compat.h alone", ["-DASYNC_SOCKET_NO_MACRO_UTILS_PROBE"]),
                               ("macro-utils first", ["-DMACRO_UTILS_FIRST"]),
                               ("macro-utils last", ["-DMACRO_UTILS_LAST"])):
            for linkage in ("shared", "static"):
                link_and_run(args, f"enum strings, {label}", source, defines, linkage, work, EXPECTED_ENUM_OUTPUT)


def check_clogging(args, linkage):
    source = args.source / "tests" / "compat" / "clogging_program.c"
    with tempfile.TemporaryDirectory() as directory:
        link_and_run(args, "c-logging program", source, [], linkage, Path(directory))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=["symbols", "headers", "enum_strings", "clogging_shared", "clogging_static"])
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--build", type=Path, required=True)
    parser.add_argument("--cc", required=True)
    parser.add_argument("--nm", default="nm")
    parser.add_argument("--flags", default="")
    args = parser.parse_args()
    args.flags = args.flags.split()
    if args.case == "symbols":
        check_symbols(args)
    elif args.case == "headers":
        check_headers(args)
    elif args.case == "enum_strings":
        check_enum_strings(args)
    else:
        check_clogging(args, args.case.split("_")[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
