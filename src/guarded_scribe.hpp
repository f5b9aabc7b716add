#pragma once

#include <caf/fwd.hpp>
#include <caf/io/fwd.hpp>

#include "port_census.hpp"

// The guarded scribe: CAF's scribe (caf/io/network/scribe_impl.hpp; for TLS
// caf::openssl's, over its TLS session, caf/openssl/session.hpp) reading the
// BASP framing as it goes by. A header whose payload is over the census's
// limits is made invalid (its operation byte) before BASP sees it: BASP
// drops the connection as malformed and allocates nothing. The connection
// is in the census from its start to its end (handshake deadline). Leans on
// CAF 0.17.6's internals: see guarded_port.hpp.

namespace ctxstore::detail {

/// A guarded scribe for the connected socket `fd`: plain BASP, or (`tls`)
/// BASP over a caf::openssl TLS session whose handshake starts at once
/// (`accepted`: the server's side). nullptr if the TLS session could not be
/// made; the caller closes `fd` then.
caf::io::scribe_ptr
make_guarded_scribe(caf::actor_system& sys,
                    caf::io::network::default_multiplexer& mx, int fd,
                    census_ptr peers, bool tls, bool accepted);

} // namespace ctxstore::detail
