# CMake toolchain: cross-compile for Windows x64 with Debian's mingw-w64, POSIX thread model
# (std::thread and friends on winpthreads), against the static prefix of packaging/windows/deps.sh.
#
#   prefix=$(packaging/windows/deps.sh)
#   cmake -S . -B build-win -G Ninja -DCMAKE_TOOLCHAIN_FILE=packaging/windows/toolchain-mingw64.cmake \
#         -DPSA_WIN_DEPS="$prefix"          # or: export PSA_WIN_DEPS="$prefix"
#
# Everything is linked statically (libgcc, libstdc++, winpthreads and the prefix's libraries), so
# an .exe needs no DLL beyond Windows' own. If wine64 is installed, it is the crosscompiling
# emulator: add_test/gtest_discover_tests run the test programs under Wine.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(PSA_MINGW_TRIPLE x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${PSA_MINGW_TRIPLE}-gcc-posix)
set(CMAKE_CXX_COMPILER ${PSA_MINGW_TRIPLE}-g++-posix)
set(CMAKE_RC_COMPILER ${PSA_MINGW_TRIPLE}-windres)

# The dependency prefix: -DPSA_WIN_DEPS=... or the environment variable of that name. Kept in the
# cache, and handed on to try_compile projects, so a re-run of cmake needs neither.
if(NOT PSA_WIN_DEPS AND DEFINED ENV{PSA_WIN_DEPS})
  set(PSA_WIN_DEPS "$ENV{PSA_WIN_DEPS}")
endif()
if(NOT PSA_WIN_DEPS)
  message(FATAL_ERROR "toolchain-mingw64.cmake: set PSA_WIN_DEPS (cache or environment) to the "
                      "prefix printed by packaging/windows/deps.sh")
endif()
set(PSA_WIN_DEPS "${PSA_WIN_DEPS}" CACHE PATH "Windows dependency prefix (packaging/windows/deps.sh)")
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES PSA_WIN_DEPS)

# Libraries, headers and packages only from the prefix and the mingw-w64 sysroot; programs (the
# tools run during the build) from the host.
set(CMAKE_FIND_ROOT_PATH "${PSA_WIN_DEPS}" /usr/${PSA_MINGW_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config sees the prefix's .pc files and nothing of the host's.
set(ENV{PKG_CONFIG_LIBDIR} "${PSA_WIN_DEPS}/lib/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
unset(ENV{PKG_CONFIG_SYSROOT_DIR})
set(PKG_CONFIG_USE_CMAKE_PREFIX_PATH OFF)

# The prefix has static libraries only; tell the find modules (FindOpenSSL then also adds ws2_32
# and crypt32, Boost's config selects its runtime-link=static variant).
set(OPENSSL_USE_STATIC_LIBS ON)
set(Boost_USE_STATIC_LIBS ON)
set(Boost_USE_STATIC_RUNTIME ON)

# Fully static programs and DLLs: libgcc, libstdc++ and winpthreads included.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "-static")

# Run cross-built programs (tests) under Wine when it is there. Debian's wine64 package puts the
# loader in /usr/lib/wine; the `wine` package adds /usr/bin/wine.
find_program(PSA_WINE NAMES wine64 wine PATHS /usr/lib/wine NO_CMAKE_FIND_ROOT_PATH)
if(PSA_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${PSA_WINE}")
endif()
