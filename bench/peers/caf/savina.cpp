// savina.cpp - Savina micro-benchmarks for CAF 0.17 (Debian libcaf-dev 0.17.6), the peer of spool's
// bench/ programs: same names, units and default sizes, one JSON line on stdout per run.
//
//   savina NAME [SIZE]     NAME: pingpong counting threadring fjthroughput fjcreation chameneos big
//
// SIZE replaces the benchmark's main count (see usage()); a tenth of the default is the --quick
// size. The scheduler gets 2 worker threads. Only the work is timed (after the actor system is up
// and the actors are spawned, except fjcreation, which times the spawns). Each run checks its
// result and exits 1 if it is wrong.
#include <caf/all.hpp>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace caf;

using go_atom = atom_constant<atom("go")>;
using ping_atom = atom_constant<atom("ping")>;
using pong_atom = atom_constant<atom("pong")>;
using stop_atom = atom_constant<atom("stop")>;
using next_atom = atom_constant<atom("next")>;
using token_atom = atom_constant<atom("token")>;
using done_atom = atom_constant<atom("done")>;
using meet_atom = atom_constant<atom("meet")>;
using change_atom = atom_constant<atom("change")>;
using report_atom = atom_constant<atom("report")>;

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

// Written by the actors, read by main after the actor system is gone (its destructor waits for
// every actor, which orders these writes before the reads).
struct result {
  int64_t t0 = 0;
  int64_t t1 = 0;
  int64_t a = 0; // first checked quantity
  int64_t b = 0; // second checked quantity
} res;

constexpr int THREADS = 2;

void fail(const char* name, const char* what, int64_t got, int64_t want) {
  std::fprintf(stderr, "%s: %s: got %" PRId64 ", expected %" PRId64 "\n", name, what, got, want);
  std::exit(1);
}

void print(const char* name, const char* unit, double value, const char* size_key,
           int64_t size) {
  std::printf("{\"name\":\"%s\",\"unit\":\"%s\",\"value\":%.3f,\"%s\":%" PRId64
              ",\"threads\":%d,\"runtime\":\"caf\"}\n",
              name, unit, value, size_key, size, THREADS);
  std::fflush(stdout);
}

// -- pingpong: ping sends, pong answers, ROUND_TRIPS times ------------------------------------------

behavior pong_actor(event_based_actor* self) {
  return {
    [=](ping_atom, int64_t n) {
      ++res.b;
      return std::make_tuple(pong_atom::value, n);
    },
    [=](stop_atom) { self->quit(); },
  };
}

behavior ping_actor(event_based_actor* self, actor pong, int64_t rounds) {
  return {
    [=](go_atom) {
      res.t0 = now_ns();
      self->send(pong, ping_atom::value, int64_t{1});
    },
    [=](pong_atom, int64_t n) {
      res.a = n;
      if (n < rounds) {
        self->send(pong, ping_atom::value, n + 1);
      } else {
        res.t1 = now_ns();
        self->send(pong, stop_atom::value);
        self->quit();
      }
    },
  };
}

int run_pingpong(actor_system& sys, int64_t n) {
  auto pong = sys.spawn(pong_actor);
  auto ping = sys.spawn(ping_actor, pong, n);
  anon_send(ping, go_atom::value);
  return 0;
}

// -- counting: a producer sends N integers to a counter ---------------------------------------------

behavior counter_actor(event_based_actor* self, int64_t n) {
  return {
    [=](int64_t i) {
      res.a += 1;
      res.b += i;
      if (res.a == n) {
        res.t1 = now_ns();
        self->quit();
      }
    },
  };
}

behavior producer_actor(event_based_actor* self, actor counter, int64_t n) {
  return {
    [=](go_atom) {
      res.t0 = now_ns();
      for (int64_t i = 1; i <= n; ++i)
        self->send(counter, i);
      self->quit();
    },
  };
}

int run_counting(actor_system& sys, int64_t n) {
  auto counter = sys.spawn(counter_actor, n);
  auto producer = sys.spawn(producer_actor, counter, n);
  anon_send(producer, go_atom::value);
  return 0;
}

// -- threadring: a token goes round a ring of RING actors, HOPS hops ----------------------------------

constexpr int RING = 100;

behavior ring_actor(event_based_actor* self) {
  auto next = std::make_shared<actor>();
  return {
    [=](next_atom, actor a) { *next = std::move(a); },
    [=](token_atom, int64_t left) {
      ++res.a; // one hop received; only one actor runs at a time (one token)
      if (left > 0) {
        self->send(*next, token_atom::value, left - 1);
      } else {
        res.t1 = now_ns();
        self->send(*next, stop_atom::value);
        self->quit();
      }
    },
    [=](stop_atom) {
      self->send(*next, stop_atom::value); // the one that quit first ignores the last stop
      self->quit();
    },
  };
}

int run_threadring(actor_system& sys, int64_t hops) {
  std::vector<actor> ring;
  for (int i = 0; i < RING; ++i)
    ring.push_back(sys.spawn(ring_actor));
  // sends enqueue in the calling thread: each actor has its next_atom before the token
  for (int i = 0; i < RING; ++i)
    anon_send(ring[i], next_atom::value, ring[(i + 1) % RING]);
  res.t0 = now_ns();
  // the token's first delivery is hop 1; "left" counts the hops still to make after this one
  anon_send(ring[0], token_atom::value, hops - 1);
  return 0;
}

// -- fjthroughput: one driver sends PER messages to each of WORKERS actors ---------------------------

constexpr int FJ_WORKERS = 60;

behavior fj_worker(event_based_actor* self, actor sink, int64_t per) {
  auto count = std::make_shared<int64_t>(0);
  return {
    [=](int64_t) {
      if (++*count == per) {
        self->send(sink, done_atom::value, *count);
        self->quit();
      }
    },
  };
}

behavior fj_sink(event_based_actor* self, int workers) {
  auto done = std::make_shared<int>(0);
  return {
    [=](done_atom, int64_t got) {
      res.a += got;
      if (++*done == workers) {
        res.t1 = now_ns();
        self->quit();
      }
    },
  };
}

behavior fj_driver(event_based_actor* self, std::vector<actor> workers, int64_t per) {
  return {
    [=](go_atom) {
      res.t0 = now_ns();
      for (int64_t i = 0; i < per; ++i)
        for (auto& w : workers)
          self->send(w, i);
      self->quit();
    },
  };
}

int run_fjthroughput(actor_system& sys, int64_t per) {
  auto sink = sys.spawn(fj_sink, FJ_WORKERS);
  std::vector<actor> workers;
  for (int i = 0; i < FJ_WORKERS; ++i)
    workers.push_back(sys.spawn(fj_worker, sink, per));
  auto driver = sys.spawn(fj_driver, std::move(workers), per);
  anon_send(driver, go_atom::value);
  return 0;
}

// -- fjcreation: spawn N actors, send each one message; each handles it and quits --------------------

std::atomic<int64_t> fjc_handled{0};

behavior fjc_worker(event_based_actor* self, int64_t n) {
  return {
    [=](int64_t) {
      if (fjc_handled.fetch_add(1, std::memory_order_relaxed) + 1 == n)
        res.t1 = now_ns();
      self->quit();
    },
  };
}

// The driver is main's thread (as in Savina, whose driver loop creates the actors). A driver
// actor spawning all of them in its handler made the run quadratic (60 s at 200,000 actors): each
// new actor goes onto that worker's local queue, and CAF 0.17's work stealing takes from the tail
// of that list by walking it (double_ended_queue::take_tail). Batches of 1,000 with a self-send
// in between did not help.
int run_fjcreation(actor_system& sys, int64_t n) {
  res.t0 = now_ns();
  for (int64_t i = 0; i < n; ++i) {
    auto w = sys.spawn(fjc_worker, n);
    anon_send(w, i);
  }
  return 0;
}

// -- chameneos: CHAMENEOS creatures meet through a mall, MEETINGS meetings ---------------------------

constexpr int CHAMENEOS = 10;

int complement(int a, int b) { return a == b ? a : 3 - a - b; }

struct mall_state {
  actor waiting;
  int waiting_color = 0;
  int64_t meetings = 0;
  int reports = 0;
};

behavior mall_actor(stateful_actor<mall_state>* self, int64_t limit) {
  return {
    [=](meet_atom, actor who, int color) {
      auto& st = self->state;
      if (st.meetings == limit) {
        self->send(who, stop_atom::value);
      } else if (!st.waiting) {
        st.waiting = std::move(who);
        st.waiting_color = color;
      } else {
        ++st.meetings;
        self->send(st.waiting, meet_atom::value, who, color); // the first meets the second
        st.waiting = nullptr;
      }
    },
    [=](report_atom, int64_t met) {
      res.a += met;
      if (++self->state.reports == CHAMENEOS) {
        res.t1 = now_ns();
        res.b = self->state.meetings;
        self->quit();
      }
    },
  };
}

struct chameneo_state {
  int color = 0;
  int64_t met = 0;
};

behavior chameneo_actor(stateful_actor<chameneo_state>* self, actor mall, int color) {
  self->state.color = color;
  auto self_handle = [self] { return actor_cast<actor>(self); };
  return {
    [=](go_atom) { self->send(mall, meet_atom::value, self_handle(), self->state.color); },
    [=](meet_atom, const actor& other, int other_color) {
      auto& st = self->state;
      st.color = complement(st.color, other_color);
      ++st.met;
      self->send(other, change_atom::value, st.color);
      self->send(mall, meet_atom::value, self_handle(), st.color);
    },
    [=](change_atom, int new_color) {
      auto& st = self->state;
      st.color = new_color;
      ++st.met;
      self->send(mall, meet_atom::value, self_handle(), st.color);
    },
    [=](stop_atom) {
      self->send(mall, report_atom::value, self->state.met);
      self->quit();
    },
  };
}

int run_chameneos(actor_system& sys, int64_t meetings) {
  auto mall = sys.spawn(mall_actor, meetings);
  std::vector<actor> cs;
  for (int i = 0; i < CHAMENEOS; ++i)
    cs.push_back(sys.spawn(chameneo_actor, mall, i % 3));
  res.t0 = now_ns();
  for (auto& c : cs)
    anon_send(c, go_atom::value);
  return 0;
}

// -- big: BIG_ACTORS actors, each pings random peers PINGS times (one ping outstanding) --------------

constexpr int BIG_ACTORS = 120;
constexpr uint64_t BIG_SEED = 42;

struct big_state {
  std::vector<actor> peers;
  uint64_t rng = 0;
  int index = 0;
  int64_t sent = 0;
  int64_t answered = 0; // pongs sent to others
};

uint64_t next_random(uint64_t& s) { // splitmix64
  uint64_t z = (s += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

behavior big_actor(stateful_actor<big_state>* self, int index, actor sink, int64_t pings) {
  self->state.index = index;
  self->state.rng = BIG_SEED * 1000003u + static_cast<uint64_t>(index);
  auto send_ping = [self] {
    auto& st = self->state;
    auto n = st.peers.size();
    auto k = static_cast<size_t>(next_random(st.rng) % (n - 1));
    if (k >= static_cast<size_t>(st.index))
      ++k; // not itself
    ++st.sent;
    self->send(st.peers[k], ping_atom::value, st.index);
  };
  return {
    [=](next_atom, std::vector<actor> peers) { self->state.peers = std::move(peers); },
    [=](go_atom) { send_ping(); },
    [=](ping_atom, int from) {
      ++self->state.answered;
      self->send(self->state.peers[from], pong_atom::value);
    },
    [=](pong_atom) {
      if (self->state.sent < pings)
        send_ping();
      else
        self->send(sink, done_atom::value, self->state.sent);
    },
    [=](stop_atom) {
      self->send(sink, report_atom::value, self->state.answered);
      self->state.peers.clear(); // break the reference cycle
      self->quit();
    },
  };
}

struct big_sink_state {
  std::vector<actor> all;
  int done = 0;
  int reports = 0;
};

behavior big_sink(stateful_actor<big_sink_state>* self) {
  return {
    [=](next_atom, std::vector<actor> all) { self->state.all = std::move(all); },
    [=](done_atom, int64_t sent) {
      res.a += sent; // pings sent (and answered: the sender got every pong)
      if (++self->state.done == BIG_ACTORS) {
        res.t1 = now_ns();
        for (auto& a : self->state.all)
          self->send(a, stop_atom::value);
      }
    },
    [=](report_atom, int64_t answered) {
      res.b += answered; // pongs sent
      if (++self->state.reports == BIG_ACTORS) {
        self->state.all.clear();
        self->quit();
      }
    },
  };
}

int run_big(actor_system& sys, int64_t pings) {
  auto sink = sys.spawn(big_sink);
  std::vector<actor> all;
  for (int i = 0; i < BIG_ACTORS; ++i)
    all.push_back(sys.spawn(big_actor, i, sink, pings));
  // sends enqueue in the calling thread: every peer list is in before any go
  for (auto& a : all)
    anon_send(a, next_atom::value, all);
  anon_send(sink, next_atom::value, all);
  res.t0 = now_ns();
  for (auto& a : all)
    anon_send(a, go_atom::value);
  return 0;
}

struct bench {
  const char* name;
  const char* unit;
  int64_t size;
  const char* size_key;
  const char* size_doc;
  int (*run)(actor_system&, int64_t);
};

const bench benches[] = {
  {"pingpong", "ns/roundtrip", 1000000, "round_trips", "round trips", run_pingpong},
  {"counting", "M msg/s", 10000000, "messages", "messages", run_counting},
  {"threadring", "ns/hop", 1000000, "hops", "hops (ring of 100)", run_threadring},
  {"fjthroughput", "M msg/s", 20000, "messages_per_actor", "messages per actor (60 actors)",
   run_fjthroughput},
  {"fjcreation", "ns/actor", 200000, "actors", "actors", run_fjcreation},
  {"chameneos", "ns/meeting", 200000, "meetings", "meetings (10 chameneos)", run_chameneos},
  {"big", "M msg/s", 5000, "pings_per_actor", "pings per actor (120 actors)", run_big},
};

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s NAME [SIZE]\n", argv0);
  for (auto& b : benches)
    std::fprintf(stderr, "  %-13s SIZE = %s, default %" PRId64 "; value in %s\n", b.name,
                 b.size_doc, b.size, b.unit);
  std::exit(2);
}

// Checks the result and returns the value in the benchmark's unit.
double finish(const bench& b, int64_t n) {
  double secs = static_cast<double>(res.t1 - res.t0) / 1e9;
  double ns = static_cast<double>(res.t1 - res.t0);
  std::string name = b.name;
  if (res.t1 <= res.t0)
    fail(b.name, "clock (t1 - t0)", res.t1 - res.t0, 1);
  if (name == "pingpong") {
    if (res.a != n) fail(b.name, "round trips", res.a, n);
    if (res.b != n) fail(b.name, "pings answered", res.b, n);
    return ns / n;
  }
  if (name == "counting") {
    if (res.a != n) fail(b.name, "count", res.a, n);
    if (res.b != n * (n + 1) / 2) fail(b.name, "sum", res.b, n * (n + 1) / 2);
    return n / secs / 1e6;
  }
  if (name == "threadring") {
    if (res.a != n) fail(b.name, "hops", res.a, n);
    return ns / n;
  }
  if (name == "fjthroughput") {
    if (res.a != n * FJ_WORKERS) fail(b.name, "messages", res.a, n * FJ_WORKERS);
    return n * FJ_WORKERS / secs / 1e6;
  }
  if (name == "fjcreation") {
    if (fjc_handled.load() != n) fail(b.name, "actors run", fjc_handled.load(), n);
    return ns / n;
  }
  if (name == "chameneos") {
    if (res.b != n) fail(b.name, "meetings", res.b, n);
    if (res.a != 2 * n) fail(b.name, "sum of the chameneos' meetings", res.a, 2 * n);
    return ns / n;
  }
  // big
  int64_t want = n * BIG_ACTORS;
  if (res.a != want) fail(b.name, "pings (each answered by a pong)", res.a, want);
  if (res.b != want) fail(b.name, "pongs", res.b, want);
  return 2.0 * want / secs / 1e6;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3)
    usage(argv[0]);
  const bench* b = nullptr;
  for (auto& x : benches)
    if (std::strcmp(argv[1], x.name) == 0)
      b = &x;
  if (b == nullptr)
    usage(argv[0]);
  int64_t n = b->size;
  if (argc == 3) {
    char* end = nullptr;
    n = std::strtoll(argv[2], &end, 10);
    if (*end != '\0' || n <= 0)
      usage(argv[0]);
  }
  {
    actor_system_config cfg;
    cfg.set("scheduler.max-threads", THREADS);
    actor_system sys{cfg};
    b->run(sys, n);
  } // ~actor_system waits for every actor
  double value = finish(*b, n);
  print(b->name, b->unit, value, b->size_key, n);
  return 0;
}
