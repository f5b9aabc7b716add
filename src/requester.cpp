#include "requester.hpp"

#include <mutex>

namespace ctxstore::detail {

void requester_deleter::operator()(requester* ptr) const noexcept {
  delete ptr;
}

// -- blocking_core: its pool of requesters ------------------------------------------

blocking_core::blocking_core(caf::actor_system& sys, storage st)
    : sys_(sys), storage_(std::move(st)) {
  // nop
}

blocking_core::~blocking_core() {
  for (auto ptr : pool_)
    delete ptr;
}

requester_ptr blocking_core::take_requester() {
  {
    std::lock_guard<std::mutex> guard{pool_mtx_};
    if (!pool_.empty()) {
      auto ptr = pool_.back();
      pool_.pop_back();
      return requester_ptr{ptr};
    }
  }
  return requester_ptr{new requester(sys_)};
}

void blocking_core::give_back(requester* ptr) noexcept {
  static constexpr size_t max_pooled = 64;
  {
    std::lock_guard<std::mutex> guard{pool_mtx_};
    if (pool_.size() < max_pooled) {
      pool_.push_back(ptr);
      return;
    }
  }
  delete ptr;
}

} // namespace ctxstore::detail
