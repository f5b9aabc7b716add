/*
 * A model of the owner actor's protocol (actors/ctxstore/actors/owner.cpp)
 * and of the registry's forwarding and retire protocol (registry.cpp).
 * See README.md in this folder: what is modelled, what is abstracted away,
 * how each part maps to the C++ code, and how to run it (check.sh).
 *
 * Processes: one registry, NGEN owner generations (the first owner and the
 * one the registry re-creates after a retire), NC clients. Each actor is a
 * process with a mailbox channel and handles one message at a time (one
 * atomic step). Timers are internal nondeterministic events of the owner.
 */

/* -- bounds (override with spin -D...) ----------------------------------- */
#ifndef NC
#define NC 2          /* clients */
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
#define MBOX   (3 * NC + 2)
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
  /* system messages */
  DOWN, RETIRE, RCHECK, RCONFIRM, RETIRED, RDENIED,
  /* answers */
  GRANT, VER, ERASED, SNAPV,
  MISSING, TIMEOUT, OVERLOADED, STALE, NOTHOLDER, RDOWN, OK
};

/* mailboxes: kind, sender (client id; owner generation for RETIRE), token,
   value (the wait mode for ACQ) */
chan mbox[NGEN] = [MBOX] of { mtype, byte, byte, byte };
chan reg = [RBOX] of { mtype, byte, byte, byte };
/* answers: kind, token, version (erase: existed), value, owner generation */
chan rep[NC] = [2] of { mtype, byte, byte, byte, byte };

/* -- shared facts of the actor system ------------------------------------ */
bool dead[NC];            /* the client actor has exited */
bool alive_owner[NGEN];   /* spawned and not yet quit */
bool started[NGEN];       /* the registry spawned this generation */
byte initval[NGEN];       /* the value it was spawned with */
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

/* ======================================================================= */
/* owner.cpp                                                                */
/* ======================================================================= */

/* watch(): monitoring a dead actor yields a down_msg at once. */
inline watch(_c) {
  if
  :: watched[W(g, _c)] == 0 && dead[_c] -> mbox[g]!DOWN, _c, 0, 0
  :: else -> skip
  fi;
  watched[W(g, _c)]++
}

/* unwatch(): a down_msg already queued is still delivered. */
inline unwatch(_c) {
  if
  :: watched[W(g, _c)] > 0 -> watched[W(g, _c)]--
  :: else -> skip
  fi
}

/* publish(): the committed value and version; what snapshots see. */
inline publish(_v, _who) {
  assert(token == 0 || _who == holder); /* exclusive: only the holder */
  assert(pub_at[_v] == 0);              /* values are unique */
  committed = _v;
  present = true;
  version++;
  pub_at[_v] = STAMP(g, version)
}

inline erase_value() {
  committed = 0;
  present = false
}

inline maybe_retire() {
  if
  :: present || token != 0 || qn > 0 || retiring -> skip
  :: else -> retiring = true; touched = false; reg!RETIRE, g, 0, 0
  fi
}

/* open_session(): a new token; the lease timer is armed. */
inline open_session(_c) {
  assert(token == 0); /* at most one holder per owner ... */
#ifdef BUG_OWNER_TOKENS
  last_token++; /* the old code: tokens restart with each owner */
#else
  storage_token++; /* counters::last_token: unique in the storage */
  last_token = storage_token;
#endif
  assert(last_token < 31); /* fits the ghost bit set `ended` */
  token = last_token;
  holder = _c;
  nsessions++;
  assert(nsessions <= 1); /* ... and over all owner generations */
  watch(_c);
  lease_armed = LEASE
}

/* The common part of every way a session ends. */
inline close_session() {
  ended[g] = ended[g] | (1 << token);
  token = 0;
  holder = NOBODY;
  lease_armed = false; /* a later lease(token) message is a no-op */
  nsessions--
}

inline qremove(_i) {
  j = _i;
  do
  :: j + 1 < qn ->
     qkind[j] = qkind[j + 1]; qcli[j] = qcli[j + 1]; qval[j] = qval[j + 1];
     qdl[j] = qdl[j + 1]; qtick[j] = qtick[j + 1];
     j++
  :: else -> break
  od;
  qn--;
  qkind[qn] = 0; qcli[qn] = 0; qval[qn] = 0; qdl[qn] = false; qtick[qn] = 0;
  if
  :: qn == 0 -> tick = 0 /* tickets only order the queue's entries */
  :: else -> skip
  fi
}

/* run_waiters(): runs queued requests in arrival order until one opens a
   session. */
inline run_waiters() {
  do
  :: token == 0 && qn > 0 ->
#ifdef BUG_LIFO
     pick = qn - 1;
#else
     pick = 0;
#endif
     j = 0; /* FIFO: nobody queued earlier is still waiting */
     do
     :: j < qn -> assert(qtick[j] >= qtick[pick]); j++
     :: else -> break
     od;
     wk = qkind[pick]; c = qcli[pick]; v = qval[pick];
     qremove(pick);
     if
     :: wk == ACQ && !present -> answer(c, MISSING, 0, 0, 0, g)
     :: wk == ACQ && present ->
        open_session(c); answer(c, GRANT, token, version, committed, g)
     :: wk == STORE -> publish(v, c); answer(c, VER, 0, version, 0, g)
     :: wk == ERASE ->
        existed = present; erase_value(); answer(c, ERASED, 0, existed, 0, g)
     fi;
     unwatch(c)
  :: else -> break
  od;
  maybe_retire()
}

/* end_session(): the uncommitted working copy is simply never sent. The
   waiters run at the end of this step (after_step): the same atomic step, so
   nobody can tell the order of its sends to different mailboxes. */
inline end_session() {
  if
  :: token != 0 ->
     who = holder; close_session(); unwatch(who); need_run = true
  :: else -> skip
  fi
}

/* enqueue(): behind the holder, or refused when the queue is full. */
inline enqueue(_k, _c, _v, _dl) {
  if
  :: MAXW > 0 && qn >= MAXW -> answer(_c, OVERLOADED, 0, 0, 0, g)
  :: else ->
     watch(_c);
     assert(qn < QMAX);
     qkind[qn] = _k; qcli[qn] = _c; qval[qn] = _v; qdl[qn] = _dl;
     tick++; qtick[qn] = tick;
     qn++
  fi
}

/* drop_waiter(): the deadline timer of the waiter at index _i fired. */
inline drop_waiter(_i) {
  c = qcli[_i];
#ifdef BUG_KEEP_TIMED_OUT
  qdl[_i] = false; /* answered, but left in the queue */
  answer(c, TIMEOUT, 0, 0, 0, g)
#else
  qremove(_i);
  answer(c, TIMEOUT, 0, 0, 0, g);
  unwatch(c)
#endif
}

/* on_down(): a dead waiter never receives nor blocks the context; a dead
   holder's session is aborted. */
inline on_down(_c) {
  i = 0;
  do
#ifdef BUG_LOSE_WAITERS
  :: i < qn -> qremove(i) /* every waiter, not only the dead one's */
#else
  :: i < qn && qcli[i] == _c -> qremove(i)
#endif
#ifndef BUG_LOSE_WAITERS
  :: i < qn && qcli[i] != _c -> i++
#endif
  :: else -> break
  od;
  watched[W(g, _c)] = 0;
  if
  :: token != 0 && holder == _c ->
     close_session();
#ifdef BUG_DOWN_NO_GRANT
     maybe_retire()
#else
     need_run = true
#endif
  :: else -> maybe_retire()
  fi
}

/* check_holder(): the sender holds the open session with this token. */
inline check_holder(_t, _who) {
#ifdef BUG_NO_FENCING
  if /* trusts the sender's identity and ignores the token */
  :: token != 0 && _who == holder -> res = OK
  :: else ->
     if
     :: _t != 0 && _t <= last_token -> res = STALE
     :: else -> res = NOTHOLDER
     fi
  fi
#else
  if
  :: token != 0 && _t == token && _who == holder -> res = OK
  :: token != 0 && _t == token && _who != holder -> res = NOTHOLDER
  :: !(token != 0 && _t == token) && _t != 0 && _t <= last_token -> res = STALE
  :: else -> res = NOTHOLDER
  fi
#endif
}

/* The end of every step of the owner. */
inline after_step() {
  if
  :: need_run -> need_run = false; run_waiters()
  :: else -> skip
  fi;
  /* owner.cpp's invariant: waiters exist only while there is a holder */
  assert(qn == 0 || token != 0);
  /* handler-local variables carry nothing from one message to the next */
  kind = 0; wk = 0; res = 0; from = 0; tok = 0; val = 0; who = 0; c = 0;
  v = 0; rv = 0; i = 0; j = 0; pick = 0; existed = false
}

inline handle() {
  /* enter(): a request handled while we ask to retire cancels the ask */
  if
  :: retiring && kind != RCHECK && kind != RDENIED && kind != RETIRED ->
     touched = true
  :: else -> skip
  fi;
  if
  :: kind == SNAP && !present -> answer(from, MISSING, 0, 0, 0, g)
  :: kind == SNAP && present -> answer(from, SNAPV, 0, version, committed, g)
  :: kind == ACQ ->
     if
     :: token == 0 && !present -> answer(from, MISSING, 0, 0, 0, g)
     :: token == 0 && present ->
        open_session(from); answer(from, GRANT, token, version, committed, g)
     :: token != 0 && holder == from -> /* re-entry: the same session */
        answer(from, GRANT, token, version, committed, g)
     :: token != 0 && holder != from && val == W_TRY ->
        answer(from, TIMEOUT, 0, 0, 0, g)
     :: token != 0 && holder != from && val != W_TRY ->
        enqueue(ACQ, from, 0, val == W_DL)
     fi
  :: kind == STORE ->
     if
     :: token == 0 || (tok == token && from == holder) ->
        publish(val, from); answer(from, VER, 0, version, 0, g)
     :: token != 0 && !(tok == token && from == holder) ->
        enqueue(STORE, from, val, false)
     fi
  :: kind == ERASE ->
     if
     :: token == 0 ->
        existed = present; erase_value(); maybe_retire();
        answer(from, ERASED, 0, existed, 0, g)
     :: token != 0 && tok == token && from == holder -> /* ends the session */
        erase_value(); end_session(); answer(from, ERASED, 0, 1, 0, g)
     :: token != 0 && !(tok == token && from == holder) ->
        enqueue(ERASE, from, 0, false)
     fi
  :: kind == COMMIT || kind == RELEASE || kind == ABORT ->
     check_holder(tok, from);
     if
     :: res != OK -> answer(from, res, 0, 0, 0, g)
     :: else ->
        /* fencing: only the open session's own token gets here */
        assert(tok != 0 && tok <= last_token && (ended[g] & (1 << tok)) == 0);
        if
        :: kind == COMMIT -> publish(val, from); answer(from, VER, 0, version, 0, g)
        :: kind == RELEASE ->
           publish(val, from); rv = version; end_session();
           answer(from, VER, 0, rv, 0, g)
        :: kind == ABORT -> rv = version; end_session(); answer(from, VER, 0, rv, 0, g)
        fi
     fi
  :: kind == DOWN -> on_down(from)
  :: kind == RCHECK && !retiring -> skip
  :: kind == RCHECK && retiring && touched -> /* stay(true) */
     retiring = false; maybe_retire()
  :: kind == RCHECK && retiring && !touched -> reg!RCONFIRM, g, 0, 0
  :: kind == RDENIED -> /* stay(again) */
     retiring = false;
     if
     :: val -> maybe_retire()
     :: else -> skip
     fi
  :: kind == RETIRED -> /* quit(); nothing may be left to answer */
     assert(token == 0 && qn == 0 && retiring && !present);
     alive_owner[g] = false;
     quit = true
  fi
}

proctype owner(byte g) {
  bool present = true;
  byte version = 1;
  byte committed;
  byte token = 0, last_token = 0, holder = NOBODY;
  bool lease_armed = false, retiring = false, quit = false, need_run = false;
  bool touched = false; /* handled a request since we asked to retire */
  mtype qkind[QMAX];
  byte qcli[QMAX], qval[QMAX], qtick[QMAX];
  bool qdl[QMAX];
  byte qn = 0, tick = 0;
  mtype kind, wk, res;
  byte from, tok, val, who, c, v, rv, i, j, pick;
  bool existed;

end_unborn:
  started[g];
  committed = initval[g];
#ifndef BUG_OWNER_TOKENS
  last_token = storage_token; /* earlier tokens are stale here */
#endif
end_idle:
  do
  :: atomic {
       if
       :: mbox[g]?kind, from, tok, val ->
          if
          :: !quit -> handle()
          :: quit -> /* an exited actor: requests bounce with
                       request_receiver_down. The registry never forwards
                       to a retired owner: only session requests sent with
                       the owner handle of a grant arrive here. */
             if
             :: (kind == DOWN || kind == RETIRED || kind == RCHECK ||
                 kind == RDENIED) -> skip
             :: else ->
                assert(kind == COMMIT || kind == RELEASE || kind == ABORT);
                answer(from, RDOWN, 0, 0, 0, g)
             fi
          fi
       :: !quit && lease_armed -> /* lease(token): revoked */
          assert(token != 0);
          end_session()
       /* deadline(seq) of a queued waiter */
       :: !quit && qn > 0 && qdl[0] -> drop_waiter(0)
       :: !quit && qn > 1 && qdl[1] -> drop_waiter(1)
       :: !quit && qn > 2 && qdl[2] -> drop_waiter(2)
       fi;
       after_step() }
  od
}

/* ======================================================================= */
/* registry.cpp                                                             */
/* ======================================================================= */

active proctype registry() {
  byte cur = 0, ngen = 1, g;
  bool fwd = false; /* forwarded to cur since its last RETIRE */
  mtype kind;
  byte from, tok, val;

  atomic {
    initval[0] = INIT;
    pub_at[INIT] = STAMP(0, 1);
    alive_owner[0] = true;
    started[0] = true
  };
end_idle:
  do
  :: atomic { reg?kind, from, tok, val ->
       if
       :: kind == RETIRE -> /* a check behind everything forwarded so far */
          if
#ifdef BUG_RETIRE_AT_ONCE
          :: cur == from -> cur = NOBODY; mbox[from]!RETIRED, 0, 0, 0
#else
          :: cur == from -> fwd = false; mbox[from]!RCHECK, 0, 0, 0
#endif
          :: else -> skip
          fi
       :: kind == RCONFIRM -> /* forget it only if nothing went to it since */
          if
          :: cur == from && !fwd -> cur = NOBODY; mbox[from]!RETIRED, 0, 0, 0
          :: cur == from && fwd -> mbox[from]!RDENIED, 0, 0, 1
          :: else -> skip
          fi
       :: kind != RETIRE && kind != RCONFIRM && cur != NOBODY ->
          /* forward (delegate) */
          assert(alive_owner[cur]);
          fwd = true;
          mbox[cur]!kind, from, tok, val
       :: kind == STORE && cur == NOBODY -> /* a new owner, version 1 */
          assert(ngen < NGEN);
          g = ngen; ngen++; cur = g;
          initval[g] = val;
          pub_at[val] = STAMP(g, 1);
          alive_owner[g] = true;
          started[g] = true;
          answer(from, VER, 0, 1, 0, g)
       :: (kind == SNAP || kind == ACQ) && cur == NOBODY ->
          answer(from, MISSING, 0, 0, 0, 0)
       :: kind == ERASE && cur == NOBODY -> answer(from, ERASED, 0, 0, 0, 0)
       :: (kind == COMMIT || kind == RELEASE || kind == ABORT) && cur == NOBODY ->
          answer(from, STALE, 0, 0, 0, 0)
       fi;
       kind = 0; from = 0; tok = 0; val = 0; g = 0 }
  od
}

/* ======================================================================= */
/* clients: async_client / blocking_client actors                          */
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
  od
}

/* What a grant or a snapshot shows was committed at that version. */
inline check_committed() {
  assert(pub_at[rc] == STAMP(rg, rb));
  assert(rb >= seen[rg]); /* never older than what this client saw */
  seen[rg] = rb
}

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

init {
  byte c = 0;
  atomic {
    run owner(0);
    run owner(1);
    do
    :: c < NC -> run client(c); c++
    :: else -> break
    od
  }
}
