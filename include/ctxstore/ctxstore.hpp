#pragma once

/// @file
/// Includes the whole public API of ctxstore.

/// @namespace ctxstore
/// Typed context objects keyed by (context type, UUID) for CAF actor systems,
/// with exclusive reentrant sessions and out-of-band snapshots. Start with
/// `spawn_storage`, then use a `blocking_client` from any thread or an
/// `async_client` inside an event-based actor.

#include "ctxstore/async_client.hpp"
#include "ctxstore/async_session.hpp"
#include "ctxstore/backend.hpp"
#include "ctxstore/blocking_client.hpp"
#include "ctxstore/context_id.hpp"
#include "ctxstore/context_types.hpp"
#include "ctxstore/error.hpp"
#include "ctxstore/pending.hpp"
#include "ctxstore/remote.hpp"
#include "ctxstore/session.hpp"
#include "ctxstore/shared_value.hpp"
#include "ctxstore/snapshot_view.hpp"
#include "ctxstore/storage.hpp"
#include "ctxstore/storage_options.hpp"
#include "ctxstore/storage_stats.hpp"
#include "ctxstore/versioned.hpp"
