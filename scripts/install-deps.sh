#!/usr/bin/env bash
# Installs what ctxstore needs to build and test on Debian 12 (run as root):
# the compiler and build tools, CAF 0.17.6, Boost (UUID and Beast are
# header-only), Catch2 v2, and curl (the HTTP example's test sends real
# requests with it). The sanitizer runtimes (libasan8, libtsan2, libubsan1)
# come with g++. Nothing else is downloaded.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
  g++ cmake make libcaf-dev libboost-dev catch2 curl
