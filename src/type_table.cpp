#include "ctxstore/detail/type_table.hpp"

#include <memory>
#include <mutex>

#include <caf/message.hpp>
#include <stdexcept>
#include <typeindex>
#include <unordered_map>

namespace ctxstore::detail {

namespace {

struct type_table {
  std::mutex mtx;
  // Entries are never removed, so pointers into them stay valid.
  std::unordered_map<std::type_index,
                     std::unique_ptr<std::pair<std::string, codec_functions>>>
    by_type;
  std::unordered_map<std::string,
                     std::pair<const std::type_info*, codec_functions>>
    by_name;
};

type_table& table() {
  static type_table instance;
  return instance;
}

} // namespace

void bind_context_type(const std::type_info& type, const std::string& name,
                       codec_functions codec) {
  if (name.empty())
    throw std::logic_error("ctxstore: a context type needs a non-empty name");
  auto& tbl = table();
  std::lock_guard<std::mutex> guard{tbl.mtx};
  auto i = tbl.by_name.find(name);
  if (i != tbl.by_name.end()) {
    if (*i->second.first != type)
      throw std::logic_error("ctxstore: context type name '" + name
                             + "' is already bound to another type");
    return;
  }
  auto j = tbl.by_type.find(std::type_index{type});
  if (j != tbl.by_type.end())
    throw std::logic_error("ctxstore: this C++ type is already registered as '"
                           + j->second->first + "'");
  tbl.by_type.emplace(
    std::type_index{type},
    std::make_unique<std::pair<std::string, codec_functions>>(name, codec));
  tbl.by_name.emplace(name, std::make_pair(&type, codec));
}

const std::pair<std::string, codec_functions>*
context_codec_of(const std::type_info& type) {
  auto& tbl = table();
  std::lock_guard<std::mutex> guard{tbl.mtx};
  auto i = tbl.by_type.find(std::type_index{type});
  return i != tbl.by_type.end() ? i->second.get() : nullptr;
}

const codec_functions* context_codec_of(const std::string& name) {
  auto& tbl = table();
  std::lock_guard<std::mutex> guard{tbl.mtx};
  auto i = tbl.by_name.find(name);
  return i != tbl.by_name.end() ? &i->second.second : nullptr;
}

bool value_larger_than(const caf::message& value, size_t limit) {
  if (value.size() != 1)
    return false;
  auto type = value.type(0).second;
  if (type == nullptr)
    return false;
  // The last type asked on this thread: a thread mostly recycles one type.
  thread_local const std::type_info* last_type = nullptr;
  thread_local bool (*last_fn)(const caf::message&, size_t) = nullptr;
  if (last_type != type) {
    auto entry = context_codec_of(*type);
    if (entry == nullptr)
      return false;
    last_type = type;
    last_fn = entry->second.larger_than;
  }
  return last_fn(value, limit);
}

const std::string* context_type_name(const std::type_info& type) {
  auto entry = context_codec_of(type);
  return entry != nullptr ? &entry->first : nullptr;
}

const std::type_info* context_type_of(const std::string& name) {
  auto& tbl = table();
  std::lock_guard<std::mutex> guard{tbl.mtx};
  auto i = tbl.by_name.find(name);
  return i != tbl.by_name.end() ? i->second.first : nullptr;
}

} // namespace ctxstore::detail
