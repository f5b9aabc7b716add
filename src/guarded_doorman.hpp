#pragma once

#include <caf/io/fwd.hpp>

#include "port_census.hpp"

// The guarded doorman: CAF's doorman (caf/io/network/doorman_impl.hpp) and
// TCP acceptor with a census. Each accepted connection gets a guarded
// scribe (plain or TLS); beyond the census's connection cap it is accepted
// and closed at once; out of file descriptors, the doorman accepts and
// closes with the census's spare descriptor, or stops accepting for a short
// while (the watchdog resumes it): never a busy loop. Leans on CAF 0.17.6's
// internals: see guarded_port.hpp.

namespace ctxstore::detail {

/// A guarded doorman for the listening socket `fd`, whose connections speak
/// plain BASP or (`tls`) BASP over TLS.
caf::io::doorman_ptr
make_guarded_doorman(caf::io::network::default_multiplexer& mx, int fd,
                     census_ptr peers, bool tls);

} // namespace ctxstore::detail
