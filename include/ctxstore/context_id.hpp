#pragma once

#include <boost/uuid/uuid.hpp>

namespace ctxstore {

/// Identifies one context among those of its type.
using context_id = boost::uuids::uuid;

} // namespace ctxstore
