#pragma once

// A backend in front of a real one, for the specifications' faulty disks and
// servers: each call goes to the real backend unless a subclass overrides
// it. `write_and_wait` is not forwarded: its default goes through `write`,
// so a subclass that fails writes fails a thread's own commits too.

#include <memory>
#include <string>
#include <utility>

#include "ctxstore/backend.hpp"

class forwarding_backend : public ctxstore::backend {
public:
  /// `label` names the fault in `name()`: "LABEL:" + the real one's name.
  forwarding_backend(std::shared_ptr<ctxstore::backend> real, std::string label)
      : real_(std::move(real)), label_(std::move(label)) {
    // nop
  }

  void load(const std::string& type, const ctxstore::context_id& id,
            load_done done) override {
    real_->load(type, id, std::move(done));
  }

  void write(ctxstore::backend_write w, write_done done) override {
    real_->write(std::move(w), std::move(done));
  }

  std::string name() const override {
    return label_ + ":" + real_->name();
  }

protected:
  ctxstore::backend& real() noexcept {
    return *real_;
  }

private:
  std::shared_ptr<ctxstore::backend> real_;
  std::string label_;
};
