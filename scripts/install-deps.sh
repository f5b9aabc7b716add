#!/usr/bin/env bash
# Installs what ctxstore needs to build and test on Debian 12 (run as root):
# the compiler and build tools, CAF 0.17.6, Boost (UUID and Beast are
# header-only) and Catch2 v2; nlohmann/json (header-only; the JSON of the
# HTTP example, examples/http_json.hpp); for the tests also pkg-config (the
# installed-package test), spin (the model checker of tests/model/), curl
# (drives the HTTP example) and doxygen (the API reference must build without
# warnings). The sanitizer runtimes (libasan8, libtsan2, libubsan1) come with
# g++. The durable backends need SQLite and hiredis; their specifications
# start a real redis-server (on 127.0.0.1, stopped afterwards). TLS: CAF's
# libcaf_openssl (in libcaf-dev) needs libssl-dev; the TLS specifications make
# their CA and certificates at test time with the openssl command. prometheus
# brings promtool, which checks the HTTP example's /metrics text (its server
# is not used). Nothing else is downloaded.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
  g++ cmake make pkg-config libcaf-dev libboost-dev catch2 spin curl doxygen \
  libsqlite3-dev libhiredis-dev redis-server nlohmann-json3-dev libssl-dev \
  openssl prometheus
