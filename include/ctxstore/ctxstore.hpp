#pragma once

// ctxstore: typed context objects keyed by (context type, UUID) for CAF actor
// systems, with exclusive reentrant sessions and out-of-band snapshots.

#include "ctxstore/async_client.hpp"
#include "ctxstore/async_session.hpp"
#include "ctxstore/blocking_client.hpp"
#include "ctxstore/context_id.hpp"
#include "ctxstore/context_types.hpp"
#include "ctxstore/error.hpp"
#include "ctxstore/pending.hpp"
#include "ctxstore/remote.hpp"
#include "ctxstore/session.hpp"
#include "ctxstore/storage.hpp"
#include "ctxstore/storage_options.hpp"
#include "ctxstore/storage_stats.hpp"
#include "ctxstore/versioned.hpp"
