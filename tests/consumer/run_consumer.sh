#!/usr/bin/env bash
# Tries the installed package the ways users reach it (`make consumer`).
#
#   tests/consumer/run_consumer.sh [BUILD_DIR]     (default build/release, already built)
#
# Installs BUILD_DIR into a temporary prefix with `cmake --install`, then builds and runs
# consumer.c against that prefix only: through pkg-config (shared, and --static), through the CMake
# package (find_package + the imported target, shared and static), again after moving the installed
# tree, compiles every installed public header on its own as C11 and as C++17, and checks that the
# static archive exports only the public API. One line per case; the exit status is non-zero when
# any case fails, and that case's log is printed.
#
# Adding a case is one line at the bottom: `run_case "<label>" <function> <args...>`, e.g. for a
# second package `run_case "async_socket_tls: pkg-config shared" pkgconfig_shared async_socket_tls
# "$here/tls_consumer.c"`.
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build_dir="$(cd "${1:-build/release}" && pwd)"
# The flags a careful user builds with; the package's headers must not break them.
C_FLAGS=(-std=c11 -Wall -Wextra -Wpedantic -Werror)
CXX_FLAGS=(-std=c++17 -Wall -Wextra -Wpedantic -Werror)
CC="${CC:-cc}"
CXX="${CXX:-g++}"

work="$(mktemp -d "${TMPDIR:-/tmp}/async_socket_consumer.XXXXXX")"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
failures=0

if ! cmake --install "$build_dir" --prefix "$prefix" >"$work/install.log" 2>&1; then
    cat "$work/install.log"
    echo "consumer: cmake --install $build_dir failed"
    exit 1
fi
# Only the temporary prefix is searched, so nothing installed elsewhere on the machine can stand in.
export PKG_CONFIG_LIBDIR="$(dirname "$(find "$prefix" -name async_socket.pc | head -n 1)")"
unset PKG_CONFIG_PATH

# run_case LABEL FUNCTION ARGS...: runs FUNCTION in its own directory with its output in a log,
# prints "ok" or "FAIL" and the label, and the log on a failure.
run_case() {
    local label="$1"
    shift
    local dir="$work/case$((++case_number))"
    mkdir -p "$dir"
    if (cd "$dir" && "$@") >"$dir/log" 2>&1; then
        printf 'ok    %s\n' "$label"
    else
        printf 'FAIL  %s\n' "$label"
        sed 's/^/      | /' "$dir/log"
        failures=$((failures + 1))
    fi
}
case_number=0

# The program must print its success line, and must have been linked against this prefix.
run_program() {
    ./app | tee run.out && grep -q "sent and verified" run.out
}

# pkgconfig_shared MODULE SOURCE: the shared library, found at run time through an rpath.
pkgconfig_shared() {
    local libdir
    libdir="$(pkg-config --variable=libdir "$1")" || return 1
    "$CC" "${C_FLAGS[@]}" "$2" -o app $(pkg-config --cflags --libs "$1") -Wl,-rpath,"$libdir" || return 1
    # the loader must resolve the library from the temporary prefix, not from a system copy
    ldd ./app | grep -F "$prefix/" || { echo "not linked against $prefix"; ldd ./app; return 1; }
    run_program
}

# pkgconfig_static MODULE SOURCE: a fully static program from `pkg-config --static` (Libs and
# Libs.private), so a dependency missing from the .pc file fails the link.
pkgconfig_static() {
    "$CC" "${C_FLAGS[@]}" "$2" -o app -static $(pkg-config --static --cflags --libs "$1") 2>link.err
    local status=$?
    # glibc warns that getaddrinfo in a static program needs its shared NSS modules at run time;
    # that is glibc's note to every static user, not a defect of the package
    grep -v -e "requires at runtime the shared libraries" -e "in function" link.err
    [ $status -eq 0 ] || return 1
    if readelf -d ./app 2>/dev/null | grep -q NEEDED; then
        echo "not a static program:"
        readelf -d ./app | grep NEEDED
        return 1
    fi
    run_program
}

# cmake_package PACKAGE TARGET SOURCE: find_package(PACKAGE CONFIG REQUIRED) and
# target_link_libraries(consumer PRIVATE TARGET), as a user's CMakeLists.txt does.
cmake_package() {
    cmake -S "$here" -B build -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_COMPILER="$CC" -DCONSUMER_PACKAGE="$1" -DCONSUMER_TARGET="$2" -DCONSUMER_SOURCE="$3" || return 1
    cmake --build build || return 1
    ln -sf build/consumer app
    if [[ "$2" != *static* ]]; then
        ldd ./app | grep -F "$prefix/" || { echo "not linked against $prefix"; ldd ./app; return 1; }
    fi
    run_program
}

# tls FUNCTION ARGS...: FUNCTION for the TLS layer, when it was installed: with a certificate
# for "localhost" in the case's directory (tls_consumer.c reads it there) and the system's
# pkg-config directories after the prefix's, where OpenSSL's openssl.pc is.
tls() {
    if [ -z "$(find "$prefix" -name async_socket_tls.pc | head -n 1)" ]; then
        echo "async_socket_tls is not installed (OpenSSL was not found at build time): skipped"
        return 0
    fi
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -keyout server.key \
        -out server.crt -subj /CN=localhost -addext "subjectAltName=DNS:localhost" 2>openssl.err || { cat openssl.err; return 1; }
    PKG_CONFIG_LIBDIR="$PKG_CONFIG_LIBDIR:$(pkg-config --variable pc_path pkg-config)" "$@"
}

# headers LANGUAGE FLAGS...: each installed public header included first and alone, in its own
# translation unit (so it must include what it needs), then all of them in one.
headers() {
    local compiler="$1" suffix="$2"
    shift 2
    local all="all.$suffix" header name
    : >"$all"
    for header in "$prefix"/include/c_pal/*.h; do
        name="c_pal/$(basename "$header")"
        printf '#include "%s"\nint main(void) { return 0; }\n' "$name" >"one.$suffix"
        "$compiler" "$@" -I"$prefix/include" -c "one.$suffix" -o one.o || { echo "in $name"; return 1; }
        printf '#include "%s"\n' "$name" >>"$all"
        echo "$name"
    done
    printf 'int main(void) { return 0; }\n' >>"$all"
    "$compiler" "$@" -I"$prefix/include" -c "$all" -o all.o
}

# headers_cxx_linkage: a C++ program calling the library links only if the headers give the
# functions C linkage (extern "C"); a missing guard shows as undefined mangled names.
headers_cxx_linkage() {
    cat >linkage.cpp <<'EOF'
#include "c_pal/async_socket.h"
#include "c_pal/platform.h"
#include "c_pal/logger.h"
#include "c_pal/execution_engine.h"
#include "c_pal/socket_transport.h"
#include <cstdio>
int main()
{
    async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL_ERROR);
    if (platform_init() != 0) return 1;
    EXECUTION_ENGINE_HANDLE engine = execution_engine_create(nullptr);
    ASYNC_SOCKET_HANDLE s = async_socket_create(engine, INVALID_SOCKET);
    int opened = async_socket_open_async(s, [](void*, ASYNC_SOCKET_OPEN_RESULT) {}, nullptr);
    std::printf("%s\n", MU_ENUM_TO_STRING(ASYNC_SOCKET_SEND_SYNC_RESULT, ASYNC_SOCKET_SEND_SYNC_NOT_OPEN));
    async_socket_destroy(s);
    execution_engine_dec_ref(engine);
    platform_deinit();
    std::printf("consumer: %s\n", (s != nullptr && opened != 0) ? "sent and verified" : "wrong results");
    return (s != nullptr && opened != 0) ? 0 : 1;
}
EOF
    local libdir
    libdir="$(pkg-config --variable=libdir async_socket)"
    "$CXX" "${CXX_FLAGS[@]}" linkage.cpp -o app $(pkg-config --cflags --libs async_socket) -Wl,-rpath,"$libdir" || return 1
    run_program
}

# moved_prefix FUNCTION ARGS...: the installed tree is moved elsewhere (as a DESTDIR install that is
# packaged, or a copied directory) and FUNCTION runs against the new place; the old one is gone
# meanwhile, so a path recorded at install time shows up as a failure.
moved_prefix() {
    local old="$prefix" status
    prefix="$work/moved/prefix"
    mkdir -p "$work/moved" && mv "$old" "$prefix" || return 1
    PKG_CONFIG_LIBDIR="${PKG_CONFIG_LIBDIR/#$old/$prefix}" "$@"
    status=$?
    mv "$prefix" "$old"
    return $status
}

# archive_exports ARCHIVE: the static archive defines no global symbol outside the public API, so
# the library's internal names (sys_close, lock__wake_one, ...) cannot clash with an application's.
archive_exports() {
    local archive
    archive="$(find "$prefix" -name "$1" | head -n 1)"
    [ -n "$archive" ] || { echo "no $1 installed"; return 1; }
    nm -g --defined-only "$archive" | awk 'NF == 3 { print $3 }' >exports
    echo "$(wc -l <exports) global symbols in $1"
    if grep -v -E "$PUBLIC_SYMBOLS" exports; then
        echo "^ internal symbols exported by $1"
        return 1
    fi
}
# What the public headers declare: the functions by module prefix, and the enum-to-string functions.
PUBLIC_SYMBOLS='^(async_socket_|threadpool_|platform_|completion_port_|execution_engine_|socket_transport_[a-z]|MU_[A-Z0-9_]+_ToString$)'

echo "consumer: installed $build_dir into a temporary prefix"
run_case "pkg-config --cflags --libs async_socket (shared)" pkgconfig_shared async_socket "$here/consumer.c"
run_case "pkg-config --static --cflags --libs async_socket (static)" pkgconfig_static async_socket "$here/consumer.c"
run_case "find_package(async_socket CONFIG) + async_socket::async_socket" cmake_package async_socket async_socket::async_socket "$here/consumer.c"
run_case "find_package(async_socket CONFIG) + async_socket::async_socket_static" cmake_package async_socket async_socket::async_socket_static "$here/consumer.c"
run_case "public headers, each alone and all together, as C11 ($CC ${C_FLAGS[*]})" headers "$CC" c "${C_FLAGS[@]}"
run_case "public headers, each alone and all together, as C++17 ($CXX ${CXX_FLAGS[*]})" headers "$CXX" cpp "${CXX_FLAGS[@]}"
run_case "C++17 program calling the library (extern \"C\" linkage)" headers_cxx_linkage
run_case "installed tree moved: pkg-config (shared)" moved_prefix pkgconfig_shared async_socket "$here/consumer.c"
run_case "installed tree moved: find_package + async_socket::async_socket" moved_prefix cmake_package async_socket async_socket::async_socket "$here/consumer.c"
run_case "libasync_socket.a exports only the public API" archive_exports libasync_socket.a
run_case "async_socket_tls: pkg-config shared" tls pkgconfig_shared async_socket_tls "$here/tls_consumer.c"
run_case "async_socket_tls: pkg-config --static" tls pkgconfig_static async_socket_tls "$here/tls_consumer.c"
run_case "async_socket_tls: find_package + async_socket::async_socket_tls" tls cmake_package async_socket async_socket::async_socket_tls "$here/tls_consumer.c"
run_case "async_socket_tls: find_package + async_socket::async_socket_tls_static" tls cmake_package async_socket async_socket::async_socket_tls_static "$here/tls_consumer.c"
run_case "libasync_socket_tls.a exports only the public API" tls archive_exports libasync_socket_tls.a

if [ "$failures" -ne 0 ]; then
    echo "consumer: $failures case(s) failed"
    exit 1
fi
echo "consumer: all cases passed"
