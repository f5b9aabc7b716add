/*
 * A model of a context's state machine (actors/ctxstore/actors/context.cpp),
 * of the owner actor that is its event loop (owner.cpp), of the local fast
 * path of the storage's own process (src/client.cpp, direct_session.hpp) and
 * of the registry's forwarding and retire protocol (registry.cpp).
 * See README.md in this folder: what is modelled, what is abstracted away,
 * how each part maps to the C++ code, and how to run it (check.sh).
 *
 * Processes: one registry, NGEN owner generations (the first owner and the
 * one the registry re-creates after a retire), LOCAL local clients (the fast
 * path: they run the context's transitions themselves, under its mutex) and
 * NC - LOCAL clients that only send messages. Each actor is a process with a
 * mailbox channel and handles one message at a time (one atomic step); each
 * transition a client runs under the context's mutex is one atomic step.
 * Timers are internal nondeterministic events of the owner.
 */

/* -- bounds (override with spin -D...) ----------------------------------- */
#ifndef NC
#define NC 2          /* clients */
#endif
#ifndef LOCAL
#define LOCAL 1       /* of them in the storage's process (ids 0..LOCAL-1) */
#endif
#ifndef BUDGET
#define BUDGET 2      /* operations per client, besides ending its session */
#endif
#ifndef DEATHS
#define DEATHS 1      /* client deaths in one run, in total */
#endif
#ifndef ERASES
#define ERASES 1      /* erases in one run, in total (each may retire an owner) */
#endif
#ifndef MAXW
#define MAXW 0        /* storage_options::max_waiters; 0: unbounded */
#endif
#ifndef LEASE
#define LEASE 1       /* storage_options::lease > 0: sessions expire */
#endif
/* With REMOTE, the last client is on another node: its grants carry no
   owner handle, so it sends commit/release/abort to the registry, which
   forwards them by key (registry.cpp). */

#define NGEN   2            /* owner generations: first + one after retire */
#define NOBODY 255
#define VPC    (BUDGET + 1) /* fresh values a client can make */
#define INIT   (NC * VPC)   /* the value the first owner starts with */
#define NVAL   (NC * VPC + 1)
#define QMAX   (NC + 1)     /* each client has <= 1 request outstanding */
#define MBOX   (4 * NC + 2)
#define RBOX   (2 * NC + 2)
#define W(g, c)     ((g) * NC + (c))
#define STAMP(g, v) ((g) * 100 + (v)) /* (generation, version), never 0 */

/* acquire's wait_ms: -1 (as long as it takes), 0 (try once), > 0 (deadline) */
#define W_INF 0
#define W_TRY 1
#define W_DL  2

mtype = {
  /* requests (messages/ctxstore/messages/protocol.hpp) */
  ACQ, STORE, ERASE, COMMIT, RELEASE, ABORT, SNAP,
  EXIT, /* a local client's exit (not a message) */
  /* system messages; the owner's timers (messages to itself) */
  DOWN, HANDOVER, TLEASE, TDEADLINE, RETIRE, RCHECK, RCONFIRM, RETIRED, RDENIED,
  /* answers */
  GRANT, VER, ERASED, SNAPV,
  MISSING, TIMEOUT, OVERLOADED, STALE, NOTHOLDER, RDOWN, OK
};

/* mailboxes: kind, sender (client id; owner generation for RETIRE), token,
   value (the wait mode for ACQ) */
chan mbox[NGEN] = [MBOX] of { mtype, byte, byte, byte };
chan reg = [RBOX] of { mtype, byte, byte, byte };
/* answers (a parked request's, or the wake-up of a direct waiter): kind,
   token, version (erase: existed), value, owner generation */
chan rep[NC] = [2] of { mtype, byte, byte, byte, byte };

/* ======================================================================= */
/* context.hpp: the state machine of one context (one per generation)      */
/* ======================================================================= */

typedef state_machine {
  bool present;
  byte version;
  byte committed;
  byte token;      /* the open session's fencing token; 0: none */
  byte last_token; /* highest token issued here or before it existed */
  byte holder;     /* the holder's client id (the code keeps none for a
                      direct session: its holder knows its token) */
  bool direct;     /* the session was taken without the owner */
  bool lease;      /* the open session's lease timer is armed */
  bool retiring;   /* the owner asked the registry to forget it */
  byte inbound;    /* requests of local clients on their way to the owner */
  bool retire_wanted;
  /* ONE first-come-first-served queue of every kind of waiter: requests
     parked at the owner, and local clients (threads, actors) waiting in the
     context itself ("direct" waiters, woken under the mutex). */
  byte qn;
  byte tick;       /* ghost: arrival tickets of the queued */
  mtype qkind[QMAX];
  bool qdirect[QMAX];
  byte qcli[QMAX];
  byte qval[QMAX];
  bool qdl[QMAX];  /* a parked waiter's deadline is armed */
  byte qtick[QMAX]
};
state_machine ctx[NGEN];
#define cx ctx[g] /* the context the calling process works on */

/* The storage's board: the generation whose context is on it (its owner is
   the one the registry forwards to); NOBODY: none. Written by the registry. */
byte board = 0;

/* -- shared facts of the actor system ------------------------------------ */
bool dead[NC];            /* the client actor has exited */
bool alive_owner[NGEN];   /* spawned and not yet quit */
bool started[NGEN];       /* the registry spawned this generation */
byte watched[NGEN * NC];  /* owner's monitor ref counts (who gets a down_msg) */
byte deaths = DEATHS;
byte erases = ERASES;

/* -- ghost state for the properties -------------------------------------- */
bool pending[NC];   /* the client's request is not answered yet */
bool acq_inf[NC];   /* a live client waits for an acquire without deadline */
short pub_at[NVAL]; /* STAMP at which each (unique) value was published */
byte nsessions;     /* open sessions over all owners */
byte storage_token = 0; /* the last token issued by any owner */
int ended[NGEN];    /* bit t: session with token t of that owner has ended */
bool woke[NC];      /* the owner's current step woke this client's parked
                       request (see WITNESS_DOWN_WOKEN) */

#ifdef LIVENESS /* spin -DLIVENESS -a: the claim; safety runs have none */
ltl answered {
  [] ((acq_inf[0] -> <> !acq_inf[0]) && (acq_inf[1] -> <> !acq_inf[1])
#if NC > 2
      && (acq_inf[2] -> <> !acq_inf[2])
#endif
     )
}
#endif

/* One answer per request; a dead client's answer is dropped. */
inline answer(_c, _k, _a, _b, _v, _g) {
  assert(pending[_c]);
  pending[_c] = false;
  acq_inf[_c] = false;
  if
  :: !dead[_c] -> rep[_c]!_k, _a, _b, _v, _g
  :: else -> skip
  fi
}

/* watch(): monitoring a dead actor yields a down_msg at once. (Owner.) */
inline watch(_c) {
  if
  :: watched[W(g, _c)] == 0 && dead[_c] -> mbox[g]!DOWN, _c, 0, 0
  :: else -> skip
  fi;
  watched[W(g, _c)]++
}

/* unwatch(): a down_msg already queued is still delivered. (Owner.) */
inline unwatch(_c) {
  if
  :: watched[W(g, _c)] > 0 -> watched[W(g, _c)]--
  :: else -> skip
  fi
}

/* -- queries ------------------------------------------------------------- */

#ifdef FAST_PATH_BARGES /* the mutant: a free context ignores its queue */
#define QUEUE_CLEAR true
#else
#define QUEUE_CLEAR (cx.qn == 0)
#endif
/* A local client may act without the owner: nobody holds the context,
   nobody waits, nothing is on its way to the owner. */
#define free_for_direct \
  (cx.present && cx.token == 0 && QUEUE_CLEAR && !cx.retiring && cx.inbound == 0)
/* ... and open a session (a lease needs an owner to time it). */
#define free_for_direct_session (free_for_direct && (LEASE == 0 || board == g))
/* A local client may wait in the queue without a message. */
#define may_queue_direct \
  (cx.present && cx.token != 0 && !cx.retiring && cx.inbound == 0 \
   && (LEASE == 0 || board == g))
#define held_by(_t, _who) \
  (cx.token != 0 && (_t) == cx.token && !cx.direct && (_who) == cx.holder)
#define direct_session_open(_t) (cx.token == (_t) && cx.direct)
#define idle_erased (!cx.present && cx.token == 0 && cx.qn == 0)

/* FIFO across kinds: a request served at once (not from the queue, and not
   the holder's own) passes nobody: nobody may be waiting. */
inline nobody_waits() {
  passed = cx.qn;
  assert(passed == 0);
  passed = 0
}

/* -- transitions (the caller holds the context's mutex: atomic) ---------- */

/* store() / commit(): the committed value and version; what snapshots see. */
inline publish(_v, _who) {
  assert(cx.token == 0 || _who == cx.holder); /* exclusive: only the holder */
  assert(pub_at[_v] == 0);                    /* values are unique */
  cx.committed = _v;
  cx.present = true;
  cx.version++;
  pub_at[_v] = STAMP(g, cx.version)
}

inline erase_value() {
  cx.committed = 0;
  cx.present = false
}

/* open_session(): a new token; the lease timer is armed (by the owner, or
   by the local client at the owner: schedule_lease). */
inline open_session(_c, _direct) {
  assert(cx.token == 0); /* at most one holder per context ... */
#ifdef BUG_OWNER_TOKENS
  cx.last_token++; /* the old code: tokens restart with each owner */
#else
  storage_token++; /* counters::last_token: unique in the storage */
  cx.last_token = storage_token;
#endif
  assert(cx.last_token < 31); /* fits the ghost bit set `ended` */
  cx.token = cx.last_token;
  cx.holder = _c;
  cx.direct = _direct;
  nsessions++;
  assert(nsessions <= 1); /* ... and over all owner generations */
  if /* the owner monitors the holder of a session it granted (~step) */
  :: !_direct -> watch(_c)
  :: else -> skip
  fi;
  cx.lease = LEASE
}

/* close_session(): the uncommitted working copy is simply never sent. */
inline close_session() {
  if
  :: cx.token != 0 ->
     ended[g] = ended[g] | (1 << cx.token);
     if
     :: !cx.direct -> unwatch(cx.holder) /* only the owner closes these */
     :: else -> skip
     fi;
     cx.token = 0;
     cx.holder = NOBODY;
     cx.direct = false;
     cx.lease = false; /* a later lease(token) message is a no-op */
     nsessions--
  :: else -> skip
  fi
}

/* remove(): takes entry _i out of the queue. */
inline qremove(_i) {
  j = _i;
  do
  :: j + 1 < cx.qn ->
     cx.qkind[j] = cx.qkind[j + 1]; cx.qdirect[j] = cx.qdirect[j + 1];
     cx.qcli[j] = cx.qcli[j + 1]; cx.qval[j] = cx.qval[j + 1];
     cx.qdl[j] = cx.qdl[j + 1]; cx.qtick[j] = cx.qtick[j + 1];
     j++
  :: else -> break
  od;
  cx.qn--;
  cx.qkind[cx.qn] = 0; cx.qdirect[cx.qn] = false; cx.qcli[cx.qn] = 0;
  cx.qval[cx.qn] = 0; cx.qdl[cx.qn] = false; cx.qtick[cx.qn] = 0;
  j = 0;
  if
  :: cx.qn == 0 -> cx.tick = 0 /* tickets only order the queue's entries */
  :: else -> skip
  fi
}

/* enqueue(): at the end of the one queue, or refused when it is full
   (threads, actors and parked requests count alike). */
inline enqueue(_k, _c, _v, _dl, _direct) {
  if
  :: MAXW > 0 && cx.qn >= MAXW -> answer(_c, OVERLOADED, 0, 0, 0, g)
  :: else ->
     if /* park(): the owner watches the sender of a parked request */
     :: !_direct -> watch(_c)
     :: else -> skip
     fi;
     assert(cx.qn < QMAX);
     cx.qkind[cx.qn] = _k; cx.qdirect[cx.qn] = _direct; cx.qcli[cx.qn] = _c;
     cx.qval[cx.qn] = _v; cx.qdl[cx.qn] = _dl;
     cx.tick++; cx.qtick[cx.qn] = cx.tick;
     cx.qn++
  fi
}

/* run_queue(by_owner): while the context is free the oldest waiter goes
   next; an acquire opens a session (and the run stops), an acquire of an
   erased context fails, a store or erase runs and the next goes on. A
   parked request next and a caller that is not the owner: the run stops
   and the caller must send the owner a handover (fx.handover). A thread or
   actor is woken under the lock (its answer here); a parked request is
   answered by the owner when its step ends (here: the same atomic step). */
inline run_queue(_by_owner) {
  do
  :: cx.token == 0 && cx.qn > 0 && !cx.qdirect[0] && !_by_owner ->
#ifndef BUG_NO_HANDOVER
     handover = true;
#endif
     break
  :: cx.token == 0 && cx.qn > 0 && (cx.qdirect[0] || _by_owner) ->
#ifdef BUG_LIFO
     pick = cx.qn - 1;
#else
     pick = 0;
#endif
     j = 0; /* FIFO: nobody queued earlier is still waiting */
     do
     :: j < cx.qn -> assert(cx.qtick[j] >= cx.qtick[pick]); j++
     :: else -> break
     od;
     wk = cx.qkind[pick]; c = cx.qcli[pick]; v = cx.qval[pick];
     d = cx.qdirect[pick];
     qremove(pick);
     if /* the wait ended: the answer is (wk, aa, ab, av) */
     :: wk == ACQ && !cx.present -> wk = MISSING /* failed */
     :: wk == ACQ && cx.present ->
        open_session(c, d); wk = GRANT;
        aa = cx.token; ab = cx.version; av = cx.committed
     :: wk == STORE -> publish(v, c); wk = VER; ab = cx.version
     :: wk == ERASE -> ab = cx.present; erase_value(); wk = ERASED
     fi;
     answer(c, wk, aa, ab, av, g);
     aa = 0; ab = 0; av = 0;
     if /* ~step: the woken parked requests' senders are unwatched */
     :: !d ->
#ifdef WITNESS_DOWN_WOKEN
        woke[c] = true;
#endif
        unwatch(c)
     :: else -> skip
     fi
  :: else -> break
  od;
  if
  :: idle_erased -> erased_idle = true
  :: else -> skip
  fi
}

/* end_session(by_owner): release (after its commit), abort, lease expiry,
   holder death; the queue runs. The model runs it at the end of the
   caller's atomic step (need_run; the owner's step_end, the client's
   finish_direct): nothing can observe the difference, and the verifier is
   compiled from one copy of run_queue per caller instead of one per call. */
inline end_session() {
  close_session();
  need_run = true
}

/* erase(by_owner): an open session ends with it (an erase by its holder);
   the queue runs (need_run). */
inline erase() {
  existed = cx.present;
  erase_value();
  close_session();
  need_run = true
}

/* acquire_direct(): a local client opens a session on a context it found
   free (free_for_direct_session): it passes nobody. */
inline acquire_direct(_c) {
  nobody_waits();
  open_session(_c, true)
}

/* acquire_by(): the owner opens a session for the actor _c (the context is
   free and present; the step ran the queue first: nobody waits). */
inline acquire_by(_c) {
  nobody_waits();
  open_session(_c, false)
}

/* lease_expired(): the lease timer of the open session fired: revoked. */
inline lease_expired() {
  assert(cx.token != 0);
  end_session()
}

/* holder_gone(): the actor _c died: a session the owner granted it ends. */
inline holder_gone(_c) {
  if
  :: cx.token != 0 && !cx.direct && cx.holder == _c ->
#ifdef BUG_DOWN_NO_GRANT
     close_session() /* the session ends, the queue does not run */
#else
     end_session()
#endif
  :: else -> skip
  fi
}

/* ======================================================================= */
/* owner.cpp                                                                */
/* ======================================================================= */

/* begin_retire() (at the end of every step): an erased context with nothing
   left to do asks the registry to retire its owner. */
inline begin_retire() {
  if
  :: idle_erased && !cx.retiring ->
     cx.retiring = true; touched = false; reg!RETIRE, g, 0, 0
  :: else -> skip
  fi
}

/* step's constructor: a message that the owner handles while we ask to
   retire cancels the ask (`handled`); a direct session that ended while
   requests were parked lets them go first, in order, before anything new. */
inline step_begin() {
  if
  :: cx.retiring -> touched = true
  :: else -> skip
  fi;
#ifndef BUG_STEP_NO_RUN
  if
  :: cx.token == 0 && cx.qn > 0 -> run_queue(true)
  :: else -> skip
  fi
#endif
}

/* deadline(seq): the deadline timer of the parked waiter of client _c. */
inline drop_waiter(_i) {
  c = cx.qcli[_i];
#ifdef BUG_KEEP_TIMED_OUT
  cx.qdl[_i] = false; /* answered, but left in the queue */
  answer(c, TIMEOUT, 0, 0, 0, g)
#else
  qremove(_i);
  answer(c, TIMEOUT, 0, 0, 0, g);
  unwatch(c)
#endif
}

/* deadline(seq): the parked request of client _c (its seq: one request
   per client at a time) gives up, if still queued (the step may have run
   the queue: then it is gone, a no-op). */
inline deadline(_c) {
  i = 0;
  do
  :: i < cx.qn && !(cx.qcli[i] == _c && !cx.qdirect[i]) -> i++
  :: else -> break
  od;
  if
  :: i < cx.qn -> drop_waiter(i)
  :: else -> skip
  fi
}

/* on_down(): a dead sender's parked requests leave the queue unanswered; a
   session it holds is aborted (holder_gone). Its threads' and actors'
   places in the queue are given up by the client itself (~actor_waiter). */
inline on_down(_c) {
#ifdef WITNESS_DOWN_WOKEN
  /* owner.cpp's on_down erases every entry of st.parked of the dead actor,
     also one that this step's run_queue (the step's constructor) just
     woke and that ~step still answers from fx.woken */
  assert(!woke[_c]);
#endif
  i = 0;
  do
#ifdef BUG_LOSE_WAITERS
  :: i < cx.qn -> qremove(i) /* every waiter, not only the dead one's */
#else
  :: i < cx.qn && cx.qcli[i] == _c && !cx.qdirect[i] -> qremove(i)
  :: i < cx.qn && !(cx.qcli[i] == _c && !cx.qdirect[i]) -> i++
#endif
  :: else -> break
  od;
  watched[W(g, _c)] = 0;
  holder_gone(_c)
}

/* check_holder(): the sender holds the open session with this token. */
inline check_holder(_t, _who) {
#ifdef BUG_NO_FENCING
  if /* trusts the sender's identity and ignores the token */
  :: cx.token != 0 && !cx.direct && _who == cx.holder -> res = OK
  :: else ->
     if
     :: _t != 0 && _t <= cx.last_token -> res = STALE
     :: else -> res = NOTHOLDER
     fi
  fi
#else
  if
  :: held_by(_t, _who) -> res = OK
  :: !held_by(_t, _who) && cx.token != 0 && _t == cx.token -> res = NOTHOLDER
  :: !(cx.token != 0 && _t == cx.token) && _t != 0 && _t <= cx.last_token ->
     res = STALE
  :: else -> res = NOTHOLDER
  fi
#endif
}

/* ~step: the end of every step of the owner. */
inline step_end() {
  if /* the run of end_session() or erase() */
  :: need_run -> need_run = false; run_queue(true)
  :: else -> skip
  fi;
  begin_retire();
  /* owner.cpp's invariant: waiters exist only while there is a holder */
  assert(cx.qn == 0 || cx.token != 0)
}

inline handle() {
  if
  :: kind != RCHECK && kind != RDENIED && kind != RETIRED -> step_begin()
  :: else -> skip
  fi;
  if
  :: kind == SNAP && !cx.present -> answer(from, MISSING, 0, 0, 0, g)
  :: kind == SNAP && cx.present ->
     answer(from, SNAPV, 0, cx.version, cx.committed, g)
  :: kind == ACQ ->
     if
     :: cx.token == 0 && !cx.present -> answer(from, MISSING, 0, 0, 0, g)
     :: cx.token == 0 && cx.present -> /* a new session */
        acquire_by(from);
        answer(from, GRANT, cx.token, cx.version, cx.committed, g)
     :: held_by(cx.token, from) -> /* re-entry: the same session */
        answer(from, GRANT, cx.token, cx.version, cx.committed, g)
     :: cx.token != 0 && !held_by(cx.token, from) && val == W_TRY ->
        answer(from, TIMEOUT, 0, 0, 0, g)
     :: cx.token != 0 && !held_by(cx.token, from) && val != W_TRY ->
        enqueue(ACQ, from, 0, val == W_DL, false)
     fi
  :: kind == STORE ->
     if
     :: cx.token == 0 ->
        nobody_waits();
        publish(val, from); answer(from, VER, 0, cx.version, 0, g)
     :: held_by(tok, from) -> /* the holder's own */
        publish(val, from); answer(from, VER, 0, cx.version, 0, g)
     :: cx.token != 0 && !held_by(tok, from) -> enqueue(STORE, from, val, false, false)
     fi
  :: kind == ERASE ->
     if
     :: cx.token == 0 ->
        nobody_waits();
        erase(); answer(from, ERASED, 0, existed, 0, g)
     :: held_by(tok, from) -> /* ends the session */
        erase(); answer(from, ERASED, 0, existed, 0, g)
     :: cx.token != 0 && !held_by(tok, from) -> enqueue(ERASE, from, 0, false, false)
     fi
  :: kind == COMMIT || kind == RELEASE || kind == ABORT ->
     check_holder(tok, from);
     if
     :: res != OK -> answer(from, res, 0, 0, 0, g)
     :: else ->
        /* fencing: only the open session's own token gets here */
        assert(tok != 0 && tok <= cx.last_token && (ended[g] & (1 << tok)) == 0);
        if
        :: kind == COMMIT ->
           publish(val, from); answer(from, VER, 0, cx.version, 0, g)
        :: kind == RELEASE ->
           publish(val, from); rv = cx.version; end_session();
           answer(from, VER, 0, rv, 0, g)
        :: kind == ABORT ->
           rv = cx.version; end_session(); answer(from, VER, 0, rv, 0, g)
        fi
     fi
  :: kind == HANDOVER -> skip /* the step ran the queue (or we retire) */
  :: kind == TLEASE -> lease_expired()
  :: kind == TDEADLINE -> deadline(from)
  :: kind == DOWN -> on_down(from)
  :: kind == RCHECK && !cx.retiring -> skip
  :: kind == RCHECK && cx.retiring && touched -> /* handled something since */
     cx.retiring = false; begin_retire()
  :: kind == RCHECK && cx.retiring && !touched -> reg!RCONFIRM, g, 0, 0
  :: kind == RDENIED -> /* stay(again) */
     cx.retiring = false;
     if
     :: val -> begin_retire()
     :: else -> skip /* kept for a request on its way: it hands over */
     fi
  :: kind == RETIRED -> /* quit(); nothing may be left to answer */
     assert(cx.token == 0 && cx.qn == 0 && cx.retiring && !cx.present);
     alive_owner[g] = false;
     quit = true
  fi;
  if
  :: kind != RCHECK && kind != RDENIED && kind != RETIRED -> step_end()
  :: else -> skip
  fi
}

proctype owner(byte g) {
  bool quit = false;
  bool touched = false; /* handled a message since we asked to retire */
  bool handover, erased_idle; /* effects: the owner acts on them itself */
  bool need_run = false;
  mtype kind, wk, res;
  byte from, tok, val, c, v, rv, i, j, pick, passed, aa, ab, av;
  bool existed, d;

end_unborn:
  started[g];
end_idle:
  do
  :: atomic {
       if
       :: mbox[g]?kind, from, tok, val
       /* the timers: lease(token) of the open session, deadline(seq) of a
          parked waiter */
       :: !quit && cx.lease -> kind = TLEASE
       :: !quit && cx.qn > 0 && cx.qdl[0] -> kind = TDEADLINE; from = cx.qcli[0]
       :: !quit && cx.qn > 1 && cx.qdl[1] -> kind = TDEADLINE; from = cx.qcli[1]
       :: !quit && cx.qn > 2 && cx.qdl[2] -> kind = TDEADLINE; from = cx.qcli[2]
       fi;
       if
       :: !quit -> handle()
       :: quit -> /* an exited actor: requests bounce with
                    request_receiver_down. The registry never forwards to a
                    retired owner and retires none with a local request on
                    its way: only session requests sent with the owner
                    handle of a grant arrive here. */
          if
          :: (kind == DOWN || kind == RETIRED || kind == RCHECK ||
              kind == RDENIED || kind == HANDOVER) -> skip
          :: else ->
             assert(kind == COMMIT || kind == RELEASE || kind == ABORT);
             answer(from, RDOWN, 0, 0, 0, g)
          fi
       fi;
       /* handler-local variables carry nothing from one message to the next */
       kind = 0; wk = 0; res = 0; from = 0; tok = 0; val = 0; c = 0; v = 0;
       rv = 0; i = 0; j = 0; pick = 0; existed = false; d = false;
       handover = false; erased_idle = false;
#ifdef WITNESS_DOWN_WOKEN
       do
       :: i < NC -> woke[i] = false; i++
       :: else -> break
       od;
       i = 0;
#endif
       skip }
  od
}

/* ======================================================================= */
/* registry.cpp                                                             */
/* ======================================================================= */

active proctype registry() {
  byte ngen = 1, g;
  bool fwd = false; /* forwards: to the owner since its last RETIRE */
  mtype kind;
  byte from, tok, val;

end_idle:
  do
  :: atomic { reg?kind, from, tok, val ->
       if
       :: kind == RETIRE -> /* a check behind everything forwarded so far */
          if
#ifdef BUG_RETIRE_AT_ONCE
          :: board == from -> board = NOBODY; mbox[from]!RETIRED, 0, 0, 0
#else
          :: board == from -> fwd = false; mbox[from]!RCHECK, 0, 0, 0
#endif
          :: else -> skip
          fi
       :: kind == RCONFIRM -> /* forget it only if nothing went to it since */
          g = from;
          if
          :: board == from && !fwd && idle_erased ->
             cx.retire_wanted = true;
             if
             :: cx.inbound != 0 -> /* kept: the last one hands over */
                mbox[from]!RDENIED, 0, 0, 0
             :: else ->
                cx.retire_wanted = false;
                board = NOBODY; /* off the board, the cell's owner cleared */
                mbox[from]!RETIRED, 0, 0, 0
             fi
          :: board == from && !(!fwd && idle_erased) ->
             mbox[from]!RDENIED, 0, 0, 1
          :: else -> skip
          fi
       :: kind != RETIRE && kind != RCONFIRM && board != NOBODY ->
          /* forward (delegate) */
          assert(alive_owner[board]);
          fwd = true;
          mbox[board]!kind, from, tok, val
       :: kind == STORE && board == NOBODY -> /* a new context, version 1 */
          assert(ngen < NGEN);
          g = ngen; ngen++; board = g;
          cx.present = true; cx.version = 1; cx.committed = val;
          cx.holder = NOBODY;
#ifndef BUG_OWNER_TOKENS
          cx.last_token = storage_token; /* earlier tokens are stale here */
#endif
          pub_at[val] = STAMP(g, 1);
          alive_owner[g] = true;
          started[g] = true;
          answer(from, VER, 0, 1, 0, g)
       :: (kind == SNAP || kind == ACQ) && board == NOBODY ->
          answer(from, MISSING, 0, 0, 0, 0)
       :: kind == ERASE && board == NOBODY -> answer(from, ERASED, 0, 0, 0, 0)
       :: (kind == COMMIT || kind == RELEASE || kind == ABORT) && board == NOBODY ->
          answer(from, STALE, 0, 0, 0, 0)
       fi;
       kind = 0; from = 0; tok = 0; val = 0; g = 0 }
  od
}

/* ======================================================================= */
/* clients                                                                  */
/* ======================================================================= */

/* A client that dies: the owners that monitor it get a down_msg. */
inline die() {
  deaths--;
  dead[me] = true;
  acq_inf[me] = false; /* not a live waiter any more */
  k = 0;
  do
  :: k < NGEN ->
     if
     :: alive_owner[k] && watched[W(k, me)] > 0 -> mbox[k]!DOWN, me, 0, 0
     :: else -> skip
     fi;
     k++
  :: else -> break
  od;
  k = 0
}

/* What a grant or a snapshot shows was committed at that version. */
inline check_committed() {
  assert(pub_at[rc] == STAMP(rg, rb));
  assert(rb >= seen[rg]); /* never older than what this client saw */
  seen[rg] = rb
}

/* -- message clients: async_client / blocking_client actors whose requests
      the fast path does not see (another node, or no cell) --------------- */

inline forget_session() {
  held = false; lasttok = tok; lastg = og
}

proctype client(byte me) {
  byte ops = BUDGET;
  bool held = false, late = false, late_done = false;
  byte tok = 0, og = 0, lasttok = 0, lastg = 0;
  byte nv = 0, wait = 0, val, k;
  byte seen[NGEN];
  mtype req, rk;
  byte ra, rb, rc, rg;

  do
  :: !held && ops == 0 -> break
  :: else ->
     late = false; wait = W_INF; val = 0;
     if
     :: ops > 0 -> ops--; req = ACQ; wait = W_INF /* nested when held */
     :: ops > 0 && !held -> ops--; req = ACQ; wait = W_TRY
     :: ops > 0 && !held -> ops--; req = ACQ; wait = W_DL
     :: ops > 0 -> ops--; req = STORE
     :: atomic { ops > 0 && erases > 0 -> erases-- }; ops--; req = ERASE
     :: ops > 0 -> ops--; req = SNAP
     :: ops > 0 && held -> ops--; req = COMMIT
     :: held -> req = RELEASE
     :: held -> req = ABORT
     :: !late_done && lasttok != 0 -> /* once, besides the budget */
        late_done = true; req = COMMIT; late = true
     :: atomic { held && deaths > 0 -> die() }; goto gone /* holder dies */
     fi;
     if
     :: req == STORE || req == COMMIT || req == RELEASE ->
        val = me * VPC + nv; nv++ /* a fresh, uncommitted working value */
     :: req == ACQ -> val = wait
     :: else -> skip
     fi;
     atomic {
       pending[me] = true;
       acq_inf[me] = (req == ACQ && wait == W_INF);
       if
       :: late -> mbox[lastg]!COMMIT, me, lasttok, val /* an old handle */
#ifdef REMOTE
       :: !late && me == NC - 1 && (req == COMMIT || req == RELEASE || req == ABORT) ->
          reg!req, me, tok, val /* no owner handle: by key */
       :: !late && me != NC - 1 && (req == COMMIT || req == RELEASE || req == ABORT) ->
          mbox[og]!req, me, tok, val /* the owner handle of the grant */
#else
       :: !late && (req == COMMIT || req == RELEASE || req == ABORT) ->
          mbox[og]!req, me, tok, val /* the owner handle of the grant */
#endif
       :: !late && held && (req == STORE || req == ERASE) ->
          reg!req, me, tok, val /* the holder's token */
       :: else -> reg!req, me, 0, val
       fi
     };
     if
     :: atomic { rep[me]?rk, ra, rb, rc, rg ->
          if
          :: rk == GRANT ->
             assert(req == ACQ);
             check_committed();
             if
#ifdef CLIENT_SAME_TOKEN_IS_NESTED
             /* async_client.hpp: an equal token means a nested level, even
                from another owner generation (tokens restart at 1) */
             :: held && tok == ra -> skip
#else
             :: held && tok == ra && og == rg -> skip /* a nested level */
#endif
             :: else ->
                if /* a held session that was revoked meanwhile */
                :: held -> lasttok = tok; lastg = og
                :: else -> skip
                fi;
                held = true; tok = ra; og = rg
             fi
          :: rk == SNAPV -> assert(req == SNAP); check_committed()
          :: rk == VER ->
             assert(!late); /* a stale token never commits */
             assert(req == STORE || req == COMMIT || req == RELEASE || req == ABORT);
             /* a session's requests reach the owner that granted it */
             assert(req == STORE || rg == og);
             if /* read-after-commit: our own value at that version */
             :: req != ABORT -> assert(pub_at[val] == STAMP(rg, rb))
             :: else -> skip
             fi;
             assert(rb >= seen[rg]);
             seen[rg] = rb;
             if
             :: req == RELEASE || req == ABORT -> forget_session()
             :: else -> skip
             fi
          :: rk == ERASED ->
             assert(req == ERASE);
             if
             :: held -> forget_session() /* the holder's erase ends it */
             :: else -> skip
             fi
          :: rk == MISSING -> assert(req == ACQ || req == SNAP)
          :: rk == TIMEOUT -> assert(req == ACQ && wait != W_INF)
          :: rk == OVERLOADED -> assert(req == ACQ || req == STORE || req == ERASE)
#ifdef REMOTE
          /* by key, a token of a retired owner reaches its successor, whose
             tokens restart at 1: "no session has this token" */
          :: rk == NOTHOLDER && me == NC - 1 && !late ->
             assert(req == COMMIT || req == RELEASE || req == ABORT);
             forget_session()
#endif
          :: rk == STALE || rk == RDOWN ->
             assert(req == COMMIT || req == RELEASE || req == ABORT);
             if
             :: !late -> forget_session() /* revoked: lease or retire */
             :: else -> skip
             fi
          :: else -> assert(false) /* NOTHOLDER: never with our own tokens */
          fi;
          req = 0; rk = 0; ra = 0; rb = 0; rc = 0; rg = 0; val = 0; wait = 0;
          late = false }
     :: atomic { deaths > 0 -> die() }; goto gone /* dies while waiting */
     fi
  od;
gone:
  skip
}

/* -- local clients: the fast path (src/client.cpp: blocking_core, and the
      async client's direct_acquire / direct_store / direct_commit ...) ---- */

/* wait_in_cell() (a thread) or an actor_waiter: the client waits in the
   context's queue itself; whoever grants it the session wakes it. */
inline wait_in_cell() {
  pending[me] = true;
  acq_inf[me] = (wait == W_INF);
  enqueue(ACQ, me, 0, false, true);
  wg = g; out = true
}

/* route_via() and the send: a request of this process on its way to the
   owner is counted in its context's `inbound` (inbound_ticket, under the
   context's mutex); without a context on the board it goes to the
   registry. */
inline route_via(_k, _t, _v) {
  g = board;
  if
  :: g != NOBODY -> cx.inbound++; tg = g; mbox[g]!_k, me, _t, _v
  :: else -> reg!_k, me, _t, _v /* no cell: to the registry */
  fi;
  out = true
}

/* inbound_ticket::done(): the answer arrived (or the actor exited). The
   last request on its way to an owner that the registry kept because of it
   sends that owner a handover (it asks to retire again). */
inline ticket_done() {
  if
  :: tg != NOBODY ->
     ctx[tg].inbound--;
     if
     :: ctx[tg].inbound == 0 && ctx[tg].retire_wanted ->
        ctx[tg].retire_wanted = false;
        if /* owner_addr(): nothing if it is gone */
        :: board == tg -> mbox[tg]!HANDOVER, me, 0, 0
        :: else -> skip
        fi
     :: else -> skip
     fi;
     tg = NOBODY
  :: else -> skip
  fi
}

/* finish_direct(): the run of end_session() or erase() (need_run), then,
   after unlocking, tell the owner what it must do. */
inline finish_direct() {
  need_run = false;
  run_queue(false);
  /* a client's run stops before a parked request: nothing else is left */
  assert(cx.qn == 0 || cx.token != 0 || (!cx.qdirect[0] && handover)
#ifdef BUG_NO_HANDOVER
         || !cx.qdirect[0]
#endif
        );
  if
  :: (handover || erased_idle) && board == g -> mbox[g]!HANDOVER, me, 0, 0
  :: else -> skip /* send_handover(): nothing if the owner is gone */
  fi;
  handover = false; erased_idle = false
}

inline forget_direct() {
  held = false; hdirect = false; tok = 0; og = 0
}

/* What a direct store, commit or release of ours shows. */
inline check_own_commit() {
  assert(pub_at[val] == STAMP(g, cx.version));
  assert(cx.version >= seen[g]);
  seen[g] = cx.version
}

/* An actor that exits drops its response handlers, and with them the
   inbound tickets of its requests still on their way: the registry may then
   retire the owner they go to (see README.md, WITNESS_EXIT_TICKET). The
   model lets a local client die while it waits for a counted request only
   with that macro. */
#ifdef WITNESS_EXIT_TICKET
#define MAY_DIE_COUNTED true
#else
#define MAY_DIE_COUNTED (tg == NOBODY)
#endif

proctype local_client(byte me) {
  byte ops = BUDGET;
  bool held = false, hdirect = false, out = false;
  byte tok = 0, og = 0;
  byte nv = 0, wait = 0, val, k, g;
  byte tg = NOBODY; /* the context whose `inbound` counts our request */
  byte wg = NOBODY; /* the context in whose queue we wait ourselves */
  byte seen[NGEN];
  mtype req, rk, wk;
  byte ra, rb, rc, rg;
  /* for the transitions */
  bool handover, erased_idle, existed, d, need_run = false;
  byte c, v, i, j, pick, passed, aa, ab, av, gg = NOBODY;

  do
  :: !held && ops == 0 -> break
  :: else ->
     wait = W_INF; val = 0;
     if
     :: ops > 0 && !held -> ops--; req = ACQ; wait = W_INF
     :: ops > 0 && !held -> ops--; req = ACQ; wait = W_TRY
     :: ops > 0 && !held -> ops--; req = ACQ; wait = W_DL
     :: ops > 0 -> ops--; req = STORE
     :: atomic { ops > 0 && erases > 0 -> erases-- }; ops--; req = ERASE
     :: ops > 0 -> ops--; req = SNAP
     :: ops > 0 && held -> ops--; req = COMMIT
     :: held -> req = RELEASE
     :: held -> req = ABORT
     :: atomic { held && deaths > 0 -> die() }; goto gone /* holder dies */
     fi;
     if
     :: req == STORE || req == COMMIT || req == RELEASE ->
        val = me * VPC + nv; nv++ /* a fresh, uncommitted working value */
     :: else -> skip
     fi;
act: atomic {
       out = false;
       if
       /* the actor's exit: ~actor_waiter gives up its place in a queue or
          ends the session granted meanwhile (end_direct_session),
          end_direct_sessions_of ends its direct sessions, the handlers'
          inbound tickets are done */
       :: req == EXIT ->
          k = 0;
          do
          :: k < NGEN ->
             g = k;
             i = 0;
             do
             :: i < cx.qn && !(cx.qcli[i] == me && cx.qdirect[i]) -> i++
             :: else -> break
             od;
             if
             :: i < cx.qn -> qremove(i)
             :: else -> skip
             fi;
             if
             :: cx.token != 0 && cx.direct && cx.holder == me ->
                end_session(); gg = k
             :: else -> skip
             fi;
             k++
          :: else -> break
          od;
          g = gg;
          ticket_done()
       /* snapshot: read from the board, no message */
       :: req == SNAP ->
          g = board;
          if
          :: g != NOBODY && cx.present ->
             rc = cx.committed; rb = cx.version; rg = g; check_committed()
          :: else -> skip /* missing (the registry says so too) */
          fi
       /* acquire (never nested here: the client finds its own session) */
       :: req == ACQ ->
          g = board;
          if
          :: g != NOBODY && free_for_direct_session ->
             acquire_direct(me);
             rc = cx.committed; rb = cx.version; rg = g; check_committed();
             held = true; hdirect = true; tok = cx.token; og = g
          :: g != NOBODY && !free_for_direct_session && may_queue_direct ->
             if
             :: wait == W_TRY -> skip /* timeout: the context is held */
             :: else -> wait_in_cell()
             fi
          :: else ->
             pending[me] = true;
             acq_inf[me] = (wait == W_INF);
             route_via(ACQ, 0, wait)
          fi
       /* store: the holder's own, a free context's, or at the owner */
       :: req == STORE ->
          g = og;
          if
          :: held && hdirect && direct_session_open(tok) ->
             publish(val, me); check_own_commit()
          :: else ->
             if
             :: held && hdirect -> forget_direct() /* revoked: like anybody */
             :: else -> skip
             fi;
             g = board;
             if
             :: g != NOBODY && free_for_direct ->
                nobody_waits(); publish(val, me); check_own_commit()
             :: else ->
                pending[me] = true;
                if
                :: held -> route_via(STORE, tok, val) /* the holder's token */
                :: else -> route_via(STORE, 0, val)
                fi
             fi
          fi
       /* erase: the direct holder's (erase_held), else at the owner (a
          context with an owner is never erased without it) */
       :: req == ERASE && held && hdirect ->
          g = og;
          if
          :: direct_session_open(tok) -> erase()
          :: else -> skip /* session_expired */
          fi;
          forget_direct()
       :: req == ERASE && !(held && hdirect) ->
          pending[me] = true;
          if
          :: held -> route_via(ERASE, tok, 0)
          :: else -> route_via(ERASE, 0, 0)
          fi
       /* a direct session's commit, release, abort: under the mutex */
       :: hdirect && (req == COMMIT || req == RELEASE || req == ABORT) ->
          g = og;
          if
          :: direct_session_open(tok) ->
             /* fencing: only the open session's own token gets here */
             assert((ended[g] & (1 << tok)) == 0);
             if
             :: req == COMMIT -> publish(val, me); check_own_commit()
             :: req == RELEASE ->
                publish(val, me); check_own_commit();
                end_session(); forget_direct()
             :: req == ABORT ->
                end_session(); forget_direct()
             fi
          :: else -> forget_direct() /* session_expired */
          fi
       /* a session the owner granted: to the owner handle of the grant */
       :: held && !hdirect && (req == COMMIT || req == RELEASE || req == ABORT) ->
          pending[me] = true;
          mbox[og]!req, me, tok, val; out = true
       fi;
       if
       :: need_run -> finish_direct()
       :: else -> skip
       fi;
       g = 0; c = 0; v = 0; i = 0; wk = 0; d = false; existed = false;
       rc = 0; rb = 0; rg = 0
     };
     if
     :: req == EXIT -> break
     :: req != EXIT && !out -> req = 0; val = 0; wait = 0 /* done under the mutex */
     :: req != EXIT && out ->
        do
        :: atomic { rep[me]?rk, ra, rb, rc, rg ->
             ticket_done();
             if
             :: rk == GRANT ->
                assert(req == ACQ);
                check_committed();
                held = true; tok = ra; og = rg; hdirect = (wg != NOBODY)
             :: rk == SNAPV -> assert(false) /* snapshots take no message */
             :: rk == VER ->
                assert(req == STORE || req == COMMIT || req == RELEASE || req == ABORT);
                /* a session's requests reach the owner that granted it */
                assert(req == STORE || rg == og);
                if /* read-after-commit: our own value at that version */
                :: req != ABORT -> assert(pub_at[val] == STAMP(rg, rb))
                :: else -> skip
                fi;
                assert(rb >= seen[rg]);
                seen[rg] = rb;
                if
                :: req == RELEASE || req == ABORT -> forget_direct()
                :: else -> skip
                fi
             :: rk == ERASED ->
                assert(req == ERASE);
                if
                :: held -> forget_direct() /* the holder's erase ends it */
                :: else -> skip
                fi
             :: rk == MISSING -> assert(req == ACQ)
             :: rk == TIMEOUT -> assert(req == ACQ && wait != W_INF)
             :: rk == OVERLOADED -> assert(req == ACQ || req == STORE || req == ERASE)
             :: rk == STALE || rk == RDOWN ->
                assert(req == COMMIT || req == RELEASE || req == ABORT);
                forget_direct() /* revoked: lease or retire */
             :: else -> assert(false) /* NOTHOLDER: never with our own tokens */
             fi;
             wg = NOBODY;
             req = 0; rk = 0; ra = 0; rb = 0; rc = 0; rg = 0; val = 0; wait = 0;
             out = false };
           break
        :: atomic { pending[me] && wg != NOBODY && wait == W_DL ->
             /* wait_for() timed out: out of the queue, never granted later */
             g = wg;
             i = 0;
             do
             :: i < cx.qn && !(cx.qcli[i] == me && cx.qdirect[i]) -> i++
             :: else -> break
             od;
             if
             :: i < cx.qn -> qremove(i)
             :: else -> skip
             fi;
             answer(me, TIMEOUT, 0, 0, 0, g);
             g = 0; i = 0 }
        :: atomic { deaths > 0 && MAY_DIE_COUNTED -> die() }; goto gone
        od
     fi
  od;
  goto done;
gone:
  req = EXIT;
  goto act;
done:
  skip
}

init {
  byte c = 0;
  atomic {
    /* the first context, and its owner */
    ctx[0].present = true; ctx[0].version = 1; ctx[0].committed = INIT;
    ctx[0].holder = NOBODY;
    ctx[1].holder = NOBODY;
    pub_at[INIT] = STAMP(0, 1);
    alive_owner[0] = true;
    started[0] = true;
    run owner(0);
    run owner(1);
    do
    :: c < LOCAL -> run local_client(c); c++
    :: c >= LOCAL && c < NC -> run client(c); c++
    :: else -> break
    od
  }
}
