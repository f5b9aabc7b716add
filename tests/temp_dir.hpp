#pragma once

#include <filesystem>
#include <string>
#include <system_error>

#include <stdlib.h>

#include <catch2/catch.hpp>

/// A fresh directory under /tmp for a specification's files (SQLite files,
/// Redis's AOF...), removed with them at the end.
struct temp_dir {
  explicit temp_dir(const std::string& purpose = "test") {
    auto name = "/tmp/ctxstore-" + purpose + "-XXXXXX";
    REQUIRE(mkdtemp(name.data()) != nullptr);
    path = name;
  }

  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }

  /// The path of `name` in the directory.
  std::string file(const std::string& name) const {
    return path + "/" + name;
  }

  std::string path;
};
