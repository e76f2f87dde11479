#!/bin/sh
# version.sh - print httptape's version: `git describe --tags --always --dirty`
# when this tree is a git checkout of its own, else the first line of the
# VERSION file (a source tarball, a .deb built from one), else "unknown".
# Used by mk/version.mk at build time; prints one line, always exits 0.
cd "$(dirname "$0")/.." || { echo unknown; exit 0; }
top=$(git rev-parse --show-toplevel 2>/dev/null)
# Only our own checkout: a tarball unpacked inside some other repository
# must not take that repository's version.
if [ -n "$top" ] && [ "$(cd "$top" && pwd -P)" = "$(pwd -P)" ] &&
    v=$(git describe --tags --always --dirty 2>/dev/null) && [ -n "$v" ]; then
    echo "$v"
elif [ -s VERSION ]; then
    head -n 1 VERSION
else
    echo unknown
fi
