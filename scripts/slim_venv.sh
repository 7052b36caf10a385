#!/bin/sh
# Slims the image's venv (Dockerfile, stage `slim`): run as root with binutils
# installed. Each cut prints what it saved; README "Deploying" has the figures.
#
#   NUMBA=1   keep numba and llvmlite (default); 0 drops them (175 MB of the
#             slimmed venv) and the drift engine runs its numpy kernels
#             (monitor/drift/_kernels.py)
#
# What goes, and why it is safe:
#   pip, setuptools, wheel      install-time only
#   */tests                     the dependencies' own test suites
#   *.pyi *.pxd *.pyx *.h *.c   type stubs and C/Cython build inputs: read by type
#   *.cpp *.a                   checkers and compilers, never by the interpreter
#   LiteRT's WebGPU accelerator, NPU vendor plugins, AOT compiler and
#                               apply_plugin tool: the CompiledModel API's
#                               accelerators; the service runs the CPU Interpreter
#   symbol tables and debug     `strip --strip-unneeded` keeps the dynamic symbol
#   info of every shared object table; every object that loaded before must load
#                               after (checked below), then scripts/image_smoke.py
#                               runs the service's code paths on the result. Not in
#                               the wheels' */.libs folders: auditwheel renamed those
#                               with patchelf, and stripped they no longer load
#                               (openblas, libgfortran: measured, caught by the check)
# The bytecode stays: the container's root file system is read-only, so without
# it every start compiles scipy, FastAPI... again (the services' imports took
# 9.7 s instead of 5.1 s, measured in the image). The sources stay too: anyio
# reads its own source to resolve its lazy attributes, and tracebacks need them.
set -eu
VENV=${VENV:-/opt/venv}
NUMBA=${NUMBA:-1}
py="$VENV/bin/python"
site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
size() { du -sm "$site" | cut -f1; }
step() { now=$(size); echo "slim-venv: $1: -$((last - now)) MB (site-packages $now MB)"; last=$now; }
last=$(size)
echo "slim-venv: site-packages $last MB"

if [ "$NUMBA" = 0 ]; then
  "$py" -m pip uninstall -y -q numba llvmlite
  step "numba and llvmlite"
fi
"$py" -m pip uninstall -y -q pip setuptools wheel 2>/dev/null || "$py" -m pip uninstall -y -q pip
step "pip, setuptools, wheel"

find "$site" -depth -type d -name tests -exec rm -rf {} +
step "test suites"

find "$site" -type f \( -name '*.pyi' -o -name '*.pxd' -o -name '*.pyx' -o -name '*.h' -o -name '*.hpp' \
  -o -name '*.c' -o -name '*.cpp' -o -name '*.a' \) -delete
step "type stubs and build inputs"

litert="$site/ai_edge_litert"
rm -rf "$litert/libLiteRtWebGpuAccelerator.so" "$litert/vendors" "$litert/aot" "$litert/tools/apply_plugin_main"
step "LiteRT accelerators, NPU plugins and AOT tools"

shared_objects() { find "$site" -type f \( -name '*.so' -o -name '*.so.*' \); }
# Which shared objects load (dlopen, no module init) before and after stripping.
loadable() {
  shared_objects | sort | "$py" -c '
import ctypes, sys
for path in sys.stdin.read().split():
    try:
        ctypes.CDLL(path)
    except OSError:
        continue
    print(path)'
}
loadable >/tmp/loadable-before
shared_objects | grep -v '\.libs/' | xargs strip --strip-unneeded
loadable >/tmp/loadable-after
if ! cmp -s /tmp/loadable-before /tmp/loadable-after; then
  echo "slim-venv: stripping broke shared objects:" >&2
  diff /tmp/loadable-before /tmp/loadable-after >&2 || true
  exit 1
fi
echo "slim-venv: $(wc -l </tmp/loadable-after) shared objects load after stripping"
rm -f /tmp/loadable-before /tmp/loadable-after
step "symbol tables and debug info"
