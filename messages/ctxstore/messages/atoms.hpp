#pragma once

#include <caf/atom.hpp>

// Every atom of the ctxstore protocol (text at most 10 characters).
namespace ctxstore::messages {

using acquire_atom = caf::atom_constant<caf::atom("acquire")>;
using commit_atom = caf::atom_constant<caf::atom("commit")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
using abort_atom = caf::atom_constant<caf::atom("abort")>;
using store_atom = caf::atom_constant<caf::atom("store")>;
using snapshot_atom = caf::atom_constant<caf::atom("snapshot")>;
using erase_atom = caf::atom_constant<caf::atom("erase")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;

// Internal: owner <-> registry and owner timers.
using retire_atom = caf::atom_constant<caf::atom("retire")>;
using retired_atom = caf::atom_constant<caf::atom("retired")>;
using lease_atom = caf::atom_constant<caf::atom("lease")>;
using deadline_atom = caf::atom_constant<caf::atom("deadline")>;

/// The category atom of ctxstore's error codes.
constexpr caf::atom_value error_category = caf::atom("ctxstore");

} // namespace ctxstore::messages
