#!/usr/bin/env bash
# Cross-builds the agent's third-party libraries for Windows x64 (mingw-w64, POSIX thread model)
# from Debian 12's own source packages, Debian patches applied, into a cached static prefix:
#   OpenSSL 3.0 (libssl, libcrypto), SQLite 3.40 (libsqlite3), Boost 1.74 (all headers +
#   program_options), mosquitto 2.0 (libmosquitto only, TLS + threads), googletest 1.12.
#
# Usage: prefix=$(packaging/windows/deps.sh)       builds once, then reuses
#        packaging/windows/deps.sh --print-prefix  the prefix this recipe maps to; builds nothing
# Env:   PSA_WIN_DEPS_CACHE    cache root (default ~/.cache/pms-agent/win-deps)
#        PSA_WIN_DEPS_REBUILD=1  throw away this recipe's prefix and build it again
#        PSA_WIN_DEPS_KEEP=1   keep the build directory (cache root/build) after a build
#
# The prefix is <cache root>/<key>, key = short hash of this script, every file under
# packaging/windows/deps/, the toolchain file and `x86_64-w64-mingw32-g++-posix --version`.
# A prefix is in use only once <prefix>/.complete exists: the build installs into <prefix>.tmp
# and renames it when every library is in, so a killed build never leaves a prefix that looks
# complete. The prefix path is the last (only) line on stdout; the log goes to stderr.
set -euo pipefail

exec 3>&1 1>&2 # stdout is for the prefix path only

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
toolchain=$here/toolchain-mingw64.cmake
triple=x86_64-w64-mingw32
CC_W=$triple-gcc-posix
CXX_W=$triple-g++-posix

log() { printf 'deps: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive

# --- host packages -----------------------------------------------------------------------------
host_pkgs=(
  gcc-mingw-w64-x86-64-posix g++-mingw-w64-x86-64-posix binutils-mingw-w64-x86-64
  mingw-w64-x86-64-dev mingw-w64-tools
  dpkg-dev cmake ninja-build pkg-config ccache make perl tcl bison xz-utils gcc g++ util-linux
)
apt_updated=0
apt_update() {
  if ((apt_updated == 0)); then
    $SUDO apt-get update -qq >&2
    apt_updated=1
  fi
}
ensure_packages() {
  local missing=() p
  for p in "${host_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt_update
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

# --- the recipe key ----------------------------------------------------------------------------
recipe_key() {
  {
    echo "deps.sh"; sha256sum <"$here/deps.sh"
    if [[ -d $here/deps ]]; then
      (cd "$here" && find deps -type f | LC_ALL=C sort) | while read -r f; do
        echo "$f"; sha256sum <"$here/$f"
      done
    fi
    echo "toolchain"; sha256sum <"$toolchain"
    "$CXX_W" --version
  } | sha256sum | cut -c1-12
}

ensure_packages
cache_root=${PSA_WIN_DEPS_CACHE:-$HOME/.cache/pms-agent/win-deps}
key=$(recipe_key)
PREFIX=$cache_root/$key

if [[ ${1:-} == --print-prefix ]]; then
  echo "$PREFIX" >&3
  exit 0
fi

if [[ ${PSA_WIN_DEPS_REBUILD:-0} != 1 && -e $PREFIX/.complete ]]; then
  log "cached: $PREFIX"
  echo "$PREFIX" >&3
  exit 0
fi

mkdir -p "$cache_root"
# One deps build at a time per cache root (two worktrees asking at once: the second waits, then
# finds the prefix complete).
exec 9>"$cache_root/.lock"
if ! flock -n 9; then
  log "another deps build holds $cache_root/.lock; waiting"
  flock 9
fi

if [[ ${PSA_WIN_DEPS_REBUILD:-0} == 1 && -e $PREFIX ]]; then
  log "PSA_WIN_DEPS_REBUILD=1: removing $PREFIX"
  rm -rf "$PREFIX"
fi
if [[ -e $PREFIX/.complete ]]; then
  log "cached: $PREFIX"
  echo "$PREFIX" >&3
  exit 0
fi

start=$(date +%s)
tmp_prefix=$PREFIX.tmp
work=$cache_root/build # fixed path, so ccache (CCACHE_BASEDIR) hits across rebuilds
dl=$cache_root/sources
rm -rf "$tmp_prefix" "$work" "$PREFIX" # leftovers of a killed build
mkdir -p "$tmp_prefix"/{include,lib/pkgconfig} "$work" "$dl"
# The builds install into $tmp_prefix through this link: the same path whatever the key, so the
# compile commands (-I.../include) and with them ccache's hashes do not change with the recipe.
STAGE=$work/stage
ln -s "$tmp_prefix" "$STAGE"

lane_pids=()
kill_tree() { # pid: the process and everything it started, by pid
  local c
  for c in $(pgrep -P "$1" || true); do kill_tree "$c"; done
  kill "$1" 2>/dev/null || true
}
finish() {
  local rc=$?
  local p
  for p in "${lane_pids[@]}"; do kill_tree "$p"; done
  if ((rc != 0)); then
    rm -rf "$tmp_prefix"
    log "FAILED (exit $rc); build logs in $work"
  elif [[ ${PSA_WIN_DEPS_KEEP:-0} != 1 ]]; then
    local t0=$SECONDS
    rm -rf "$work"
    log "removed the build tree ($((SECONDS - t0)) s)"
  fi
}
trap finish EXIT

CCACHE=""
if command -v ccache >/dev/null; then
  CCACHE=ccache
  export CCACHE_BASEDIR=$work CCACHE_NOHASHDIR=1
fi
# Nothing from the caller's environment leaks into the builds.
unset CC CXX CFLAGS CXXFLAGS CPPFLAGS LDFLAGS PKG_CONFIG_PATH PKG_CONFIG_LIBDIR PSA_WIN_DEPS

# --- Debian sources ----------------------------------------------------------------------------
have_deb_src() {
  grep -Eqs '^[[:space:]]*Types:.*deb-src' /etc/apt/sources.list.d/*.sources ||
    grep -Eqs '^[[:space:]]*deb-src[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list
}
ensure_deb_src() {
  have_deb_src && return 0
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    log "adding /etc/apt/sources.list.d/debian-src.sources"
    sed 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
      $SUDO tee /etc/apt/sources.list.d/debian-src.sources >/dev/null
  elif grep -Eqs '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list; then
    log "adding /etc/apt/sources.list.d/debian-src.list"
    sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' /etc/apt/sources.list |
      $SUDO tee /etc/apt/sources.list.d/debian-src.list >/dev/null
  else
    die "no deb entries to derive a deb-src entry from"
  fi
  apt_updated=0
  apt_update
}

# Source package specs. openssl/bookworm: the point-release version (the security pool's .dsc
# has been seen to 404); the others take apt's newest.
declare -A spec=(
  [openssl]=openssl/bookworm [sqlite3]=sqlite3 [boost1.74]=boost1.74
  [mosquitto]=mosquitto [googletest]=googletest
)
declare -A dsc version
fetch_source() { # name -> downloads into $dl, sets dsc[name] and version[name]
  local name=$1 uris f
  if ! uris=$(apt-get source --print-uris -qq "${spec[$name]}" 2>/dev/null) || [[ -z $uris ]]; then
    apt_update # a deb-src entry whose index was never fetched
    uris=$(apt-get source --print-uris -qq "${spec[$name]}")
  fi
  f=$(awk '$2 ~ /\.dsc$/ {print $2}' <<<"$uris")
  [[ -n $f ]] || die "apt-get source ${spec[$name]}: no .dsc"
  (cd "$dl" && apt-get source --download-only -qq "${spec[$name]}" >&2) ||
    die "apt-get source --download-only ${spec[$name]} failed"
  dsc[$name]=$dl/$f
  version[$name]=$(sed -n 's/^Version: //p' "$dl/$f")
}
unpack() { # name -> $work/<name> (dpkg-source applies the Debian patch series)
  dpkg-source -x "${dsc[$1]}" "$work/$1" >"$work/unpack-$1.log" 2>&1 ||
    { tail -20 "$work/unpack-$1.log"; die "dpkg-source -x ${dsc[$1]} failed"; }
}

ensure_deb_src
for n in openssl sqlite3 boost1.74 mosquitto googletest; do
  fetch_source "$n"
  log "source $n ${version[$n]}"
done

# --- builders (each logs to $work/<name>.log) --------------------------------------------------
cmake_cross() { # src build [cmake args...]: configure with our toolchain against $STAGE
  local src=$1 bld=$2
  shift 2
  cmake -S "$src" -B "$bld" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DPSA_WIN_DEPS="$STAGE" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$STAGE" -DCMAKE_INSTALL_LIBDIR=lib \
    ${CCACHE:+-DCMAKE_C_COMPILER_LAUNCHER=$CCACHE -DCMAKE_CXX_COMPILER_LAUNCHER=$CCACHE} "$@"
}

# Baked-in OPENSSLDIR/ENGINESDIR/MODULESDIR: OpenSSL's defaults would be Linux paths under the
# cache, which on Windows become \root\... on the current drive, a directory any user can create
# (an openssl.cnf planted there would be loaded by a service; cf. CVE-2019-1552). These are the
# admin-only locations OpenSSL's own Windows builds use. Passed to make, since Configure would
# treat a C:/ path as relative on this Linux host.
openssl_dirs=(
  "OPENSSLDIR=C:/Program Files/Common Files/SSL"
  "ENGINESDIR=C:/Program Files/OpenSSL/lib/engines-3"
  "MODULESDIR=C:/Program Files/OpenSSL/lib/ossl-modules"
)
build_openssl() {
  unpack openssl
  cd "$work/openssl"
  # Debian's CONFARGS where they apply to a static library (debian/rules), plus no-shared/no-tests.
  ./Configure mingw64 --cross-compile-prefix=$triple- CC=gcc-posix CXX=g++-posix \
    --prefix="$STAGE" --libdir=lib no-shared no-tests \
    no-idea no-mdc2 no-rc5 no-zlib no-ssl3 no-ssl3-method enable-rfc3779 enable-cms \
    no-capieng no-rdrand
  make -j"${PSA_WIN_DEPS_JOBS:-2}" build_libs ${CCACHE:+CC="$CCACHE $CC_W"} "${openssl_dirs[@]}"
  make install_dev INSTALLTOP="$STAGE" "${openssl_dirs[@]}"
  rm -f "$STAGE/include/openssl/applink.c"
  # Relocatable .pc files (the prefix is found from the .pc file's own location).
  sed -i 's|^prefix=.*|prefix=${pcfiledir}/../..|' "$STAGE"/lib/pkgconfig/{libcrypto,libssl,openssl}.pc
}

# SQLite: Debian ships the canonical source tree (its patches change src/ and tool/), so the
# amalgamation is generated here with host tools (configure + make sqlite3.c: lemon, tclsh), then
# compiled once with the cross compiler. The -D list mirrors debian/rules' CFLAGS where they change
# behaviour (limits, LIKE, secure delete, threading, URIs, dbstat, math functions configure
# enables by default); the extensions the agent does not use (FTS3/4/5, R-Tree, session, column
# metadata, soundex, stmtvtab, unlock_notify) are left out, and loadable extensions are compiled
# out (a service loads no DLLs through SQLite). The same list goes to configure because lemon
# generates the parser with it (SQLITE_ENABLE_UPDATE_DELETE_LIMIT changes the grammar).
sqlite_defs=(
  -DSQLITE_THREADSAFE=1 -DSQLITE_SECURE_DELETE -DSQLITE_ENABLE_DBSTAT_VTAB
  -DSQLITE_OMIT_LOOKASIDE=1 -DSQLITE_ALLOW_ROWID_IN_VIEW -DSQLITE_ENABLE_UPDATE_DELETE_LIMIT=1
  -DSQLITE_LIKE_DOESNT_MATCH_BLOBS -DSQLITE_USE_URI=1 -DSQLITE_MAX_SCHEMA_RETRY=25
  -DSQLITE_MAX_VARIABLE_NUMBER=250000 -DSQLITE_ENABLE_MATH_FUNCTIONS -DSQLITE_OMIT_LOAD_EXTENSION
)
build_sqlite() {
  unpack sqlite3
  mkdir -p "$work/sqlite3-bld"
  cd "$work/sqlite3-bld"
  CC=gcc CFLAGS="-O2 ${sqlite_defs[*]}" ../sqlite3/configure --disable-tcl --disable-load-extension
  make sqlite3.c sqlite3.h
  $CCACHE $CC_W -O2 "${sqlite_defs[@]}" -c sqlite3.c -o sqlite3.o
  $triple-ar rcs libsqlite3.a sqlite3.o
  cp sqlite3.h sqlite3ext.h "$STAGE/include/"
  cp libsqlite3.a "$STAGE/lib/"
  cat >"$STAGE/lib/pkgconfig/sqlite3.pc" <<EOF
prefix=\${pcfiledir}/../..
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: SQLite
Description: SQL database engine (static, Windows x64)
Version: $(cat ../sqlite3/VERSION)
Libs: -L\${libdir} -lsqlite3
Cflags: -I\${includedir}
EOF
}

# Boost: b2 is built for the host, then cross-compiles program_options with the mingw g++
# (user-config.jam below). `b2 stage` builds the library and its CMake package files; the headers
# (Asio, Beast: header-only) are copied in bulk from libs/*/include, which is what `b2 install`
# copies too, but one process per file there (14,000 of them: minutes instead of seconds).
# --layout=system as Debian does: plain names (libboost_program_options.a), include/boost.
build_boost() {
  unpack boost1.74
  cd "$work/boost1.74"
  # Debian's +ds1 tarball drops the generated b2 parser; debian/rules regenerates it the same way.
  (cd tools/build && bison -y -d -o src/engine/jamgram.cpp src/engine/jamgram.y)
  CC=gcc CXX=g++ ./bootstrap.sh --with-toolset=gcc --without-icu
  echo "using gcc : mingw : $CCACHE $CXX_W : <archiver>$triple-ar <ranlib>$triple-ranlib" \
    "<rc>$triple-windres ;" >"$work/user-config.jam"
  ./b2 -q -j1 -d1 --ignore-site-config --user-config="$work/user-config.jam" --layout=system \
    --build-dir="$work/boost-bld" --stagedir="$STAGE" --with-program_options \
    toolset=gcc-mingw target-os=windows address-model=64 architecture=x86 \
    link=static runtime-link=static threading=multi variant=release stage
  local d
  for d in libs/*/include libs/numeric/*/include; do
    if [[ -d $d/boost ]]; then cp -a "$d/." "$STAGE/include/"; fi
  done
  # The few scripts and notes among the headers, which `b2 install` leaves out too.
  find "$STAGE/include/boost" -type f \( -name '*.pl' -o -name '*.sh' -o -name '*.bat' \
    -o -name '*.txt' -o -name '*.m4' -o -name '*.dtd' -o -name '*.erb' -o -name '*.re' \) -delete
  # A staged package's headers are the source tree; point them at <prefix>/include as an
  # installed one does.
  local cfg
  for cfg in "$STAGE"/lib/cmake/boost_{headers,program_options}-1.74.0/boost_*-config.cmake; do
    sed -i 's|^get_filename_component(_BOOST_INCLUDEDIR .*|get_filename_component(_BOOST_INCLUDEDIR "${_BOOST_CMAKEDIR}/../../include/" ABSOLUTE)|' "$cfg"
    grep -q '_BOOST_INCLUDEDIR "${_BOOST_CMAKEDIR}/../../include/"' "$cfg" || die "unexpected $cfg"
  done
  if grep -rq 'boost1\.74/' "$STAGE/lib/cmake"; then die "source paths left in $STAGE/lib/cmake"; fi
}

build_googletest() {
  unpack googletest
  # gtest_disable_pthreads: on Windows googletest uses Win32 threads and mutexes natively.
  cmake_cross "$work/googletest" "$work/googletest-bld" -DBUILD_GMOCK=ON -DINSTALL_GTEST=ON \
    -Dgtest_disable_pthreads=ON
  cmake --build "$work/googletest-bld" -j1
  cmake --install "$work/googletest-bld"
}

build_mosquitto() {
  unpack mosquitto
  cmake_cross "$work/mosquitto" "$work/mosquitto-bld" -DWITH_STATIC_LIBRARIES=ON \
    -DWITH_BROKER=OFF -DWITH_APPS=OFF -DWITH_CLIENTS=OFF -DWITH_PLUGINS=OFF -DDOCUMENTATION=OFF \
    -DWITH_LIB_CPP=OFF -DWITH_CJSON=OFF -DWITH_SRV=OFF -DWITH_TLS=ON -DWITH_TLS_PSK=ON \
    -DWITH_EC=ON -DWITH_THREADING=ON -DWITH_SOCKS=ON
  # Only the static library: the shared one (always defined by lib/CMakeLists.txt) is not needed.
  cmake --build "$work/mosquitto-bld" -j"${PSA_WIN_DEPS_JOBS:-2}" --target libmosquitto_static
  cp "$work/mosquitto-bld/lib/libmosquitto_static.a" "$STAGE/lib/libmosquitto.a"
  cp "$work/mosquitto/include/mosquitto.h" "$work/mosquitto/include/mqtt_protocol.h" "$STAGE/include/"
  # Static linking needs LIBMOSQUITTO_STATIC (else mosquitto.h declares dllimport) and, after
  # libmosquitto, OpenSSL and the Windows libraries both use. The thread library comes from the
  # compiler driver (-static picks the static winpthreads); naming it here would let CMake
  # resolve it to libpthread.dll.a.
  cat >"$STAGE/lib/pkgconfig/libmosquitto.pc" <<EOF
prefix=\${pcfiledir}/../..
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: mosquitto
Description: mosquitto MQTT v5/3.1.1 client library (static, TLS, threads; Windows x64)
Version: ${version[mosquitto]%%-*}
Cflags: -I\${includedir} -DLIBMOSQUITTO_STATIC
Libs: -L\${libdir} -lmosquitto -lssl -lcrypto -lws2_32 -lcrypt32 -lgdi32
EOF
}

run() { # name fn: run a builder with its log, report time, fail loudly
  local name=$1 t0=$SECONDS
  log "build $name ..."
  # Started in the background and waited for, so that set -e holds inside the builder (bash
  # ignores it in anything run as an `if`/`||` condition).
  ("$2") >"$work/$name.log" 2>&1 &
  if ! wait $!; then
    log "build $name FAILED; last lines of $work/$name.log:"
    tail -40 "$work/$name.log" >&2
    return 1
  fi
  log "build $name done ($((SECONDS - t0)) s)"
}

# --- schedule: two lanes on two cores ----------------------------------------------------------
# Lane A: OpenSSL (the long pole, make -j2), then mosquitto (needs OpenSSL).
# Lane B: Boost, SQLite, googletest, one compile at a time. While lane B runs, three compilers
# share two cores; once it is done OpenSSL has both.
# (No `&&` between the steps: bash would then ignore set -e inside the builders.)
(run openssl build_openssl; run mosquitto build_mosquitto) &
lane_pids+=($!)
(run boost build_boost; run sqlite3 build_sqlite; run googletest build_googletest) &
lane_pids+=($!)
for _ in "${lane_pids[@]}"; do
  wait -n || exit 1 # the first lane to fail ends the build (finish stops the other)
done
lane_pids=()

# --- fix-ups, manifest, then publish --------------------------------------------------------
# Everything was installed through $STAGE into $tmp_prefix; what is published is $PREFIX.
# pkg-config files find the prefix from their own location; CMake package files get the final
# path (Boost's and GTest's compute theirs from their location anyway: this only fixes their
# "original path" hints).
for pc in "$tmp_prefix"/lib/pkgconfig/*.pc; do
  sed -i -e "s|$STAGE|\${pcfiledir}/../..|g" -e "s|$tmp_prefix|\${pcfiledir}/../..|g" "$pc"
done
{ grep -rlF -e "$STAGE" -e "$tmp_prefix" "$tmp_prefix/lib/cmake" || true; } |
  xargs -r sed -i -e "s|$STAGE|$PREFIX|g" -e "s|$tmp_prefix|$PREFIX|g"
if grep -rlF -e "$tmp_prefix" -e "$work" "$tmp_prefix/lib/cmake" "$tmp_prefix/lib/pkgconfig"; then
  die "build paths left in the files above"
fi
rmdir "$tmp_prefix/bin" 2>/dev/null || true
{
  echo "# Windows x64 static dependency prefix (packaging/windows/deps.sh), key $key"
  echo "# built $(date -u +%Y-%m-%dT%H:%M:%SZ) with $("$CXX_W" --version | head -1)"
  for n in openssl sqlite3 boost1.74 mosquitto googletest; do
    npatch=$(grep -cv '^\s*\(#\|$\)' "$work/$n/debian/patches/series" 2>/dev/null || true)
    printf '%-11s %-24s (%s, %s Debian patches applied)\n' "$n" "${version[$n]}" "${spec[$n]}" "$npatch"
  done
} >"$tmp_prefix/manifest.txt"
touch "$tmp_prefix/.complete"
mv "$tmp_prefix" "$PREFIX"
log "built $PREFIX in $(($(date +%s) - start)) s"
echo "$PREFIX" >&3
